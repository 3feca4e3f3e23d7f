#!/usr/bin/env bash
# The operators' files under deploy/ checked with promtool (Debian's `prometheus` package):
# the alert rules parse and each alert fires on its synthetic series (alerts.test.yml), and
# every query of the Grafana dashboard is valid PromQL. That every metric they name is exposed
# after traffic is tests/dashboards.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || { echo "check-dashboards.sh: promtool not installed (apt-get install prometheus)" >&2; exit 2; }
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts.test.yml)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Each panel query as a recording rule, with Grafana's variables given values.
python3 - "$tmp/dashboard-rules.yml" <<'PY'
import json, sys
dash = json.load(open("deploy/grafana/sendpigeon-relay.json"))
lines = ["groups:", "  - name: dashboard", "    rules:"]
n = 0
for panel in dash["panels"]:
    for target in panel.get("targets", []):
        expr = target["expr"].replace("$__rate_interval", "5m").replace('"$instance"', '".*"')
        n += 1
        lines.append(f"      - record: dashboard:query_{n}")
        lines.append("        expr: " + json.dumps(expr))
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
print(f"{n} dashboard queries from {len(dash['panels'])} panels")
PY
promtool check rules "$tmp/dashboard-rules.yml"
