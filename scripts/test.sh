#!/usr/bin/env bash
# The whole test suite: installs what the tests drive (scripts/install-test-deps.sh), then
# runs every Rust test, which includes the end-to-end and client suites. Extra arguments go
# to `cargo test` (e.g. `scripts/test.sh --test e2e`). `--ignore-rust-version`: mail-parser
# 1.0.1 declares Rust 1.98 and builds and passes with this machine's 1.95 (README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --locked --ignore-rust-version "$@"
