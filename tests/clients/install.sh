#!/usr/bin/env bash
# Installs every SMTP client the compatibility suite (tests/clients.rs) drives: swaks, Python
# (preinstalled), Ruby Action Mailer, PHP Symfony Mailer, Go, and Nodemailer pinned by
# tests/clients/nodemailer/package-lock.json. Idempotent: with everything in place it changes
# nothing and takes about a second.
set -euo pipefail
cd "$(dirname "$0")"

export DEBIAN_FRONTEND=noninteractive
missing=""
for package in swaks ruby-actionmailer php-cli php-symfony-mailer golang-go; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $package"
done
# Node.js may come from elsewhere than Debian (whose nodejs 18 is too old for Nodemailer 10).
command -v node >/dev/null && command -v npm >/dev/null || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
  echo "installing:$missing"
  if ! apt-get install -y -qq $missing >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
  fi
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "Node.js $(node --version) is too old for Nodemailer 10 (needs 20 or newer)" >&2
  exit 1
fi
# npm ci (from the lock file) unless the locked version is already installed.
locked=$(node -p 'require("./nodemailer/package-lock.json").packages["node_modules/nodemailer"].version')
installed=$(node -p 'try { require("./nodemailer/node_modules/nodemailer/package.json").version } catch { "" }')
if [ "$installed" != "$locked" ]; then
  (cd nodemailer && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "clients: swaks $(swaks --version | grep -o '[0-9]\{8\}' | head -1)," \
  "$(python3 --version)," \
  "actionmailer $(ruby -r action_mailer -e 'print ActionMailer.version') (ruby $(ruby -e 'print RUBY_VERSION'))," \
  "symfony/mailer $(dpkg-query -W -f='${Version}' php-symfony-mailer) (php $(php -r 'echo PHP_VERSION;'))," \
  "$(go version | cut -d' ' -f3)," \
  "nodemailer $(node -p 'require("./nodemailer/node_modules/nodemailer/package.json").version') (node $(node --version))"
