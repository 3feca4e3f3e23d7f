# sendpigeon-relay container image: a static (musl) binary on an empty base, run as a
# non-root user. Base images are made locally by scripts/container.sh (no registry is
# needed): the builder is a Debian bookworm root with the Rust toolchain and musl-tools.
#
#   scripts/container.sh build     # base image + this build
#   podman run -p 587:2587 -p 465:2465 -p 9587:9587 \
#     -v /path/to/tls:/etc/sendpigeon-relay/tls:ro sendpigeon-relay
#
# Ports: 2587 (STARTTLS) and 2465 (implicit TLS) inside, mapped to 587/465 outside, so no
# capability to bind below 1024 is needed; 9587 serves /healthz, /readyz and /metrics.
# Configuration: /etc/sendpigeon-relay/relay.toml (config/container.toml) and
# SENDPIGEON_RELAY_* variables. Certificates and keys are mounted, never baked in.

ARG BUILDER=localhost/sendpigeon-relay-builder:bookworm

FROM ${BUILDER} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
# scripts/container.sh mounts the host's CA bundle at /etc/ssl/certs during the build (the
# registry may sit behind a TLS proxy) and a registry cache at /usr/local/cargo/registry.
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/sendpigeon-relay /out/sendpigeon-relay \
 && install -D -m 0644 config/container.toml /out/relay.toml \
 && install -d -m 0755 -o 65532 -g 65532 /out/var-lib

FROM scratch
COPY --from=build /out/sendpigeon-relay /usr/local/bin/sendpigeon-relay
COPY --from=build /out/relay.toml /etc/sendpigeon-relay/relay.toml
COPY --from=build --chown=65532:65532 /out/var-lib /var/lib/sendpigeon-relay
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
