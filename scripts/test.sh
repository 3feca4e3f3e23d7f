#!/usr/bin/env bash
# The whole test suite: installs what the tests drive (scripts/install-test-deps.sh), then
# runs every Rust test, which includes the end-to-end and client suites. Extra arguments go
# to `cargo test` (e.g. `scripts/test.sh --test e2e`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --locked "$@"
