//! TLS to the backing services, as far as this machine allows: a private
//! PostgreSQL server and a private Redis server that accept TLS
//! connections only, with certificates from a CA made here, reached
//! through `AV_DATABASE_URL`'s `sslmode` / `sslrootcert` and a `rediss://`
//! `AV_REDIS_URL` with `AV_REDIS_CA_FILE`, as an operator sets them for
//! managed services; and the stack's ClickHouse behind a TLS-only HTTPS
//! endpoint (nginx terminating TLS: the local ClickHouse build cannot open
//! its own HTTPS port), reached through an `https://` `AV_CLICKHOUSE_URL`
//! with `AV_CLICKHOUSE_CA_FILE`.

use crate::helpers::free_port;
use std::path::{Path, PathBuf};
use std::process::Command;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("running a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// As the `postgres` user (PostgreSQL refuses to run as root).
fn as_postgres(program: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--", program]);
    c
}

/// In `dir`: `ca.crt` (a CA made here) and `server.crt` / `server.key`, a
/// certificate for localhost that it signs (webpki refuses a CA
/// certificate used as the server's own).
fn make_certificates(dir: &Path) {
    let ssl = |args: &[&str]| run(Command::new("openssl").current_dir(dir).args(args));
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=AgentVista test CA",
    ]);
    ssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "server.ext",
    ]);
}

/// A PostgreSQL cluster in a temporary directory, on its own port, with
/// `ssl = on` and a `pg_hba.conf` that rejects every connection without
/// TLS; stopped and removed when dropped.
struct TlsPostgres {
    dir: PathBuf,
    port: u16,
}

impl TlsPostgres {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("av-pg-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        make_certificates(&dir);
        run(Command::new("chmod").args(["600", &dir.join("server.key").display().to_string()]));
        run(Command::new("chown").args(["-R", "postgres:postgres", &dir.display().to_string()]));
        let data = dir.join("data");
        run(as_postgres(&format!("{PG_BIN}/initdb")).args([
            "-D",
            &data.display().to_string(),
            "-U",
            "postgres",
            "--auth=trust",
        ]));
        let port = free_port();
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{d}'\n\
             ssl = on\nssl_cert_file = '{d}/server.crt'\nssl_key_file = '{d}/server.key'\n",
            d = dir.display()
        );
        append(&data.join("postgresql.conf"), &conf);
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        run(as_postgres(&format!("{PG_BIN}/pg_ctl")).args([
            "-D",
            &data.display().to_string(),
            "-l",
            &dir.join("pg.log").display().to_string(),
            "-w",
            "start",
        ]));
        TlsPostgres { dir, port }
    }

    fn url(&self, params: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/postgres?{params}",
            self.port
        )
    }

    fn ca(&self) -> String {
        self.dir.join("ca.crt").display().to_string()
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&format!("{PG_BIN}/pg_ctl"))
            .args([
                "-D",
                &self.dir.join("data").display().to_string(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn postgres_over_tls_with_a_verified_certificate() {
    let pg = TlsPostgres::start();
    // verify-full: the certificate chains to the given CA and names the
    // host; the query API's own connection (and its migrations) over it.
    let mut common = agentvista_shared::config::CommonConfig::from_env().unwrap();
    common.database_url = agentvista_shared::config::Secret::new(
        pg.url(&format!("sslmode=verify-full&sslrootcert={}", pg.ca())),
    );
    let (pool, applied) = query_api::connect_pg(&common)
        .await
        .expect("connecting over TLS");
    assert!(!applied.is_empty(), "the migrations ran over TLS");
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ssl, "the session is encrypted");
    pool.close().await;

    // Without TLS the server refuses; without the CA the certificate is
    // not trusted.
    for params in [
        "sslmode=disable".to_string(),
        "sslmode=verify-full".to_string(),
    ] {
        let r = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&pg.url(&params))
            .await;
        assert!(r.is_err(), "{params} must fail");
    }
    // `require` encrypts without verifying (as libpq's sslmode=require).
    let r = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&pg.url("sslmode=require"))
        .await;
    assert!(r.is_ok(), "sslmode=require connects: {:?}", r.err());
}

#[tokio::test]
async fn redis_over_tls_with_a_verified_certificate() {
    let dir = std::env::temp_dir().join(format!("av-redis-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    make_certificates(&dir);
    let port = free_port();
    let mut server = Command::new("redis-server")
        .current_dir(&dir)
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args([
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            "server.crt",
        ])
        .args([
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
            "--tls-auth-clients",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starting redis-server");
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut common = agentvista_shared::config::CommonConfig::from_env().unwrap();
    common.redis_url = format!("rediss://localhost:{port}/0");
    common.redis_ca_file = Some(dir.join("ca.crt").display().to_string());
    let redis = query_api::connect_redis(&common)
        .await
        .expect("connecting over TLS");
    let mut conn = redis.connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
    // Without the CA the server's certificate is not trusted; without TLS
    // the server does not answer.
    for (url, ca) in [
        (format!("rediss://localhost:{port}/0"), None),
        (format!("redis://localhost:{port}/0"), None),
    ] {
        common.redis_url = url.clone();
        common.redis_ca_file = ca;
        let r = async {
            let redis = query_api::connect_redis(&common).await?;
            let mut conn = redis.connection().await?;
            Ok::<String, anyhow::Error>(redis::cmd("PING").query_async::<String>(&mut conn).await?)
        };
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), r).await;
        assert!(!matches!(r, Ok(Ok(_))), "{url} must not answer");
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// nginx serving HTTPS only on a port of its own, with a certificate from a
/// CA made here, in front of the stack's ClickHouse HTTP port; stopped and
/// removed when dropped.
struct TlsProxy {
    dir: PathBuf,
    child: std::process::Child,
    port: u16,
}

impl TlsProxy {
    fn start(upstream: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("av-ch-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        make_certificates(&dir);
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\nevents {{}}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
               server {{\n    listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {d}/server.crt;\n    ssl_certificate_key {d}/server.key;\n\
                 location / {{ proxy_pass {upstream}; proxy_http_version 1.1; \
                   proxy_set_header Connection \"\"; proxy_buffering off; proxy_request_buffering off; }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let nginx = std::env::var("AV_NGINX_BIN").unwrap_or_else(|_| "nginx".into());
        let child = Command::new(&nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off; user root;"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{nginx}: {e}; scripts/test installs nginx"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        TlsProxy { dir, child, port }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn clickhouse_over_https_with_a_verified_certificate() {
    let mut common = agentvista_shared::config::CommonConfig::from_env().unwrap();
    let proxy = TlsProxy::start(&common.clickhouse_url);
    let ca = proxy.dir.join("ca.crt").display().to_string();
    // The CA file is checked when the configuration is read: a file
    // without a certificate is refused with its name.
    let not_pem = proxy.dir.join("nginx.conf").display().to_string();
    let err = agentvista_shared::clients::ca_certificates(&not_pem).unwrap_err();
    assert!(err.contains("nginx.conf"), "{err}");
    assert_eq!(
        agentvista_shared::clients::ca_certificates(&ca)
            .unwrap()
            .len(),
        1
    );

    common.clickhouse_url = format!("https://localhost:{}", proxy.port);
    common.clickhouse_ca_file = Some(ca);
    let version: String = agentvista_shared::clients::clickhouse_server(&common)
        .query("SELECT version()")
        .fetch_one()
        .await
        .expect("a query over HTTPS");
    assert!(!version.is_empty());
    // The services' own clients: the migrations and a read of the schema.
    writer::schema::migrate_config(&common)
        .await
        .expect("migrations over HTTPS");
    let tables: u64 = agentvista_shared::clients::clickhouse(&common)
        .query("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'spans'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(tables, 1);

    // Without the CA the certificate is not trusted; plain HTTP to the TLS
    // port gets no answer from ClickHouse.
    for (url, ca) in [
        (format!("https://localhost:{}", proxy.port), None),
        (format!("http://localhost:{}", proxy.port), None),
    ] {
        common.clickhouse_url = url.clone();
        common.clickhouse_ca_file = ca;
        let r = agentvista_shared::clients::clickhouse_server(&common)
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await;
        assert!(r.is_err(), "{url} must not answer");
    }
}
