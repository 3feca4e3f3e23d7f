# sendpigeon-relay container image: the release binary and the few glibc libraries it links
# (libc, libm, libgcc_s, the loader) on an empty base, run as a non-root user. Base images are
# made locally by scripts/container.sh (no registry is needed): the builder is a Debian
# bookworm root with gcc and the Rust toolchain. glibc rather than a static musl build: with
# musl's allocator the relay ran at 40% of the message rate (README "Performance").
#
#   scripts/container.sh build     # base image + this build
#   podman run -p 587:2587 -p 465:2465 -p 9587:9587 \
#     -v /path/to/tls:/etc/sendpigeon-relay/tls:ro sendpigeon-relay
#
# Ports: 2587 (STARTTLS) and 2465 (implicit TLS) inside, mapped to 587/465 outside, so no
# capability to bind below 1024 is needed; 9587 serves /healthz, /readyz and /metrics.
# Configuration: /etc/sendpigeon-relay/relay.toml (config/container.toml) and
# SENDPIGEON_RELAY_* variables. Certificates and keys are mounted, never baked in.

ARG BUILDER=localhost/sendpigeon-relay-builder:bookworm-gnu

FROM ${BUILDER} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The manifest names the criterion bench; cargo reads its file even for a plain build.
COPY benches ./benches
COPY config ./config
# scripts/container.sh mounts the host's CA bundle at /etc/ssl/certs during the build (the
# registry may sit behind a TLS proxy) and a registry cache at /usr/local/cargo/registry.
# mail-parser 1.0.1 declares Rust 1.98 and builds with 1.95: see the README ("Rust version").
RUN cargo build --release --locked --ignore-rust-version \
 && install -D -m 0755 target/release/sendpigeon-relay /out/usr/local/bin/sendpigeon-relay \
 && ldd target/release/sendpigeon-relay | awk '/=> \// { print $3 } /^\t\/lib64\// { print $1 }' \
    | while read -r lib; do install -D "$(readlink -f "$lib")" "/out$lib"; done \
 && install -D -m 0644 config/container.toml /out/etc/sendpigeon-relay/relay.toml \
 && install -d -m 0755 -o 65532 -g 65532 /out/var/lib/sendpigeon-relay

FROM scratch
COPY --from=build /out/ /
USER 65532:65532
ENV SENDPIGEON_RELAY_CONFIG=/etc/sendpigeon-relay/relay.toml
# A fixed glibc mmap threshold: message-sized buffers go back to the system when freed
# instead of piling up in per-thread arenas (peak memory on 10 MiB messages 2.1x instead of
# 4.6x the bytes in flight; README "Performance").
ENV MALLOC_MMAP_THRESHOLD_=1048576
EXPOSE 2587 2465 9587
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sendpigeon-relay"]
CMD ["serve"]
