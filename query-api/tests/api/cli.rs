//! The operator commands as an operator runs them: `--help` everywhere,
//! `migrate` saying what it did, `admin bootstrap` with the signup password
//! rules, and the writer's readiness naming Kafka as well as ClickHouse.

use crate::helpers::{bin, free_port, ChildGuard};
use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(bin(name))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn every_binary_and_subcommand_answers_help() {
    for (name, args, mentions) in [
        ("ingest-gateway", vec!["--help"], "Usage: ingest-gateway"),
        ("writer", vec!["--help"], "dead-letters"),
        ("writer", vec!["migrate", "--help"], "Usage: writer migrate"),
        (
            "writer",
            vec!["dead-letters", "replay", "--help"],
            "--offset",
        ),
        ("query-api", vec!["--help"], "admin"),
        (
            "query-api",
            vec!["migrate", "--help"],
            "Usage: query-api migrate",
        ),
        ("query-api", vec!["admin", "bootstrap", "--help"], "--name"),
        (
            "query-api",
            vec!["admin", "set-price", "--help"],
            "defaults to the input price",
        ),
    ] {
        let out = run(name, &args);
        assert!(out.status.success(), "{name} {args:?}: {}", text(&out));
        assert!(
            text(&out).contains(mentions),
            "{name} {args:?}: {}",
            text(&out)
        );
    }
    let out = run("query-api", &["no-such-command"]);
    assert!(!out.status.success());
}

#[test]
fn migrate_says_what_it_applied() {
    // The test run has migrated both stores already: nothing is pending.
    let out = run("query-api", &["migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("postgres schema is up to date"),
        "{}",
        text(&out)
    );
    let out = run("writer", &["migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("clickhouse schema is up to date"),
        "{}",
        text(&out)
    );
}

#[test]
fn bootstrap_applies_the_signup_password_rules_and_says_when_it_adds_a_key() {
    let email = format!("boot-{}@example.com", uuid::Uuid::new_v4().simple());
    let out = run(
        "query-api",
        &[
            "admin",
            "bootstrap",
            "--email",
            &email,
            "--password",
            "short",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("password: must be 8 to 256 characters"),
        "{}",
        text(&out)
    );
    let password = "long enough password";
    let args = [
        "admin",
        "bootstrap",
        "--email",
        &email,
        "--password",
        password,
        "--name",
        "Boot Strap",
    ];
    let out = run("query-api", &args);
    assert!(out.status.success(), "{}", text(&out));
    let first: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(first["created_user"], true);
    assert!(
        first["org_slug"]
            .as_str()
            .unwrap()
            .starts_with("boot-strap"),
        "{first}"
    );
    // Again: a second key for the same user, said so.
    let out = run("query-api", &args);
    assert!(out.status.success(), "{}", text(&out));
    let second: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(second["created_user"], false);
    assert_ne!(second["api_key"], first["api_key"]);
    assert!(
        text(&out).contains("creating another API key"),
        "{}",
        text(&out)
    );
}

/// GET `path` on `addr` with a bare HTTP/1.1 request.
fn http_get(addr: &str, path: &str) -> Option<(u16, Value)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split("\r\n\r\n").nth(1)?;
    Some((status, serde_json::from_str(body).ok()?))
}

#[test]
fn writer_readiness_needs_kafka_as_well_as_clickhouse() {
    for (brokers, ready) in [(None, true), (Some("127.0.0.1:1"), false)] {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(bin("writer"));
        cmd.env("AV_WRITER_LISTEN", &addr)
            .env(
                "AV_WRITER_GROUP",
                format!("readyz-{}", uuid::Uuid::new_v4().simple()),
            )
            .env(
                "AV_KAFKA_TOPIC",
                format!("av-readyz-{}", uuid::Uuid::new_v4().simple()),
            )
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(b) = brokers {
            cmd.env("AV_KAFKA_BROKERS", b);
        }
        let _writer = ChildGuard(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        let (status, body) = loop {
            if let Some(answer) = http_get(&addr, "/readyz") {
                break answer;
            }
            assert!(
                Instant::now() < deadline,
                "the writer's health endpoint never answered"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(body["clickhouse"], true, "{body}");
        assert_eq!(body["kafka"], ready, "{body}");
        assert_eq!(status, if ready { 200 } else { 503 }, "{body}");
    }
}
