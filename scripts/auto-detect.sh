#!/usr/bin/env bash
# The measurement behind the `auto` listener's default auto_detect (docs/smtp.md "Listeners"):
# how long after accept the first byte of a TLS-first client arrives over a lossy path, directly
# and behind HAProxy with PROXY v2. Needs root (a network namespace and iptables) and haproxy.
#
#   scripts/auto-detect.sh                  # 20 000 connections per path, 1% loss
#   N=50000 LOSS=0.02 scripts/auto-detect.sh
#   N=2000 CHECK_MS=300 MIN_PCT=99.5 PROFILE=dev scripts/auto-detect.sh
#                                   # CI: fail below MIN_PCT at CHECK_MS (200 ms would fail)
#
# Inside a fresh network namespace, iptables drops LOSS of every packet on the loopback
# (each packet crosses INPUT once, so both directions lose). tc netem (for added delay) is not
# in every kernel (not in this project's CI machine); with it, set DELAY (e.g. 20ms) and the
# script adds it too.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
LOSS=${LOSS:-0.01}
DELAY=${DELAY:-}
PROFILE=${PROFILE:-release} # `dev` reuses the test build (CI); the timing is the network's
NS=sp-autodetect-$$
cargo build --profile "$PROFILE" --ignore-rust-version --example autodetect -q
dir=$PROFILE
[ "$PROFILE" = dev ] && dir=debug
BIN=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/$dir/examples/autodetect
TMP=$(mktemp -d)
cleanup() {
  [ -f "$TMP/haproxy.pid" ] && kill "$(cat "$TMP/haproxy.pid")" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" iptables -A INPUT -m statistic --mode random --probability "$LOSS" -j DROP
if [ -n "$DELAY" ]; then
  ip netns exec "$NS" tc qdisc add dev lo root netem delay "$DELAY" ||
    { echo "auto-detect.sh: tc netem is not available in this kernel; unset DELAY" >&2; exit 2; }
fi
echo "== $N connections, 50 at a time, ${LOSS} packet loss${DELAY:+, $DELAY added delay}, $(uname -r)"
ip netns exec "$NS" "$BIN" --listen 127.0.0.1:4650 --connections "$N" --label direct | tee "$TMP/out"

cat > "$TMP/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend smtps
  bind 127.0.0.1:4651
  default_backend relay
backend relay
  server relay 127.0.0.1:4652 send-proxy-v2
CFG
ip netns exec "$NS" haproxy -D -p "$TMP/haproxy.pid" -f "$TMP/haproxy.cfg"
sleep 0.5
ip netns exec "$NS" "$BIN" --listen 127.0.0.1:4652 --target 127.0.0.1:4651 --proxy-v2 \
  --connections "$N" --label haproxy | tee -a "$TMP/out"

if [ -n "${CHECK_MS:-}" ]; then
  MIN_PCT=${MIN_PCT:-99.9}
  bad=$(awk -v ms="$CHECK_MS" -v min="$MIN_PCT" '
    $2 == "auto_detect" && $3 == ms { pct = $6; sub("%", "", pct); if (pct + 0 < min + 0) print $1, pct "%" }
    $2 == "auto_detect" && $3 == ms { seen++ }
    END { if (seen < 2) print "no result at " ms " ms" }' "$TMP/out")
  if [ -n "$bad" ]; then
    echo "auto-detect.sh: below $MIN_PCT% at ${CHECK_MS} ms: $bad" >&2
    exit 1
  fi
  echo "auto-detect.sh: at least $MIN_PCT% detected within ${CHECK_MS} ms on both paths"
fi
