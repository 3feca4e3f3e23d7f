#!/usr/bin/env bash
# The memory-flood measurement: the shipped container image under a memory limit, flooded by
# many clients sending large messages at once, checked against the promise "200 clients each
# sending 25 MB at once into a pod with a 2.5 GiB limit get 250 or 452 4.3.1, and the process
# is never killed for memory".
#
#   sudo scripts/memory-flood.sh                                   # the full measurement
#   CLIENTS=20 MESSAGES=40 SIZE=4MiB MEMORY=512m scripts/memory-flood.sh   # a smoke run
#
# Needs root (rootful podman with runc, as scripts/container.sh). Steps:
#   1. builds the image with `scripts/container.sh build` (the first time this also makes the
#      builder base image with debootstrap: minutes), and the flood and stand-in API examples;
#   2. makes a development CA and server certificate, a random API key and a keys file
#      holding its digest (`sendpigeon-relay hash-key`, run from the image), and a
#      configuration that is config/container.toml with only `limits.connections_per_ip =
#      1000` added (no memory setting: the budget is the default share of the cgroup limit);
#   3. starts the stand-in REST API (`loadgen mock-api`) on the host's loopback, and the
#      image with `podman run --network host --memory $MEMORY`, upstream
#      http://127.0.0.1:PORT, keys checked against the keys file; the listeners and the admin
#      endpoint are put on free loopback ports (the host network is shared);
#   4. runs `examples/flood.rs` (CLIENTS at once, MESSAGES messages of SIZE bytes) while
#      sampling every ~200 ms the relay's VmRSS and VmHWM (/proc/<host pid>/status), the
#      container cgroup's usage and the budget in use (/metrics);
#   5. prints a report (also in $RUN_DIR/report.txt) and exits non-zero when a promise
#      fails: OOM-killed or gone, peak RSS, VmHWM or the cgroup's maximum usage at or above
#      90% of the limit, fewer than 90% of the messages accepted, any outcome other than 250
#      or 452 4.3.1, any message unaccounted for.
#
# Environment (defaults): CLIENTS=200 MESSAGES=400 SIZE=24MiB MEMORY=2560m (podman's syntax:
# 2560m, 3g or bytes), SKIP_BUILD=0 (1: use the image as it is), FLOOD_ARGS="" (extra flood
# options, e.g. --implicit, which then targets the implicit-TLS listener, or --declare-size), RUN_DIR=/var/tmp/sendpigeon-relay-container/
# memory-flood (certificates, configuration, logs, samples, report).
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-200}
MESSAGES=${MESSAGES:-400}
SIZE=${SIZE:-24MiB}
MEMORY=${MEMORY:-2560m}
SKIP_BUILD=${SKIP_BUILD:-0}
FLOOD_ARGS=${FLOOD_ARGS:-}
WORK=${WORK:-/var/tmp/sendpigeon-relay-container}
RUN_DIR=${RUN_DIR:-$WORK/memory-flood}
IMAGE=localhost/sendpigeon-relay:test
NAME=sendpigeon-relay-flood-$$

die() { echo "memory-flood: $*" >&2; exit 2; }
[[ $EUID == 0 ]] || die "run as root (rootful podman)"
for n in CLIENTS MESSAGES; do [[ ${!n} =~ ^[1-9][0-9]*$ ]] || die "$n must be a positive number"; done

# The limit in bytes, as podman reads --memory (b, k, m, g; binary units).
limit_bytes() {
  local v=${1,,} n unit
  [[ $v =~ ^([0-9]+)([bkmg]?)$ ]] || die "MEMORY: want a number with an optional b/k/m/g suffix: $1"
  n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]}
  case $unit in
    k) echo $((n << 10)) ;; m) echo $((n << 20)) ;; g) echo $((n << 30)) ;; *) echo "$n" ;;
  esac
}
LIMIT=$(limit_bytes "$MEMORY")
THRESHOLD=$((LIMIT * 90 / 100))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"/{tls,keys}
# The ulimits and runtime scripts/container.sh gives podman.
export CONTAINERS_CONF="$RUN_DIR/containers.conf"
cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF

MOCK_PID= SAMPLER_PID=
cleanup() {
  local status=$?
  [[ -n $SAMPLER_PID ]] && kill "$SAMPLER_PID" 2>/dev/null
  [[ -n $MOCK_PID ]] && kill "$MOCK_PID" 2>/dev/null
  if podman container exists "$NAME" 2>/dev/null; then
    podman logs "$NAME" >"$RUN_DIR/relay.log" 2>&1 || true
    podman rm -f "$NAME" >/dev/null 2>&1 || true
  fi
  wait 2>/dev/null || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== build"
if [[ $SKIP_BUILD == 1 ]]; then
  podman image exists "$IMAGE" || die "SKIP_BUILD=1 but there is no $IMAGE"
  echo "using the existing $IMAGE"
else
  scripts/container.sh build
fi
IMAGE_ID=$(podman image inspect "$IMAGE" --format '{{.Id}}')
cargo build --release --ignore-rust-version --example flood --example loadgen 2>"$RUN_DIR/cargo.log" \
  || { tail -30 "$RUN_DIR/cargo.log"; exit 1; }

echo "== certificate, key, configuration"
tls=$RUN_DIR/tls
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=memory-flood development CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$tls/tls.key" -out "$tls/tls.csr" 2>/dev/null
openssl x509 -req -in "$tls/tls.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
  -days 2 -out "$tls/tls.crt" -extfile <(printf '%s\n' \
    'subjectAltName=DNS:localhost,IP:127.0.0.1' 'basicConstraints=critical,CA:FALSE' \
    'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth') 2>/dev/null
chmod 0644 "$tls/tls.key" # the relay runs as 65532
KEY=sk_live_flood_$(openssl rand -hex 16)
printf '%s' "$KEY" | podman run -i --rm --network none "$IMAGE" hash-key >"$RUN_DIR/keys/keys.txt"
grep -Eq '^[0-9a-f]{64}$' "$RUN_DIR/keys/keys.txt" || die "hash-key printed: $(cat "$RUN_DIR/keys/keys.txt")"
# config/container.toml plus the connection cap, nothing else.
if grep -q '^\[limits\]' config/container.toml; then
  sed '/^\[limits\]/a connections_per_ip = 1000' config/container.toml >"$RUN_DIR/relay.toml"
else
  { cat config/container.toml; printf '\n[limits]\nconnections_per_ip = 1000\n'; } >"$RUN_DIR/relay.toml"
fi
diff config/container.toml "$RUN_DIR/relay.toml" | sed 's/^/    config: /' || true

read -r SMTP SUBMISSIONS ADMIN API < <(python3 -c 'import socket
ports = []
for _ in range(4):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s)
print(*[s.getsockname()[1] for s in ports])')

echo "== stand-in API on 127.0.0.1:$API"
target/release/examples/loadgen mock-api "127.0.0.1:$API" >"$RUN_DIR/mock-api.log" 2>&1 &
MOCK_PID=$!
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$API/v1/api-keys/current" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$API/v1/api-keys/current" >/dev/null || die "the stand-in API did not start"

echo "== podman run --network host --memory $MEMORY ($IMAGE_ID)"
podman rm -f "$NAME" >/dev/null 2>&1 || true
podman run -d --name "$NAME" --network host --memory "$MEMORY" --memory-swap "$MEMORY" \
  -v "$RUN_DIR/relay.toml:/etc/sendpigeon-relay/relay.toml:ro" \
  -v "$tls:/etc/sendpigeon-relay/tls:ro" -v "$RUN_DIR/keys:/etc/sendpigeon-relay/keys:ro" \
  -e "SENDPIGEON_RELAY_UPSTREAM=http://127.0.0.1:$API" \
  -e SENDPIGEON_RELAY_AUTH_VERIFY=keys-file \
  -e SENDPIGEON_RELAY_KEYS_FILE=/etc/sendpigeon-relay/keys/keys.txt \
  -e "SENDPIGEON_RELAY_LISTEN=starttls=127.0.0.1:$SMTP,implicit=127.0.0.1:$SUBMISSIONS" \
  -e "SENDPIGEON_RELAY_ADMIN=127.0.0.1:$ADMIN" \
  "$IMAGE" >/dev/null
METRICS=http://127.0.0.1:$ADMIN/metrics
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && break
  [[ $(podman inspect --format '{{.State.Running}}' "$NAME") == true ]] || break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 \
  || { podman logs "$NAME" 2>&1 | tail -20; die "the relay did not become ready"; }
PID=$(podman inspect --format '{{.State.Pid}}' "$NAME")
# The start-up line with the budget in effect (JSON logs: its message field).
BUDGET_LINE=$(podman logs "$NAME" 2>&1 | grep -m1 'memory budget' \
  | sed -E 's/.*"message":"(memory budget[^"]*)".*/\1/') || true
BUDGET_LINE=${BUDGET_LINE:-"(no memory budget line in the log)"}

# The container's memory cgroup: v1 (memory controller) or v2 (unified).
CGV1_PATH=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3; exit }' "/proc/$PID/cgroup")
if [[ -n $CGV1_PATH && -d /sys/fs/cgroup/memory$CGV1_PATH ]]; then
  CG=/sys/fs/cgroup/memory$CGV1_PATH CGV=1
  CG_USAGE=memory.usage_in_bytes CG_MAX=memory.max_usage_in_bytes CG_LIMIT=memory.limit_in_bytes
else
  CG=/sys/fs/cgroup$(awk -F: '$1 == "0" { print $3; exit }' "/proc/$PID/cgroup") CGV=2
  CG_USAGE=memory.current CG_MAX=memory.peak CG_LIMIT=memory.max
fi
[[ -r $CG/$CG_USAGE ]] || die "no memory cgroup found for pid $PID (tried $CG)"
echo "relay pid $PID, cgroup v$CGV $CG, limit $(cat "$CG/$CG_LIMIT")"
echo "$BUDGET_LINE"

# One line per ~200 ms: seconds, VmRSS kB, VmHWM kB, cgroup usage, cgroup maximum, budget in
# use (every fifth line; - otherwise), the cgroup's failcnt and oom_kill count. The last line
# keeps the cgroup's numbers: when the process is killed, its cgroup goes with the container.
CG_FAILCNT=memory.failcnt CG_OOM=memory.oom_control
[[ $CGV == 2 ]] && CG_FAILCNT=memory.events CG_OOM=memory.events
sample() {
  local t0 i=0 k v rss hwm usage max used failcnt kills
  t0=$(date +%s%N)
  printf 't_s\tvmrss_kb\tvmhwm_kb\tcgroup_usage\tcgroup_max\tbudget_used\tfailcnt\toom_kill\n'
  while :; do
    rss= hwm= failcnt=- kills=-
    { while read -r k v _; do
      case $k in VmRSS:) rss=$v ;; VmHWM:) hwm=$v ;; esac
    done <"/proc/$PID/status"; } 2>/dev/null || { echo "# process gone"; return; }
    { read -r usage <"$CG/$CG_USAGE"; } 2>/dev/null || usage=-
    { read -r max <"$CG/$CG_MAX"; } 2>/dev/null || max=-
    { while read -r k v; do
      case $k in oom_kill) kills=$v ;; max) failcnt=$v ;; esac
    done <"$CG/$CG_OOM"; } 2>/dev/null || true
    [[ $CGV == 1 ]] && { { read -r failcnt <"$CG/$CG_FAILCNT"; } 2>/dev/null || failcnt=-; }
    used=-
    if ((i++ % 5 == 0)); then
      used=$(curl -fsS --max-time 0.5 "$METRICS" 2>/dev/null \
        | awk '/^sendpigeon_relay_memory_budget_used_bytes / { print $2 }') || used=-
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
      "$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')" \
      "${rss:--}" "${hwm:--}" "$usage" "$max" "${used:--}" "$failcnt" "$kills"
    sleep 0.2
  done
}
sample >"$RUN_DIR/samples.tsv" &
SAMPLER_PID=$!

echo "== flood: $CLIENTS clients, $MESSAGES messages of $SIZE"
TARGET=127.0.0.1:$SMTP
[[ " $FLOOD_ARGS " == *" --implicit "* ]] && TARGET=127.0.0.1:$SUBMISSIONS
# shellcheck disable=SC2086 # FLOOD_ARGS is a list of options
target/release/examples/flood --target "$TARGET" --ca "$tls/ca.crt" --key "$KEY" \
  --clients "$CLIENTS" --messages "$MESSAGES" --size "$SIZE" $FLOOD_ARGS \
  >"$RUN_DIR/flood.out" 2> >(tee "$RUN_DIR/flood.err" >&2)
cat "$RUN_DIR/flood.out"
sleep 1
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=

echo "== after the flood"
RUNNING=$(podman inspect --format '{{.State.Running}}' "$NAME")
OOM_KILLED=$(podman inspect --format '{{.State.OOMKilled}}' "$NAME")
EXIT_CODE=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
last=$(grep -v '^#' "$RUN_DIR/samples.tsv" | tail -1)
LAST_SAMPLE_S=$(cut -f1 <<<"$last")
CG_GONE=false
[[ -e $CG/$CG_USAGE ]] || CG_GONE=true
CG_MAX_BYTES=$({ cat "$CG/$CG_MAX"; } 2>/dev/null || cut -f5 <<<"$last")
if [[ $CGV == 1 ]]; then
  OOM_KILLS=$({ awk '$1 == "oom_kill" { print $2 }' "$CG/memory.oom_control"; } 2>/dev/null || true)
  FAILCNT=$({ cat "$CG/memory.failcnt"; } 2>/dev/null || true)
else
  OOM_KILLS=$({ awk '$1 == "oom_kill" { print $2 }' "$CG/memory.events"; } 2>/dev/null || true)
  FAILCNT=$({ awk '$1 == "max" { print $2 }' "$CG/memory.events"; } 2>/dev/null || true)
fi
# Gone with the container: the last sampled values.
OOM_KILLS=${OOM_KILLS:-$(cut -f8 <<<"$last")}
FAILCNT=${FAILCNT:-$(cut -f7 <<<"$last")}
[[ $OOM_KILLS =~ ^[0-9]+$ ]] || OOM_KILLS=0
# The kernel's own word, when the log is readable: kills in this container's cgroup.
KERNEL_OOM=$({ dmesg 2>/dev/null || true; } | grep -F "${CG##*/}" | grep -c 'oom-kill:' || true)
MEMSTAT=$({ awk '$1 ~ /^(total_)?(rss|cache|anon|file)$/ { printf "%s %.1f MiB  ", $1, $2 / 1048576 }' \
  "$CG/memory.stat"; } 2>/dev/null || echo "(the cgroup is gone)")
PEAK_RSS_KB=$(awk -F'\t' 'NR > 1 && $2 ~ /^[0-9]+$/ && $2 > m { m = $2 } END { print m + 0 }' "$RUN_DIR/samples.tsv")
HWM_KB=$(awk -F'\t' 'NR > 1 && $3 ~ /^[0-9]+$/ && $3 > m { m = $3 } END { print m + 0 }' "$RUN_DIR/samples.tsv")
PEAK_USED=$(awk -F'\t' 'NR > 1 && $6 ~ /^[0-9]+$/ && $6 > m { m = $6 } END { print m + 0 }' "$RUN_DIR/samples.tsv")
if [[ $RUNNING == true ]]; then
  curl -fsS "$METRICS" >"$RUN_DIR/metrics.txt" || true
else
  : >"$RUN_DIR/metrics.txt"
fi
podman logs "$NAME" >"$RUN_DIR/relay.log" 2>&1 || true

# The flood's summary line: flood: key=value ...
declare -A F=()
for kv in $(grep -m1 '^flood: messages=' "$RUN_DIR/flood.out" | cut -d' ' -f2-); do F[${kv%%=*}]=${kv#*=}; done
[[ -n ${F[accepted]:-} ]] || die "the flood printed no summary line (see $RUN_DIR/flood.err)"
NOT_4_3_1=$(grep -E '^\s+[0-9]+ x 452 ' "$RUN_DIR/flood.out" | grep -vc '452 4\.3\.1' || true)
metric() { awk -v m="$1" '$1 == m { print $2 }' "$RUN_DIR/metrics.txt"; }
RELAY_ACCEPTED=$(metric sendpigeon_relay_messages_accepted_total)
# Without metrics (the relay is gone), its log says what it accepted.
[[ -n $RELAY_ACCEPTED ]] || RELAY_ACCEPTED=$(grep -c '"message":"message accepted"' "$RUN_DIR/relay.log" || true)

fails=()
[[ $RUNNING == true ]] || fails+=("the relay is not running any more (exit code $EXIT_CODE)")
[[ $OOM_KILLED == false && $OOM_KILLS == 0 && $KERNEL_OOM == 0 ]] \
  || fails+=("OOM-killed (podman OOMKilled=$OOM_KILLED, cgroup oom_kill=$OOM_KILLS, kernel log oom-kill lines=$KERNEL_OOM)")
((PEAK_RSS_KB * 1024 < THRESHOLD)) || fails+=("peak VmRSS $(mib $((PEAK_RSS_KB * 1024))) >= 90% of the limit")
((HWM_KB * 1024 < THRESHOLD)) || fails+=("VmHWM $(mib $((HWM_KB * 1024))) >= 90% of the limit")
[[ $CG_MAX_BYTES =~ ^[0-9]+$ ]] && ((CG_MAX_BYTES < THRESHOLD)) \
  || fails+=("cgroup maximum usage $CG_MAX_BYTES >= 90% of the limit")
((F[accepted] * 10 >= MESSAGES * 9)) || fails+=("accepted ${F[accepted]} < 90% of $MESSAGES")
((F[other] == 0)) || fails+=("${F[other]} replies other than 250 or 452")
((F[errors] == 0)) || fails+=("${F[errors]} messages ended in a connection error")
((NOT_4_3_1 == 0)) || fails+=("452 replies other than 452 4.3.1")
((F[unaccounted] == 0 && F[not_attempted] == 0)) \
  || fails+=("messages unaccounted for: ${F[unaccounted]} without an outcome, ${F[not_attempted]} never attempted")
[[ $RELAY_ACCEPTED == "${F[accepted]}" ]] \
  || fails+=("the relay counted $RELAY_ACCEPTED accepted, the flood ${F[accepted]}")

{
  echo "== memory-flood report ($(date -u +%FT%TZ))"
  echo "image:               $IMAGE_ID"
  echo "run:                 $CLIENTS clients, $MESSAGES messages of $SIZE (${F[message_bytes]} bytes), podman --memory $MEMORY (limit $(mib "$LIMIT"), 90% = $(mib "$THRESHOLD"))${FLOOD_ARGS:+, flood $FLOOD_ARGS}"
  echo "budget:              $BUDGET_LINE"
  echo "accepted (250):      ${F[accepted]} of $MESSAGES"
  echo "452 at DATA:         ${F[refused_452_data]}"
  echo "452 after data:      ${F[refused_452_end]}"
  echo "other replies:       ${F[other]}"
  echo "errors:              ${F[errors]}"
  echo "unaccounted:         ${F[unaccounted]} (never attempted: ${F[not_attempted]})"
  echo "elapsed:             ${F[elapsed_s]} s, ${F[mb_s]} MB/s accepted; end-of-data latency p50 ${F[eod_p50_s]} s, p99 ${F[eod_p99_s]} s"
  echo "peak VmRSS (sampled): $(mib $((PEAK_RSS_KB * 1024))) ($((PEAK_RSS_KB * 1024 * 100 / LIMIT))% of the limit)"
  echo "VmHWM:               $(mib $((HWM_KB * 1024))) ($((HWM_KB * 1024 * 100 / LIMIT))% of the limit)"
  if [[ $CG_MAX_BYTES =~ ^[0-9]+$ ]]; then
    echo "cgroup max usage:    $(mib "$CG_MAX_BYTES") ($((CG_MAX_BYTES * 100 / LIMIT))% of the limit; v$CGV $CG_MAX)"
  else
    echo "cgroup max usage:    unknown ($CG_MAX_BYTES)"
  fi
  echo "cgroup memory.stat:  $MEMSTAT"
  echo "OOM:                 podman OOMKilled=$OOM_KILLED, running=$RUNNING, exit code $EXIT_CODE; cgroup oom_kill=$OOM_KILLS, failcnt=$FAILCNT$([[ $CG_GONE == true ]] && echo " (last sampled at ${LAST_SAMPLE_S} s: the cgroup is gone)"); kernel log oom-kill lines for it: $KERNEL_OOM"
  echo "relay accepted:      $RELAY_ACCEPTED (its metrics, else its log)"
  echo "budget in use, peak sampled: $(mib "$PEAK_USED")"
  echo "metrics:"
  grep -E '^sendpigeon_relay_(memory_waits_total|messages_refused_total|memory_budget_used_bytes|messages_accepted_total|received_bytes_total|upstream_requests_total|connections_rejected_total)' \
    "$RUN_DIR/metrics.txt" | sed 's/^/    /' || echo "    (none: the relay is gone)"
  echo "files:               $RUN_DIR (flood.out, flood.err, samples.tsv, relay.log, metrics.txt)"
  if ((${#fails[@]})); then
    printf 'FAILED: %s\n' "${fails[@]}"
  else
    echo "PASSED: never OOM-killed, peak memory under 90% of the limit, >= 90% accepted, every refusal 452 4.3.1"
  fi
} | tee "$RUN_DIR/report.txt"
((${#fails[@]} == 0))
