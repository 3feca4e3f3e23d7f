#!/usr/bin/env bash
# Checks every listener kind against Mozilla's "intermediate" TLS profile with sslyze
# (operations.md, TLS): a `starttls` listener (sslyze --starttls smtp), an `implicit` one,
# and an `auto` one in both modes (a TLS client, and a STARTTLS client after the wait). The
# relay runs on its development certificate, generated fresh in a temporary directory, with
# the development CA given to sslyze as the trust store. Exits non-zero unless all four are
# compliant. Needs sslyze (pip) and a built relay (it builds one if missing).
#
#   bash scripts/tls-profile.sh            # PROFILE=dev (default) or PROFILE=release
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
profile=${PROFILE:-dev}

# Pinned: the profile's rules ship inside sslyze, so a new release can change the verdict;
# move the pin deliberately.
if ! command -v sslyze >/dev/null; then
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore sslyze==6.3.1
fi
if [ "$profile" = release ]; then
  cargo build --quiet --locked --release --ignore-rust-version
  binary=$root/target/release/sendpigeon-relay
else
  cargo build --quiet --locked --ignore-rust-version
  binary=$root/target/debug/sendpigeon-relay
fi

work=$(mktemp -d)
relay_pid=""
cleanup() {
  if [ -n "$relay_pid" ]; then kill "$relay_pid" 2>/dev/null || true; wait "$relay_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

read -r p_starttls p_implicit p_auto < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)

# The embedded development configuration, run from the temporary directory so its
# certificate, CA and outbox are made there; only the listeners and the keys file differ.
(cd "$work" && exec "$binary" serve \
  --listen "starttls=127.0.0.1:$p_starttls" \
  --listen "implicit=127.0.0.1:$p_implicit" \
  --listen "auto=127.0.0.1:$p_auto" \
  --keys-file "$root/config/dev-keys.txt" \
  --admin 127.0.0.1:0 >"$work/relay.log" 2>&1) &
relay_pid=$!
for _ in $(seq 1 100); do
  if grep -q "address=127.0.0.1:$p_auto" "$work/relay.log" 2>/dev/null; then break; fi
  sleep 0.1
done
grep -q "address=127.0.0.1:$p_auto" "$work/relay.log" || { cat "$work/relay.log"; exit 1; }

failed=0
check() {
  local name=$1
  shift
  local out
  out=$(sslyze --mozilla_config intermediate --certinfo_ca_file "$work/certs/dev-ca.pem" "$@" 2>&1) || true
  if grep -q "OK - Compliant" <<<"$out"; then
    echo "tls-profile: $name: compliant with Mozilla intermediate"
  else
    echo "tls-profile: $name: NOT compliant" >&2
    sed -n '/COMPLIANCE AGAINST/,$p' <<<"$out" >&2
    failed=1
  fi
}
check "starttls listener" --starttls smtp "127.0.0.1:$p_starttls"
check "implicit listener" "127.0.0.1:$p_implicit"
check "auto listener, TLS client" "127.0.0.1:$p_auto"
check "auto listener, STARTTLS client" --starttls smtp "127.0.0.1:$p_auto"
exit $failed
