//! The binary's commands: `hash-key`, `check-config`, `--version`, and configuration errors
//! that are one line naming the setting, never a panic.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn relay() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sendpigeon-relay"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in std::env::vars() {
        if name.starts_with("SENDPIGEON_RELAY_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn run_with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().expect("wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn hash_key_prints_the_keys_file_line() {
    let mut cmd = relay();
    cmd.arg("hash-key");
    let out = run_with_stdin(cmd, b"sk_live_dev_sendpigeon_local_0001\n");
    assert!(out.status.success());
    let line = text(&out.stdout);
    assert_eq!(
        line,
        "a0c116bdcee65b28250f5be7b540e9c992f68bc64e57a166f9da2f0b3ecad991\n"
    );
    // The shipped development keys file holds exactly this digest.
    let keys = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev-keys.txt"))
        .unwrap();
    assert!(keys.lines().any(|l| l == line.trim()));
    assert!(!text(&out.stderr).contains("sk_live"));
}

#[test]
fn hash_key_refuses_empty_input() {
    let mut cmd = relay();
    cmd.arg("hash-key");
    let out = run_with_stdin(cmd, b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("sendpigeon-relay: error: "));
}

#[test]
fn version() {
    let out = relay().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("sendpigeon-relay {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_accepts_the_shipped_configuration() {
    let out = relay().arg("check-config").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("# config/relay.toml: OK\n"), "{stdout}");
    assert!(stdout.contains("# active upstream: Outbox(\"var/outbox\")"));
    assert!(stdout.contains("message_size = 26214400"));
    assert!(stdout.contains("memory_wait = \"1m\""), "{stdout}");
}

#[test]
fn check_config_prints_the_memory_budget_and_its_origin() {
    // Left out, the budget depends on the machine: a container limit or the 1 GiB default.
    let out = relay().arg("check-config").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("# memory budget: "))
        .unwrap_or_else(|| panic!("no memory budget line in {stdout}"));
    assert!(
        line == "# memory budget: 1 GiB (default, no container memory limit found)"
            || line.contains("% of the cgroup v"),
        "{line}"
    );
    // Set, it is the configured value.
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/relay.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.toml");
    std::fs::write(
        &path,
        base.replace("# memory_budget = \"1GiB\"", "memory_budget = \"1536MiB\""),
    )
    .unwrap();
    let out = relay()
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("# memory budget: 1.5 GiB (set by limits.memory_budget)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("memory_budget = 1610612736"), "{stdout}");
}

#[test]
fn overrides_from_the_environment() {
    let out = relay()
        .arg("check-config")
        .env("SENDPIGEON_RELAY_UPSTREAM", "outbox:/tmp/elsewhere")
        .env(
            "SENDPIGEON_RELAY_LISTEN",
            "starttls=0.0.0.0:587,implicit=0.0.0.0:465",
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Outbox(\"/tmp/elsewhere\")"), "{stdout}");
    assert!(stdout.contains("address = \"0.0.0.0:587\""));
}

/// Writes `config/relay.toml` with `edit` applied into a temp file and runs check-config.
fn check_edited(edit: impl Fn(String) -> String) -> (Option<i32>, String) {
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/relay.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.toml");
    std::fs::write(&path, edit(base)).unwrap();
    let out = relay()
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    (out.status.code(), text(&out.stderr))
}

#[test]
fn bad_configurations_are_one_line_naming_the_setting() {
    type Edit = Box<dyn Fn(String) -> String>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|c| c.replace("[limits]", "[limits]\nmessage_sise = 5")),
            "limits.message_sise: unknown field `message_sise`, expected one of",
        ),
        (
            Box::new(|c| c.replace("message_size = 26214400", "message_size = \"25XB\"")),
            "limits.message_size: invalid size \"25XB\"",
        ),
        (
            Box::new(|c| c.replace("recipients = 50", "recipients = 0")),
            "limits.recipients: must be at least 1",
        ),
        (
            Box::new(|c| c.replace("command_line = 2048", "command_line = 100")),
            "limits.command_line: 100 is below the RFC 5321 minimum of 512",
        ),
        (
            Box::new(|c| c.replace("tls_handshake = \"30s\"", "tls_handshake = \"soon\"")),
            "timeouts.tls_handshake: invalid duration \"soon\"",
        ),
        (
            Box::new(|c| c.replace("address = \"127.0.0.1:2587\"", "address = \"nowhere\"")),
            "listeners[0].address",
        ),
        (
            Box::new(|c| c.replacen("kind = \"auto\"", "kind = \"smtps\"", 1)),
            "listeners[0].kind",
        ),
        (
            Box::new(|c| c.replace("url = \"outbox:var/outbox\"", "url = \"ftp://x\"")),
            "upstream.url: unsupported upstream",
        ),
        (
            Box::new(|c| {
                c.replace(
                    "url = \"outbox:var/outbox\"",
                    "url = \"http://api.internal.example\"",
                )
            }),
            "upstream.url: \"http://api.internal.example\" is plain http to a host that is not loopback",
        ),
        (
            Box::new(|c| c.replace("verify = \"keys-file\"", "verify = \"upstream\"")),
            "auth.verify: \"upstream\" needs an http upstream",
        ),
        (
            Box::new(|c| c.replace("# memory_budget = \"1GiB\"", "memory_budget = \"1MiB\"")),
            "limits.memory_budget: 1 MiB is below the 37.67 MiB a 25 MiB message needs",
        ),
        (
            Box::new(|c| c.replace("memory_wait = \"60s\"", "memory_wait = \"0s\"")),
            "limits.memory_wait: must be longer than 0s",
        ),
        (
            Box::new(|c| c.replace("memory_wait = \"60s\"", "memory_wait = \"abc\"")),
            "limits.memory_wait: invalid duration \"abc\"",
        ),
        (Box::new(|c| c.replace("[server]", "[server\n")), "line "),
    ];
    for (edit, expected) in cases {
        let (code, stderr) = check_edited(edit);
        assert_eq!(code, Some(2), "{expected}: {stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr:?}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn an_upstream_timeout_not_below_the_grace_is_a_warning() {
    let (code, stderr) = check_edited(|c| c.replace("upstream = \"20s\"", "upstream = \"30s\""));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("timeouts.upstream: 30s is not below server.shutdown_grace (25s)"),
        "{stderr}"
    );
    let (code, stderr) = check_edited(|c| c);
    assert_eq!(code, Some(0));
    assert!(!stderr.contains("timeouts.upstream"), "{stderr}");
}

#[test]
fn plain_http_upstream_needs_a_loopback_host_or_allow_http() {
    // The refusal itself is in `bad_configurations_are_one_line_naming_the_setting`.
    for (url, allow) in [
        ("http://127.0.0.1:8080", "false"),
        ("http://localhost:8080", "false"),
        ("http://[::1]:8080", "false"),
        ("http://api.internal.example", "true"),
        ("https://api.internal.example", "false"),
    ] {
        let (code, stderr) = check_edited(|c| {
            c.replace("url = \"outbox:var/outbox\"", &format!("url = \"{url}\""))
                .replace("allow_http = false", &format!("allow_http = {allow}"))
        });
        assert_eq!(code, Some(0), "{url} (allow_http = {allow}): {stderr}");
    }
    let (code, stderr) =
        check_edited(|c| c.replace("url = \"outbox:var/outbox\"", "url = \"http://10.0.0.8\""));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("upstream.allow_http = true"), "{stderr}");
}

#[test]
fn serve_with_a_broken_key_file_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "not-a-digest\n").unwrap();
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/relay.toml")).unwrap();
    let config = base
        .replace("config/dev-keys.txt", &keys.display().to_string())
        .replace("127.0.0.1:2587", "127.0.0.1:0")
        .replace("127.0.0.1:2465", "127.0.0.1:0")
        .replace("certs/", &format!("{}/", dir.path().display()))
        .replace(
            "var/outbox",
            &dir.path().join("outbox").display().to_string(),
        );
    let path = dir.path().join("relay.toml");
    std::fs::write(&path, config).unwrap();
    let out = relay()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.contains("auth.keys_file: ")
            && last.contains("line 1: expected a 64-character hex SHA-256 digest"),
        "{stderr}"
    );
}

#[test]
fn missing_files_are_warnings_for_check_config_and_errors_for_serve() {
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/relay.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.toml");
    let config = base
        .replace("generate_if_missing = true", "generate_if_missing = false")
        .replace("certs/dev-cert.pem", "/nonexistent.pem")
        .replace("config/dev-keys.txt", "/nonexistent-keys")
        .replace(
            "var/outbox",
            &dir.path().join("outbox").display().to_string(),
        );
    std::fs::write(&path, config).unwrap();
    let out = relay()
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("tls.certificate: /nonexistent.pem does not exist"),
        "{stderr}"
    );
    assert!(
        stderr.contains("auth.keys_file: /nonexistent-keys does not exist"),
        "{stderr}"
    );
    let out = relay()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("tls.certificate: /nonexistent.pem does not exist"),
        "{stderr}"
    );
}

#[test]
fn the_production_configuration_checks() {
    let out = relay()
        .args(["check-config", "--config", "config/production.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("# active upstream: Http(\"https://api.sendpigeon.dev\")"),
        "{stdout}"
    );
    assert!(stdout.contains("verify = \"upstream\""));
    // The budget is no longer pinned: it follows the container's memory limit.
    assert!(!stdout.contains("memory_budget ="), "{stdout}");
    assert!(stdout.contains("# memory budget: "), "{stdout}");
    assert!(
        stdout.contains("address = \"0.0.0.0:587\"")
            && stdout.contains("address = \"0.0.0.0:465\"")
    );
}

#[test]
fn the_kubernetes_configuration_checks() {
    // The relay.toml embedded in deploy/kubernetes/configmap.yaml is a valid configuration.
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes/configmap.yaml"
    ))
    .unwrap();
    let start = yaml
        .find("relay.toml: |")
        .expect("relay.toml in the ConfigMap");
    let toml: String = yaml[start..]
        .lines()
        .skip(1)
        .map(|l| l.strip_prefix("    ").unwrap_or(l.trim()))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.toml");
    std::fs::write(&path, toml).unwrap();
    let out = relay()
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("proxy_protocol = true"), "{stdout}");
    // Same for the image's own configuration.
    let out = relay()
        .args(["check-config", "--config", "config/container.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}
