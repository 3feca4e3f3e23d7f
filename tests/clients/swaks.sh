#!/usr/bin/env bash
# swaks, run as SendPigeon's documentation shows it.
#
# Usage: swaks.sh CASE
# Settings come from the environment: SMTP_HOST, SMTP_PORT (STARTTLS), SMTPS_PORT (implicit
# TLS), API_KEY, FILES (big.bin). swaks never verifies the server's certificate, so there is
# no CA to give it. Prints swaks's transcript; the exit code is swaks's.
set -uo pipefail

docs() {
  # The documentation's command, with the server and key filled in.
  swaks --server "$SMTP_HOST:$SMTP_PORT" --tls \
    --auth-user apikey --auth-password "$API_KEY" \
    --from hello@yourdomain.com --to test@example.com \
    --header "Subject: Test SMTP" --body "Hello from SMTP" "$@"
}

implicit() {
  # The same with implicit TLS (--tlsc) on the other port.
  swaks --server "$SMTP_HOST:$SMTPS_PORT" --tlsc \
    --auth-user apikey --auth-password "$API_KEY" \
    --from hello@yourdomain.com --to test@example.com \
    --header "Subject: Test SMTP" --body "Hello from SMTP"
}

case "${1:-}" in
  docs) docs ;;
  login) docs --auth LOGIN ;;
  plain) docs --auth PLAIN ;;
  implicit) implicit ;;
  wrong_key) docs --auth-password sk_live_not_a_real_key ;;
  wrong_user) docs --auth-user admin ;;
  too_big) docs --attach-type application/octet-stream --attach "@$FILES/big.bin" ;;
  # The documentation's command without --tls (and so without AUTH, which needs TLS).
  no_starttls)
    swaks --server "$SMTP_HOST:$SMTP_PORT" \
      --from hello@yourdomain.com --to test@example.com \
      --header "Subject: Test SMTP" --body "Hello from SMTP" ;;
  *) echo "unknown case ${1:-}" >&2; exit 2 ;;
esac
