//! Test helpers: a real PostgreSQL 15 server, from REVIEWS_TEST_PG_URL (a superuser URL) or
//! started once per test process with scripts/services/postgres.sh. Tests never skip.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use reviews_postgres::{PgConfig, SetupConfig};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run scripts/services/postgres.sh with `args` (and extra environment), returning stdout.
pub fn postgres_sh(args: &[&str], env: &[(&str, &str)]) -> String {
    let script = repo_root().join("scripts/services/postgres.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run postgres.sh");
    assert!(
        out.status.success(),
        "postgres.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The superuser URL of the shared test server (started on first use).
pub fn admin_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("REVIEWS_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            postgres_sh(&["start"], &[]);
            postgres_sh(&["url"], &[])
        }
    })
    .clone()
}

pub fn admin() -> PgConfig {
    PgConfig::new(&admin_url()).unwrap()
}

/// A setup config of names private to one test (database `t_<name>`, roles
/// `t_<name>_owner` / `t_<name>_reader`), with the test's database dropped first so each run
/// starts clean.
pub async fn fresh(name: &str) -> SetupConfig {
    let admin = admin();
    let client = admin.connect().await.unwrap();
    let db = format!("t_{name}");
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
        .await
        .unwrap();
    SetupConfig {
        database: db,
        owner_role: format!("t_{name}_owner"),
        reader_role: format!("t_{name}_reader"),
        reader_password: format!("pw-{name}-reader"),
    }
}

/// Connection settings of the reader role of `cfg`'s database.
pub fn reader(admin: &PgConfig, cfg: &SetupConfig) -> PgConfig {
    admin
        .with_database(&cfg.database)
        .with_credentials(&cfg.reader_role, &cfg.reader_password)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
