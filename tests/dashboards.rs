//! The Grafana dashboard and the Prometheus alert rules under `deploy/` name only metrics the
//! relay exposes: after real traffic (a delivered message, a refused one, a session on every
//! listener kind), every `sendpigeon_relay_*` name in their queries is a family in `/metrics`.
//! A renamed metric fails here; `scripts/check-dashboards.sh` (promtool, in CI) proves the
//! queries parse and each alert fires.

mod common;

use std::collections::BTreeSet;

use common::client::Client;
use common::relay::{KEY, TestRelay};

/// Every `sendpigeon_relay_...` name in `text`.
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("sendpigeon_relay_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        out.insert(name);
    }
    out
}

/// Metric families with at least one sample: `# TYPE name kind` lines.
fn exposed(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_metric_of_the_dashboard_and_the_alerts_is_exposed_after_traffic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/sendpigeon-relay.json"))
        .expect("dashboard");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 10));
    let alerts =
        std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).expect("alert rules");
    let used: BTreeSet<String> = names(&dashboard)
        .into_iter()
        .chain(names(&alerts))
        .collect();
    assert!(used.len() >= 15, "{used:?}");

    let relay = TestRelay::start(|_| {}).await;
    // A delivered message over STARTTLS, a refused one, and a TLS-first session on the auto port.
    let (mut c, auth) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert!(auth.starts_with("235"), "{auth}");
    c.begin_message().await;
    c.send("From: s@sender.example\r\nSubject: hi\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\nHi\r\n.\r\n")
        .await;
    assert!(c.reply().await.starts_with("250 "));
    c.begin_message().await;
    c.send("From: s@sender.example\r\nBroken header line\r\n\r\nHi\r\n.\r\n")
        .await;
    assert!(c.reply().await.starts_with("554 "));
    let (mut t, _) = Client::tls(relay.auto, &relay.ca()).await;
    assert!(t.cmd("QUIT").await.starts_with("221"));

    let (status, metrics) = relay.admin_get("/metrics").await;
    assert_eq!(status, 200);
    let families = exposed(&metrics);
    let missing: Vec<&String> = used
        .iter()
        .filter(|name| {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| families.contains(*base))
                .unwrap_or(name);
            !families.contains(family)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "named by deploy/ but not exposed: {missing:?}\n{metrics}"
    );
    assert!(metrics.contains("sendpigeon_relay_ready 1"), "{metrics}");
}
