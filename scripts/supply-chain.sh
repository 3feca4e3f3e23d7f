#!/usr/bin/env bash
# Supply-chain checks on Cargo.lock: `cargo audit` against a RustSec advisory database, and
# `cargo deny` for licenses, bans (with duplicate versions as warnings) and sources, as
# deny.toml says. Installs both tools if missing (`cargo install --locked`).
#
#   ADVISORY_DB=../shared/advisory-db bash scripts/supply-chain.sh
#
# The advisory database: this project's machines have no internet, so it comes from a local
# copy named by ADVISORY_DB (a directory holding RustSec's `crates/` tree; CI passes the
# shared offline snapshot) and is never fetched. ADVISORY_DB=fetch lets cargo audit download
# the current one instead (needs internet). Without ADVISORY_DB the script stops at once and
# says so, rather than failing inside cargo audit.
set -euo pipefail
cd "$(dirname "$0")/.."

db=${ADVISORY_DB:-}
if [ -z "$db" ]; then
  echo "supply-chain: no advisory database: set ADVISORY_DB to a RustSec advisory-db copy" >&2
  echo "  (CI: ADVISORY_DB=../shared/advisory-db), or ADVISORY_DB=fetch to download it" >&2
  exit 2
fi
if [ "$db" != fetch ] && [ ! -d "$db/crates" ]; then
  echo "supply-chain: ADVISORY_DB=$db is not an advisory database (no crates/ directory in it)" >&2
  exit 2
fi

for tool in cargo-audit cargo-deny; do
  if ! command -v "$tool" >/dev/null; then
    echo "== installing $tool"
    cargo install --locked --quiet "$tool"
  fi
done

echo "== cargo audit (advisories)"
if [ "$db" = fetch ]; then
  cargo audit --deny warnings
else
  # cargo audit wants a git checkout it can read; a plain copy is made into one.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp -R "$db/." "$work/advisory-db"
  (cd "$work/advisory-db" && git init -q && git add -A \
    && git -c user.name=ci -c user.email=ci@localhost commit -q -m snapshot)
  if [ -f "$db/SNAPSHOT.md" ]; then
    echo "   database: $(grep -m1 -o 'commit `[0-9a-f]*` ([0-9-]*)' "$db/SNAPSHOT.md" || echo "$db")"
  fi
  cargo audit --db "$work/advisory-db" --no-fetch --deny warnings
fi

echo "== cargo deny (licenses, bans, sources; see deny.toml)"
cargo deny --locked check licenses bans sources
