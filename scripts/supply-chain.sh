#!/usr/bin/env bash
# Supply-chain checks on both lock files (the relay's Cargo.lock and fuzz/Cargo.lock):
# `cargo audit` against a RustSec advisory database, and `cargo deny` for licenses, bans
# (duplicate versions as warnings) and sources, as deny.toml says and explains.
#
#   ADVISORY_DB=../shared/advisory-db bash scripts/supply-chain.sh
#
# The advisory database: this project's machines have no internet, so it is a local copy
# named by ADVISORY_DB (a directory holding RustSec's `crates/` tree, a git checkout or not;
# CI passes the shared offline snapshot), read with --no-fetch. ADVISORY_DB=fetch lets cargo
# audit download the current one instead (needs internet). Without ADVISORY_DB the script
# stops at once and says so, rather than failing inside cargo audit.
#
# cargo-audit and cargo-deny are installed if missing (`cargo install --locked`, newest
# release, about 5 minutes for the two on two cores; they share one build directory, kept in
# TOOLS_TARGET_DIR if set).
set -euo pipefail
cd "$(dirname "$0")/.."

db=${ADVISORY_DB:-}
if [ -z "$db" ]; then
  echo "supply-chain: no advisory database: set ADVISORY_DB to a RustSec advisory-db copy" >&2
  echo "  (CI: ADVISORY_DB=../shared/advisory-db), or ADVISORY_DB=fetch to download it" >&2
  exit 2
fi
if [ "$db" != fetch ] && [ ! -d "$db/crates" ]; then
  echo "supply-chain: ADVISORY_DB=$db is not a RustSec advisory database (no crates/ directory in it)" >&2
  exit 2
fi

missing=()
command -v cargo-audit >/dev/null || missing+=(cargo-audit)
command -v cargo-deny >/dev/null || missing+=(cargo-deny)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  start=$(date +%s)
  target=${TOOLS_TARGET_DIR:-$(mktemp -d)}
  # cargo-audit's one default feature scans binaries, which is not needed here.
  CARGO_TARGET_DIR=$target cargo install --locked --quiet --no-default-features "${missing[@]}"
  [ -n "${TOOLS_TARGET_DIR:-}" ] || rm -rf "$target"
  echo "   installed in $(($(date +%s) - start)) s"
fi

if [ "$db" = fetch ]; then
  audit=(cargo audit --deny warnings)
else
  audit=(cargo audit --db "$db" --no-fetch --deny warnings)
  if [ -f "$db/SNAPSHOT.md" ]; then
    echo "== advisory database: $db ($(grep -m1 -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}' "$db/SNAPSHOT.md" || echo 'date unknown'))"
  fi
fi

for lock in Cargo.lock fuzz/Cargo.lock; do
  echo "== cargo audit: $lock"
  "${audit[@]}" --file "$lock"
done

# cargo-deny reads ./deny.toml for both graphs.
echo "== cargo deny (licenses, bans, sources): the relay"
cargo deny --locked check --hide-inclusion-graph licenses bans sources
echo "== cargo deny (licenses, bans, sources): fuzz/"
cargo deny --locked --manifest-path fuzz/Cargo.toml check --hide-inclusion-graph licenses bans sources
echo "== supply chain: no advisory, license, ban or source finding"
