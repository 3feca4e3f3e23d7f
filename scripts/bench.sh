#!/usr/bin/env bash
# The README's performance numbers, reproduced with the project's own load generator
# (examples/loadgen.rs): no outside benchmark kit, so absolute numbers only (no reference
# server beside the relay), which move with the machine's load.
#
#   scripts/bench.sh                          # scenarios i-iv, 3 runs each, medians (~2 min)
#   RUNS=1 SCENARIOS=i,ii scripts/bench.sh    # a subset, one run each
#   N1=6000 N2=60000 N3=120 IDLE=2000 scripts/bench.sh  # the defaults: messages in (i), (ii),
#                                             # (iii) per run, idle sessions in (iv)
#   PIPELINING=on scripts/bench.sh            # pipeline EHLO+STARTTLS and MAIL/RCPT/DATA
#   KEEP=1 scripts/bench.sh                   # keep the temporary folder (config, logs, results)
#   LISTENER=auto scripts/bench.sh            # the clients' STARTTLS against an `auto` listener
#                                             # (each waits auto_detect, 300 ms, for the greeting)
#
# Steps: builds the release binary and the loadgen example; in a temporary folder writes a
# keys file holding the digest of a load key (`sendpigeon-relay hash-key`) and a configuration
# (STARTTLS on a free loopback port, a development certificate made by the relay on first start
# with tls.generate_if_missing, upstream = `loadgen mock-api` on another free port, keys file,
# connections_per_ip opened for one load source, JSON logs at info); starts the stand-in API and
# the relay with MALLOC_MMAP_THRESHOLD_=1048576 as in the container image; warms up; then runs
#   (i)   a new connection per 4 KiB message, 50 concurrent          (N1 messages)
#   (ii)  100 messages per connection, 50 concurrent, 4 KiB          (N2 messages)
#   (iii) 10 MiB messages with a base64 attachment, 8 concurrent     (N3 messages)
#   (iv)  IDLE authenticated TLS sessions held idle, each run on a freshly started relay
# all over STARTTLS + AUTH PLAIN, one command at a time (as most client libraries send; the
# team's outside benchmark kit does the same), messages a text + HTML multipart/alternative
# (plus a base64 PDF in iii), repeated RUNS times (i-iii interleaved: i ii iii, i ii iii,
# ...), and prints the medians as a Markdown table for the README, with the date and machine.
#
# Measured by `loadgen --watch-pid <relay pid> --json`: msg/s, MB/s, end-of-data latency
# p50/p99 (last byte of DATA sent -> 250), the relay's CPU (utime + stime from /proc/PID/stat,
# before and after, per accepted message), its peak RSS in (iii) (VmHWM reset before each run;
# RSS and RssAnon sampled every 20 ms), and in (iv) its RSS growth divided by the sessions
# (after 2 s of settling). Needs Linux (/proc) and python3 (to find free ports).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
SCENARIOS=${SCENARIOS:-i,ii,iii,iv}
N1=${N1:-6000}
N2=${N2:-60000}
N3=${N3:-120}
IDLE=${IDLE:-2000}
KEEP=${KEEP:-0}
PIPELINING=${PIPELINING:-off}
LISTENER=${LISTENER:-starttls}
case $LISTENER in
  starttls | auto) ;;
  *) echo "bench.sh: LISTENER is starttls or auto" >&2; exit 2 ;;
esac
case $PIPELINING in
  off) SHAPE=(--html --no-pipelining) ;;
  on) SHAPE=(--html) ;;
  *) echo "bench.sh: PIPELINING is on or off" >&2; exit 2 ;;
esac
for s in ${SCENARIOS//,/ }; do
  case $s in i | ii | iii | iv) ;; *) echo "bench.sh: unknown scenario '$s' (i, ii, iii, iv)" >&2; exit 2 ;; esac
done
has() { [[ ",$SCENARIOS," == *",$1,"* ]]; }

T_START=$(date +%s)
log() { echo "[$(($(date +%s) - T_START))s] $*" >&2; }

log "building: cargo build --release --ignore-rust-version --bins --example loadgen"
cargo build --release --ignore-rust-version --bins --example loadgen
TARGET_DIR=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)
RELAY_BIN="$TARGET_DIR/release/sendpigeon-relay"
LOADGEN="$TARGET_DIR/release/examples/loadgen"
T_BUILT=$(date +%s)

# 2 000 idle sessions need more than the usual 1 024 descriptors, in the relay and the loadgen.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE + 200)) ]; then
  echo "bench.sh: open-file limit $(ulimit -n) is too low for IDLE=$IDLE sessions" >&2
  exit 2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sendpigeon-bench.XXXXXX")
API_PID=""
RELAY_PID=""

stop_pid() { # pid: TERM, wait up to 30 s (the relay drains), then KILL
  local pid=$1 k
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((k = 0; k < 300; k++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$RELAY_PID"
  stop_pid "$API_PID"
  if [ "$KEEP" = 1 ]; then echo "bench.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r API_PORT SMTP_PORT < <(python3 -c 'import socket
ports = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s)
print(*[s.getsockname()[1] for s in ports])')

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port pid what
  local k
  for ((k = 0; k < 300; k++)); do
    listening "$1" && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench.sh: $3 did not start listening on 127.0.0.1:$1; its log:" >&2
  tail -n 20 "$TMP/$3.log" >&2 || true
  exit 1
}

KEY="sk_live_bench_loadgen_$(date +%s)_$$"
printf '%s' "$KEY" | "$RELAY_BIN" hash-key > "$TMP/keys.txt"
cat > "$TMP/relay.toml" <<TOML
[server]
hostname = "bench.localhost"
max_connections = 20000

[[listeners]]
kind = "$LISTENER"
address = "127.0.0.1:$SMTP_PORT"

[tls]
certificate = "$TMP/cert.pem"
key = "$TMP/key.pem"
generate_if_missing = true
development_ca = "$TMP/ca.pem"

[auth]
verify = "keys-file"
keys_file = "$TMP/keys.txt"

[limits]
connections_per_ip = 20000
memory_budget = "2GiB"

[upstream]
url = "http://127.0.0.1:$API_PORT"

[log]
format = "json"
TOML

"$LOADGEN" mock-api "127.0.0.1:$API_PORT" > "$TMP/mock-api.log" 2>&1 &
API_PID=$!
wait_port "$API_PORT" "$API_PID" mock-api

start_relay() {
  (cd "$TMP" && MALLOC_MMAP_THRESHOLD_=1048576 RUST_LOG=info \
    exec "$RELAY_BIN" serve --config "$TMP/relay.toml") >> "$TMP/relay.log" 2>&1 &
  RELAY_PID=$!
  wait_port "$SMTP_PORT" "$RELAY_PID" relay
}
stop_relay() {
  stop_pid "$RELAY_PID"
  RELAY_PID=""
}

lg() { # mode flags...: one loadgen run against the relay; its JSON line on stdout
  local mode=$1
  shift
  "$LOADGEN" "$mode" --target "127.0.0.1:$SMTP_PORT" --ca "$TMP/ca.pem" --key "$KEY" \
    --watch-pid "$RELAY_PID" --json "${SHAPE[@]}" "$@" 2>> "$TMP/loadgen.log"
}
warm_up() { # connections messages per-connection
  lg send --connections "$1" --messages "$2" --per-connection "$3" --size 4096 > /dev/null ||
    log "warm-up failed; see $TMP/loadgen.log"
}

scenario_flags() {
  case $1 in
    i) echo "--connections 50 --per-connection 1 --messages $N1 --size 4096" ;;
    ii) echo "--connections 50 --per-connection 100 --messages $N2 --size 4096" ;;
    iii) echo "--connections 8 --per-connection 1 --messages $N3 --size 10485760 --attachment" ;;
  esac
}

RESULTS="$TMP/results.tsv" # scenario TAB run TAB loadgen JSON
: > "$RESULTS"
get() { # json key -> value ("null" when absent)
  local v
  v=$(sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" <<< "$1")
  echo "${v:-null}"
}
DIRTY=0
record() { # scenario run json
  local s=$1 r=$2 j=$3
  printf '%s\t%s\t%s\n' "$s" "$r" "$j" >> "$RESULTS"
  if [ "$s" = iv ]; then
    log "  (iv) run $r: $(get "$j" established)/$IDLE sessions, $(get "$j" kb_per_session) KB per session" \
      "($(get "$j" anon_kb_per_session) KB anonymous), opened in $(get "$j" open_s) s"
    [ "$(get "$j" established)" = "$IDLE" ] || DIRTY=1
  else
    log "  ($s) run $r: $(get "$j" msgs_per_s) msg/s, $(get "$j" mb_per_s) MB/s," \
      "p50 $(get "$j" p50_ms) ms, p99 $(get "$j" p99_ms) ms, relay $(get "$j" relay_cpu_ms_per_msg) ms CPU/msg," \
      "peak RSS $(get "$j" relay_hwm_kb) KB"
    [ "$(get "$j" failed_sessions)" = 0 ] || DIRTY=1
  fi
}

log "temporary folder $TMP; relay on 127.0.0.1:$SMTP_PORT, stand-in API on 127.0.0.1:$API_PORT"
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_BENCH=$(date +%s)

if has i || has ii || has iii; then
  start_relay
  log "relay pid $RELAY_PID started; warm-up"
  warm_up 10 200 1
  warm_up 10 500 50
  for ((r = 1; r <= RUNS; r++)); do
    for s in i ii iii; do
      has "$s" || continue
      log "scenario ($s) run $r/$RUNS"
      # shellcheck disable=SC2046 # the flags are meant to split
      if out=$(lg send $(scenario_flags "$s")); then
        record "$s" "$r" "$out"
      else
        DIRTY=1
        log "  loadgen failed; see $TMP/loadgen.log"
      fi
    done
  done
  stop_relay
fi

if has iv; then
  for ((r = 1; r <= RUNS; r++)); do
    start_relay # memory per session is measured on a fresh relay
    warm_up 2 20 1
    log "scenario (iv) run $r/$RUNS: $IDLE idle sessions on relay pid $RELAY_PID"
    if out=$(lg idle --connections "$IDLE" --settle-ms 2000); then
      record iv "$r" "$out"
    else
      DIRTY=1
      log "  loadgen failed; see $TMP/loadgen.log"
    fi
    stop_relay
  done
fi
T_END=$(date +%s)

# ---- the table: medians over the runs
median() { # scenario key
  awk -F'\t' -v s="$1" '$1 == s { print $3 }' "$RESULTS" |
    sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" | grep -v '^null$' | sort -g |
    awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
num() { # value decimals [divisor]: rounded, thousands separated by spaces as in the README
  awk -v x="$1" -v d="$2" -v div="${3:-1}" 'BEGIN {
    if (x == "-" || x == "") { print "-"; exit }
    s = sprintf("%." d "f", x / div); neg = (substr(s, 1, 1) == "-"); if (neg) s = substr(s, 2)
    i = s; f = ""; p = index(s, "."); if (p) { i = substr(s, 1, p - 1); f = substr(s, p) }
    while (length(i) > 3) { f = " " substr(i, length(i) - 2) f; i = substr(i, 1, length(i) - 3) }
    print (neg ? "-" : "") i f }'
}
lat() { echo "$(num "$(median "$1" p50_ms)" "$2") / $(num "$(median "$1" p99_ms)" "$2") ms"; }
cpu() { echo "$(num "$(median "$1" relay_cpu_ms_per_msg)" "$2") ms"; }

CPU_MODEL=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
MEM=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
CMD="scripts/bench.sh"
[ "$RUNS" = 3 ] || CMD="RUNS=$RUNS $CMD"
[ "$SCENARIOS" = i,ii,iii,iv ] || CMD="SCENARIOS=$SCENARIOS $CMD"
[ "$PIPELINING" = off ] || CMD="PIPELINING=$PIPELINING $CMD"
[ "$LISTENER" = starttls ] || CMD="LISTENER=$LISTENER $CMD"
SIZES="N1=$N1 N2=$N2 N3=$N3 IDLE=$IDLE"
[ "$SIZES" = "N1=6000 N2=60000 N3=120 IDLE=2000" ] || CMD="$SIZES $CMD"
SIZES="$N1 messages in (i), $N2 in (ii), $N3 in (iii), $IDLE sessions in (iv)"
{
  echo
  echo "Run of $(date -u +%Y-%m-%d) with \`$CMD\` ($SIZES; $([ "$RUNS" = 1 ] && echo "one run" || echo "medians of $RUNS runs")):" \
    "$(nproc) cores ($CPU_MODEL), $MEM, $(uname -sm), load average $LOADAVG_START at the start;" \
    "relay, load generator and stand-in API on the same cores."
  echo
  echo "| Scenario | throughput | end-of-data latency p50 / p99 | relay CPU per message | memory |"
  echo "|---|---|---|---|---|"
  if has i; then
    echo "| (i) new connection per 4 KiB message, 50 concurrent | $(num "$(median i msgs_per_s)" 0) msg/s | $(lat i 1) | $(cpu i 2) | |"
  fi
  if has ii; then
    echo "| (ii) 100 messages per connection, 50 concurrent, 4 KiB | $(num "$(median ii msgs_per_s)" 0) msg/s | $(lat ii 1) | $(cpu ii 2) | |"
  fi
  if has iii; then
    hwm=$(median iii relay_hwm_kb)
    [ "$hwm" != - ] || hwm=$(median iii relay_rss_peak_kb)
    echo "| (iii) 10 MiB with a base64 attachment, 8 concurrent | $(num "$(median iii mb_per_s)" 0) MB/s ($(num "$(median iii msgs_per_s)" 1) msg/s) | $(lat iii 0) | $(cpu iii 1) | peak RSS $(num "$hwm" 0 1024) MB ($(num "$(median iii relay_anon_peak_kb)" 0 1024) MB anonymous) |"
  fi
  if has iv; then
    echo "| (iv) $(num "$IDLE" 0) idle authenticated TLS sessions | | | | $(num "$(median iv kb_per_session)" 1) KB per session ($(num "$(median iv anon_kb_per_session)" 1) KB anonymous) |"
  fi
  echo
  if [ "$PIPELINING" = off ]; then how="one command at a time"; else how="EHLO+STARTTLS and MAIL/RCPT/DATA pipelined"; fi
  echo "STARTTLS + AUTH PLAIN on every connection, $how; messages a text + HTML"
  echo "multipart/alternative (in (iii) with a base64 PDF). Latency runs from the last byte of DATA"
  echo "to the 250 (the relay has mapped and POSTed the message by then); connect, TLS and AUTH are"
  echo "not in it. CPU is the relay process's user + system time over the run divided by the"
  echo "messages accepted. Peak RSS is VmHWM (reset before each run), its anonymous part the highest"
  echo "RssAnon sampled every 20 ms; (iv) is the relay's RSS growth divided by the sessions, on a"
  echo "freshly started relay."
} > "$TMP/table.md"
cat "$TMP/table.md"
echo
if [ "$DIRTY" = 1 ]; then
  echo "bench.sh: some runs had failed sessions or loadgen errors: not a clean run (see $TMP/loadgen.log)" >&2
  KEEP=1
fi
log "took $((T_END - T_BENCH)) s of measuring, $((T_END - T_START)) s in all (build $((T_BUILT - T_START)) s)"
[ "$DIRTY" = 0 ]
