//! TLS to a real PostgreSQL 15 server with `ssl=on`, a certificate signed by its own CA and
//! plain TCP rejected (scripts/services/postgres.sh): verify-full against that CA connects
//! encrypted; another CA, the system store and plain TCP are refused, at once and in words
//! that say what to change.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use reviews_ports::Classified;
use reviews_postgres::{PgConfig, PgError, TlsMode};

/// The admin URL with its query replaced by `query` (empty: none).
fn admin_url_with(query: &str) -> String {
    let url = admin_url();
    let base = url.split_once('?').map_or(url.as_str(), |(b, _)| b);
    if query.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{query}")
    }
}

/// A CA of our own that signed nothing the server has.
fn other_ca(dir: &Path) -> std::path::PathBuf {
    let pem = dir.join("other-ca.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=some other CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-keyout",
        ])
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&pem)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pem
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn the_test_server_is_reached_over_verified_tls() {
    let admin = admin();
    assert_eq!(admin.tls_mode(), TlsMode::VerifyFull);
    assert!(admin.root_cert().is_some(), "the test URL names its CA");
    let client = admin.connect().await.unwrap();
    let row = client
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the session is encrypted");
    let version: String = row.get(1);
    assert!(
        ["TLSv1.2", "TLSv1.3"].contains(&version.as_str()),
        "{version}"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn verify_full_is_the_default_and_the_system_store_does_not_trust_a_private_ca() {
    // No sslmode, no sslrootcert: verify-full against the system's CAs, which do not include
    // the cluster's own CA: refused, at the first attempt, with what to change.
    let cfg = PgConfig::new(&admin_url_with(""))
        .unwrap()
        .with_attempts(3, Duration::from_millis(10));
    assert_eq!(cfg.tls_mode(), TlsMode::VerifyFull);
    match cfg.connect().await {
        Err(e @ PgError::Config(_)) => {
            // A machine with no system CA store at all says so instead.
            assert!(e.to_string().contains("sslrootcert"), "{e}");
        }
        Err(e @ PgError::Connect { attempts, .. }) => {
            assert_eq!(attempts, 1, "a refused certificate is not retried: {e}");
            assert!(!e.is_retryable(), "{e}");
            let text = e.to_string();
            assert!(text.contains("certificate"), "{text}");
            assert!(text.contains("sslrootcert"), "{text}");
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("connected without trusting the server's CA"),
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn a_certificate_from_another_ca_is_refused_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = other_ca(dir.path());
    let cfg = PgConfig::new(&admin_url_with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        wrong.display()
    )))
    .unwrap()
    .with_attempts(3, Duration::from_millis(10));
    let err = cfg
        .connect()
        .await
        .expect_err("another CA must not be trusted");
    assert!(
        matches!(err, PgError::Connect { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(err.error_type(), "FatalError");
    let text = err.to_string();
    assert!(text.contains("certificate"), "{text}");
    assert!(text.contains("sslrootcert"), "{text}");
    // The password is not in the message.
    let password = admin_url()
        .split(':')
        .nth(2)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    assert!(!text.contains(&password), "{text}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn plain_tcp_is_refused_by_the_server_and_weak_modes_by_the_client() {
    let err = PgConfig::new(&admin_url_with("sslmode=disable"))
        .unwrap()
        .connect()
        .await
        .expect_err("the server rejects connections without TLS");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("no encryption"), "{err}");

    for weak in ["require", "prefer", "verify-ca"] {
        let err = PgConfig::new(&admin_url_with(&format!("sslmode={weak}"))).expect_err("refused");
        assert!(matches!(err, PgError::Config(_)), "{err}");
        assert!(err.to_string().contains("verify-full"), "{err}");
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test starts it"]
async fn a_default_ca_applies_only_when_the_url_names_none() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = other_ca(dir.path());
    // The URL's CA wins over the configured default...
    let cfg = admin().with_default_root_cert(Some(&wrong));
    assert_ne!(cfg.root_cert(), Some(wrong.as_path()));
    cfg.connect().await.unwrap();
    // ...and without one in the URL the default is used.
    let ca = admin().root_cert().unwrap().to_path_buf();
    let cfg = PgConfig::new(&admin_url_with(""))
        .unwrap()
        .with_default_root_cert(Some(&ca));
    cfg.connect().await.unwrap();
}
