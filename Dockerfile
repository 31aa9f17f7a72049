# syntax=docker/dockerfile:1.7
# The Rust services: one image with every binary (ingress, workers, projections,
# smart-support, shop-api) and the demo's agents config; compose picks the command. Multi-stage: the build stage caches
# dependencies in BuildKit cache mounts, the runtime stage is slim and non-root.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ingress -p workers -p projections -p cli -p shop \
 && mkdir -p /out \
 && cp target/release/ingress target/release/workers target/release/projections \
       target/release/smart-support target/release/shop-api /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=build /out/ /usr/local/bin/
# The default AGENTS_CONFIG (fixtures/agents.yaml) and the OpenAPI document it names.
WORKDIR /app
COPY fixtures/ /app/fixtures/
USER app
ENV RUST_LOG=info
# Each service's compose entry sets its own health check (ports differ).
CMD ["smart-support", "--help"]
