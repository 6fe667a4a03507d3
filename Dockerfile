# The operator's image for users with a registry: one statically linked binary, run as a non-root
# user, on an empty base. hack/images.sh builds the same image without a Docker engine (buildah,
# from scratch, the same binary, user, entrypoint and PATH); keep the two alike.
# Build: docker build -t domicile:0.1.0 .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY src src
COPY tests tests
COPY benches benches
# glibc, linked statically: no musl toolchain needed, and no shared library in the image.
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin domicile \
    && strip --strip-all target/x86_64-unknown-linux-gnu/release/domicile

FROM scratch
COPY --from=build --chmod=0755 /src/target/x86_64-unknown-linux-gnu/release/domicile /domicile
ENV PATH=/bin
USER 65532:65532
ENTRYPOINT ["/domicile"]
CMD ["run"]
