# syntax=docker/dockerfile:1
#
# sealchain: one image with both binaries, `sealchain-node` and `sealchain`.
#
#   docker build -t sealchain .
#
# Stage 1 (planner) reduces the workspace to its dependency graph; stage 2
# (builder) compiles the dependencies from that graph alone — a layer that
# stays cached until Cargo.toml or Cargo.lock change — then the project;
# stage 3 (runtime) is a slim Debian with libpq and a non-root user.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The build settings (the curve arithmetic's backends) apply to the
# dependencies too, so they come in before the dependencies are built.
COPY .cargo .cargo
# Dependencies only: cached across source changes.
RUN cargo chef cook --release --locked --recipe-path recipe.json \
      -p sealchain-node -p sealchain-client
COPY . .
RUN cargo build --release --locked -p sealchain-node -p sealchain-client \
 && cp target/release/sealchain-node target/release/sealchain /usr/local/bin/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/sealchain --create-home sealchain \
 && install -d -o sealchain -g sealchain -m 0700 /var/lib/sealchain/node-keys /var/lib/sealchain/client-keys \
      /var/lib/sealchain/witness /var/lib/sealchain/trust
COPY --from=builder /usr/local/bin/sealchain-node /usr/local/bin/sealchain /usr/local/bin/
USER sealchain
WORKDIR /var/lib/sealchain
ENV SEALCHAIN_LISTEN=0.0.0.0:8080 \
    SEALCHAIN_KEYS_DIR=/var/lib/sealchain/node-keys
EXPOSE 8080
CMD ["sealchain-node"]
