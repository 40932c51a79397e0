//! The do-nothing ceilings every scenario is compared with: a bare health
//! service (one hop) and a server that calls it over one channel before
//! answering (two hops, what any secrets call costs with its `Authorize`).

use tokio::net::TcpListener;
use tonic::transport::Channel;

use crate::BoxError;

/// A do-nothing server that calls the echo server at `echo_url` over one
/// channel before answering: the floor of any call that makes one more hop.
pub(crate) async fn start_hop(echo_url: &str) -> Result<String, BoxError> {
    let next = tonic_health::pb::health_client::HealthClient::new(
        Channel::from_shared(echo_url.to_owned())?.connect().await?,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let connections = ceiling_connections();
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(connections.activity())
            .add_service(tonic_health::pb::health_server::HealthServer::new(Hop(
                next,
            )))
            .serve_with_incoming(connections.incoming(listener)),
    );
    Ok(url)
}

/// The two-hop ceiling's service.
struct Hop(tonic_health::pb::health_client::HealthClient<Channel>);

#[tonic::async_trait]
impl tonic_health::pb::health_server::Health for Hop {
    async fn check(
        &self,
        request: tonic::Request<tonic_health::pb::HealthCheckRequest>,
    ) -> Result<tonic::Response<tonic_health::pb::HealthCheckResponse>, tonic::Status> {
        self.0.clone().check(request.into_inner()).await
    }

    type WatchStream = std::pin::Pin<
        Box<
            dyn tokio_stream::Stream<
                    Item = Result<tonic_health::pb::HealthCheckResponse, tonic::Status>,
                > + Send,
        >,
    >;

    async fn watch(
        &self,
        _request: tonic::Request<tonic_health::pb::HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the two-hop ceiling answers Check only",
        ))
    }
}

/// The one-hop ceiling: a bare health service on a free port.
pub(crate) async fn start_echo() -> Result<String, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (_reporter, health) = tonic_health::server::health_reporter();
    let connections = ceiling_connections();
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(connections.activity())
            .add_service(health)
            .serve_with_incoming(connections.incoming(listener)),
    );
    Ok(url)
}

/// The ceilings accept through the services' listener layer, so they pay
/// the same per-connection and per-call guard.
fn ceiling_connections() -> latchkey_service_kit::listen::Connections {
    use latchkey_service_kit::listen::{ConnectionLimits, Connections, descriptor_limit};
    Connections::new(
        ConnectionLimits::for_descriptors(descriptor_limit()),
        latchkey_domain::ip::TrustedIps::default(),
    )
}
