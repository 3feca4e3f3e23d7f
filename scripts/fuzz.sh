#!/usr/bin/env bash
# Fuzzes the relay: builds the cargo-fuzz targets in fuzz/ (its own workspace) and runs each
# one for SECONDS seconds on a temporary copy of its committed corpus (fuzz/corpus/<target>),
# so a run never rewrites the committed corpus. Exits non-zero if any target crashed, hung or
# ran out of memory, printing the reproducer's path (fuzz/artifacts/<target>/...).
#
#   bash scripts/fuzz.sh SECONDS [TARGET...]     e.g. bash scripts/fuzz.sh 60
#
# Needs a nightly toolchain (`rustup toolchain install nightly`; FUZZ_TOOLCHAIN picks another)
# and cargo-fuzz, which is installed if missing (`cargo install cargo-fuzz --locked`).
#
# Rust version: mail-parser 1.0.1 declares rust-version 1.98, newer than the nightly here, so
# every cargo build needs --ignore-rust-version. cargo-fuzz runs a plain `cargo build` and has
# no way to pass that flag (and cargo has no config key or environment variable for it;
# CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS only affects version resolution), so this script
# puts a small `cargo` shim first in PATH for the cargo-fuzz calls: it adds
# --ignore-rust-version to `cargo build` and `cargo run` (cargo-fuzz starts a target with
# `cargo run`), and passes everything else through to the real cargo
# (the rustup proxy, which keeps the +nightly toolchain through RUSTUP_TOOLCHAIN). By hand:
#   PATH=<dir with that shim>:$PATH cargo +nightly fuzz build
#   PATH=<dir with that shim>:$PATH cargo +nightly fuzz run session -- -max_total_time=60
# or run a built target directly: fuzz/target/x86_64-unknown-linux-gnu/release/<target> ...
#
# Reproduce a crash:  fuzz/target/x86_64-unknown-linux-gnu/release/<target> <artifact file>
# Set FUZZ_KEEP_WORKDIR=1 to keep the working corpus (to merge new inputs with
# `<target binary> -merge=1 fuzz/corpus/<target> <workdir>/corpus/<target>`).
set -euo pipefail

usage() {
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
}
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
seconds=$1
shift

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz="$root/fuzz"
toolchain=${FUZZ_TOOLCHAIN:-nightly}
all_targets=(session data sasl proxy config mapping)
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi

# Longest input per target: a session or message of 64 KiB (plus the few control bytes the
# targets read first), a PROXY header as peeked (4096 bytes), a SASL line, a config file.
max_len() {
    case $1 in
        session | data) echo 65542 ;;
        mapping) echo 65536 ;;
        proxy) echo 4100 ;;
        sasl) echo 4096 ;;
        config) echo 16384 ;;
        *) echo 65536 ;;
    esac
}

if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/relay-fuzz.XXXXXX")
cleanup() {
    if [[ ${FUZZ_KEEP_WORKDIR:-0} == 1 ]]; then
        echo "working corpus kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# The shim (see the header).
real_cargo=$(command -v cargo)
mkdir -p "$work/bin"
cat >"$work/bin/cargo" <<EOF
#!/usr/bin/env bash
case \${1:-} in
    build | run) exec "$real_cargo" "\$1" --ignore-rust-version "\${@:2}" ;;
    *) exec "$real_cargo" "\$@" ;;
esac
EOF
chmod +x "$work/bin/cargo"
export PATH="$work/bin:$PATH"

cd "$fuzz"
echo "== building the fuzz targets (release, debug assertions, AddressSanitizer)"
start=$(date +%s)
cargo "+$toolchain" fuzz build
echo "   built in $(($(date +%s) - start)) s"

# Every committed reproducer first: a fixed finding must stay fixed.
bin="$fuzz/target/x86_64-unknown-linux-gnu/release"
for target in "${targets[@]}"; do
    mapfile -t regressions < <(find "$fuzz/regressions" -type f -name "$target-*" 2>/dev/null | sort)
    if [[ ${#regressions[@]} -gt 0 ]]; then
        echo "== $target: ${#regressions[@]} regression input(s)"
        "$bin/$target" "${regressions[@]}" >"$work/$target.regressions.log" 2>&1 || {
            tail -40 "$work/$target.regressions.log" >&2
            echo "!! $target: a committed regression input fails again" >&2
            exit 1
        }
    fi
done

failed=()
summary=()
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    mkdir -p "$corpus" "$fuzz/artifacts/$target"
    if [[ -d $fuzz/corpus/$target ]]; then
        cp -R "$fuzz/corpus/$target/." "$corpus/"
    fi
    before=$(find "$fuzz/artifacts/$target" -type f | sort)
    log="$work/$target.log"
    echo "== $target: ${seconds} s, $(find "$corpus" -type f | wc -l) corpus inputs"
    status=0
    cargo "+$toolchain" fuzz run "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$(max_len "$target")" \
        -timeout=30 -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    line="$target: ${execs:-?} executions, ${rate:-?} exec/s, ${cov:-no coverage line}, $(find "$corpus" -type f | wc -l) corpus inputs after"
    if [[ $status -ne 0 ]]; then
        new=$(comm -13 <(echo "$before") <(find "$fuzz/artifacts/$target" -type f | sort) | grep . || true)
        echo "!! $target failed (exit $status); the end of its log:" >&2
        grep -v '^#[0-9]' "$log" | tail -40 >&2
        echo "!! reproducer(s): ${new:-none written (see the log above)}" >&2
        failed+=("$target: ${new:-exit $status}")
        line="$line  FAILED"
    fi
    summary+=("$line")
    echo "   $line"
done

echo "== summary"
printf '   %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "== FAILED targets and their reproducers:" >&2
    printf '   %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "== no crash"
