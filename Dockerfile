# syntax=docker/dockerfile:1
# Both services from one file: `docker build --target auth -t latchkey-auth .`
# and `docker build --target secrets -t latchkey-secrets .` (see README);
# the CLI: `docker build --target cli -t latchkey-cli .`.
#
# Build: release binaries, with the registry and target cached between builds.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin latchkey-auth --bin latchkey-secrets --bin latchkey \
 && mkdir -p /out \
 && cp target/release/latchkey-auth target/release/latchkey-secrets target/release/latchkey /out/

# Runtime: distroless (glibc, CA certificates, no shell or package manager),
# as the image's built-in non-root user.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime-base
USER 65532:65532
WORKDIR /home/nonroot
# Development defaults; Kubernetes sets its own through the ConfigMaps.
ENV LATCHKEY_DATA_DIR=/home/nonroot/latchkey-data \
    LATCHKEY_HEALTH_ADDR=0.0.0.0:8081 \
    LATCHKEY_LOG_FORMAT=json

FROM runtime-base AS auth
COPY --from=build /out/latchkey-auth /usr/local/bin/latchkey-auth
ENV LATCHKEY_AUTH_ADDR=0.0.0.0:50051 \
    OTEL_SERVICE_NAME=latchkey-auth
EXPOSE 50051 50053 8081
# The gRPC health service, asked by the binary itself: no probe tool needed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
    CMD ["/usr/local/bin/latchkey-auth", "health"]
ENTRYPOINT ["/usr/local/bin/latchkey-auth"]

FROM runtime-base AS secrets
COPY --from=build /out/latchkey-secrets /usr/local/bin/latchkey-secrets
ENV LATCHKEY_SECRETS_ADDR=0.0.0.0:50052 \
    OTEL_SERVICE_NAME=latchkey-secrets
EXPOSE 50052 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
    CMD ["/usr/local/bin/latchkey-secrets", "health"]
ENTRYPOINT ["/usr/local/bin/latchkey-secrets"]

# The CLI, for workloads that log in and fetch their secrets in an init
# container (deploy/examples/kubernetes-auth).
FROM runtime-base AS cli
COPY --from=build /out/latchkey /usr/local/bin/latchkey
ENTRYPOINT ["/usr/local/bin/latchkey"]
