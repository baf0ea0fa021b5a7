//! Test helpers: real servers on loopback for the integration tests (moto serves the real S3
//! and Secrets Manager APIs, PostgreSQL 15 and the MongoDB wire server are the ones
//! `scripts/test` starts, or started here on first use; tests that need a server never skip:
//! a missing server is a failure that says how to get it), and, for the fast tier only,
//! in-memory implementations of the source and archive ports ([`ports`]).

pub mod faulty;
pub mod ports;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use reviews_domain::RawReview;
use reviews_sources::{SyntheticConfig, SyntheticReviews};

pub use faulty::FaultyLake;
pub use ports::{MemoryArchive, MemoryFeed};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A moto server (S3, Secrets Manager, ...) on a free loopback port, stopped on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server() -> PathBuf {
    if let Ok(p) = std::env::var("REVIEWS_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".cache/test-venv/bin/moto_server");
    assert!(
        venv.exists(),
        "moto is not installed: run the tests with scripts/test (or eval \"$(scripts/test-env.sh)\")"
    );
    venv
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for a test server).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait until something listens on `127.0.0.1:port`.
pub fn wait_for_port(port: u16, what: &str, timeout: Duration) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < timeout,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Moto {
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        wait_for_port(port, "moto", Duration::from_secs(30));
        moto
    }

    /// SDK settings for this server: dummy credentials, us-east-1.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                Credentials::new("test", "test", None, None, "static"),
            ))
            .build()
    }

    /// An S3 client (path-style addressing, as emulators need).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config())
    }

    /// Create a bucket and return an S3 client for it.
    pub async fn bucket(&self, name: &str) -> aws_sdk_s3::Client {
        let s3 = self.s3();
        s3.create_bucket().bucket(name).send().await.unwrap();
        s3
    }

    /// Create a secret with a string value.
    pub async fn secret(&self, id: &str, value: &str) {
        self.secrets_manager()
            .create_secret()
            .name(id)
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }
}

/// Run `scripts/services/<service>.sh` with `args` (and extra environment), returning stdout.
pub fn service_sh(service: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let script = repo_root().join(format!("scripts/services/{service}.sh"));
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("run {service}.sh: {e}"));
    assert!(
        out.status.success(),
        "{service}.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn from_env_or_start(var: &str, service: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => {
            service_sh(service, &["start"], &[]);
            service_sh(service, &["url"], &[])
        }
    }
}

/// The superuser URL of the shared PostgreSQL 15 test server: `REVIEWS_TEST_PG_URL`, or
/// started once per test process with scripts/services/postgres.sh.
pub fn postgres_admin_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| from_env_or_start("REVIEWS_TEST_PG_URL", "postgres"))
        .clone()
}

/// The archive writer's URI of the shared MongoDB wire server: `REVIEWS_TEST_MONGO_URI`, or
/// started once per test process with scripts/services/mongo.sh.
pub fn mongo_writer_uri() -> String {
    static URI: OnceLock<String> = OnceLock::new();
    URI.get_or_init(|| from_env_or_start("REVIEWS_TEST_MONGO_URI", "mongo"))
        .clone()
}

/// The administrator's URI of the same MongoDB wire server: `REVIEWS_TEST_MONGO_ADMIN_URI`,
/// or asked of scripts/services/mongo.sh (which started it).
pub fn mongo_admin_uri() -> String {
    static URI: OnceLock<String> = OnceLock::new();
    URI.get_or_init(|| match std::env::var("REVIEWS_TEST_MONGO_ADMIN_URI") {
        Ok(v) if !v.is_empty() => v,
        _ => {
            mongo_writer_uri();
            service_sh("mongo", &["url", "admin"], &[])
        }
    })
    .clone()
}

/// `n` synthetic raw rows (5% invalid on purpose), review ids prefixed with `prefix` so that
/// tests sharing a server do not collide.
pub fn synthetic(n: u64, seed: u64, prefix: &str) -> Vec<RawReview> {
    SyntheticReviews::new(SyntheticConfig {
        seed,
        reviews: n,
        invalid_share: 0.05,
        ..Default::default()
    })
    .map(|mut r| {
        r.review_id = r.review_id.map(|id| format!("{prefix}{id}"));
        r
    })
    .collect()
}
