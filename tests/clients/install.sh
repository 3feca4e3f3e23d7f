#!/usr/bin/env bash
# Installs every SMTP client the compatibility suite (tests/clients.rs) drives: swaks, Python
# (preinstalled), Ruby Action Mailer, PHP Symfony Mailer, Go, and Nodemailer pinned by
# tests/clients/nodemailer/package-lock.json. Idempotent: a second run changes nothing and
# takes a second or two.
set -euo pipefail
cd "$(dirname "$0")"

export DEBIAN_FRONTEND=noninteractive
packages="swaks ruby-actionmailer php-cli php-symfony-mailer golang-go nodejs npm"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# nodejs/npm may come from elsewhere (a newer Node than Debian's 18); only the commands matter.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=$(echo "$missing" | tr ' ' '\n' | grep -vxE 'nodejs|npm|' | tr '\n' ' ' || true)
fi
missing=$(echo $missing)
if [ -n "$missing" ]; then
  echo "installing: $missing"
  if ! apt-get install -y -qq $missing >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
  fi
fi

# Nodemailer 10 needs Node 20 or newer.
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "Node $(node --version) is too old for Nodemailer 10 (needs 20+)" >&2
  exit 1
fi
# npm ci only when the installed tree does not match the lock file.
if ! (cd nodemailer && [ -f node_modules/.package-lock.json ] \
      && cmp -s <(node -p 'JSON.stringify(require("./package-lock.json").packages["node_modules/nodemailer"].version)') \
                <(node -p 'JSON.stringify(require("./node_modules/nodemailer/package.json").version)')); then
  (cd nodemailer && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "clients: swaks $(swaks --version 2>&1 | grep -o '[0-9]\{8\}' | head -1)," \
  "$(python3 --version), ruby $(ruby -e 'print RUBY_VERSION')" \
  "(actionmailer $(ruby -e 'require "action_mailer"; print ActionMailer.version')), php $(php -r 'echo PHP_VERSION;')," \
  "$(go version | cut -d' ' -f3), node $(node --version)" \
  "(nodemailer $(node -p 'require("./nodemailer/node_modules/nodemailer/package.json").version'))"
