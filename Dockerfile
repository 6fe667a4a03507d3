# A small static image of the operator, run as a non-root user.
# Build: docker build -t domicile:dev .   (not buildable on machines without a Docker engine)

FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY src src
COPY tests tests
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin domicile

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/domicile /domicile
USER 65532:65532
ENTRYPOINT ["/domicile"]
CMD ["run"]
