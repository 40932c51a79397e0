//! What every call carries: the caller's token, the W3C trace context, and
//! for service-to-service calls the internal key.

use latchkey_proto::INTERNAL_KEY_HEADER;
use tonic::metadata::{Ascii, MetadataValue};

use crate::error::ClientError;

/// Attaches `authorization: Bearer <token>` (only a service token's access
/// part: its key part never leaves the client) and a trace context.
#[derive(Clone, Debug, Default)]
pub struct Bearer {
    token: Option<MetadataValue<Ascii>>,
    headers: Vec<(&'static str, MetadataValue<Ascii>)>,
}

impl Bearer {
    /// Calls with `token`, or anonymously with `None`.
    pub fn new(token: Option<&str>) -> Result<Self, ClientError> {
        let token = token
            .map(|t| {
                let t = latchkey_domain::token::access_token_part(t);
                let mut value = MetadataValue::try_from(format!("Bearer {t}")).map_err(|_| {
                    ClientError::Config("the token holds characters that cannot be sent".to_owned())
                })?;
                // Debug prints "Sensitive", and HTTP/2 never indexes it in HPACK tables.
                value.set_sensitive(true);
                Ok::<_, ClientError>(value)
            })
            .transpose()?;
        Ok(Self {
            token,
            headers: Vec::new(),
        })
    }

    /// Also sends `traceparent`/`tracestate`, so the caller's trace
    /// continues into the services; values that are not valid metadata are skipped.
    #[must_use]
    pub fn with_trace_context(
        mut self,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
    ) -> Self {
        for (key, value) in [("traceparent", traceparent), ("tracestate", tracestate)] {
            if let Some(v) = value.and_then(|v| MetadataValue::try_from(v).ok()) {
                self.headers.push((key, v));
            }
        }
        self
    }

    /// Also presents the internal key, as the secrets service does on
    /// `Authorize` (tests and tools standing in for it).
    pub fn with_internal_key(mut self, key: &str) -> Result<Self, ClientError> {
        let mut value = MetadataValue::try_from(key).map_err(|_| {
            ClientError::Config("the internal key holds characters that cannot be sent".to_owned())
        })?;
        value.set_sensitive(true);
        self.headers.push((INTERNAL_KEY_HEADER, value));
        Ok(self)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        for (key, value) in &self.headers {
            request.metadata_mut().insert(*key, value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use tonic::service::Interceptor;

    use super::*;

    #[test]
    fn bearer_sends_no_key_part_and_debug_prints_no_token() {
        let access = "st.0b7e6a50-2f1c-4d1e-9b8a-1c2d3e4f5a6b.00112233445566778899aabbccddeeff";
        let full = format!("{access}.ffeeddccbbaa99887766554433221100");
        let mut bearer = Bearer::new(Some(&full))
            .unwrap()
            .with_internal_key("internal-0123")
            .unwrap()
            .with_trace_context(Some("00-abc-def-01"), None);
        let debug = format!("{bearer:?}");
        assert!(
            !debug.contains("00112233") && !debug.contains("internal-0123"),
            "{debug}"
        );
        let request = bearer.call(tonic::Request::new(())).unwrap();
        let sent = request.metadata().get("authorization").unwrap();
        assert!(sent.is_sensitive());
        assert_eq!(sent.to_str().unwrap(), format!("Bearer {access}"));
        assert_eq!(
            request.metadata().get(INTERNAL_KEY_HEADER).unwrap(),
            "internal-0123"
        );
        assert_eq!(
            request.metadata().get("traceparent").unwrap(),
            "00-abc-def-01"
        );
        assert!(request.metadata().get("tracestate").is_none());
    }
}
