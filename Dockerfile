# netsec inference image: the `serve` and `predict` binaries and the production model.
# Build from a checkout where `make run` has produced models/production/:
#   docker build -t netsec .
#   docker run -p 8080:8080 -e NETSEC_ADMIN_TOKEN=... netsec
# Probes: GET /healthz (liveness) and GET /readyz (readiness).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin serve --bin predict

FROM debian:bookworm-slim AS runtime
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin netsec
WORKDIR /app
COPY --from=build /src/target/release/serve /src/target/release/predict /usr/local/bin/
COPY --chown=netsec:netsec models/production ./models/production
USER 10001
ENV NETSEC_MODEL=/app/models/production/phishing.json \
    NETSEC_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/serve"]
