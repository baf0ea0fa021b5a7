//! Secrets (database URIs with their passwords) from AWS Secrets Manager: read on first use,
//! then cached for a TTL (`REVIEWS_SECRET_TTL_SECS`, default 15 minutes) so that a rotated
//! secret reaches a warm function; a caller whose login is refused asks for a fresh read at
//! once ([`Secret::refresh`]). Environment variables only *name* the secrets
//! (`REVIEWS_PG_SECRET_ID`, `REVIEWS_MONGO_SECRET_ID`). For local runs a secret may instead be
//! given by value in another variable (`REVIEWS_PG_URL`, ...): that is never set in the
//! Terraform deployment.
//!
//! A secret's value is the URI itself, a JSON object with a `uri` (or `url`) field, or the
//! shape RDS-managed and rotated secrets have: `username`, `password`, `host`, `port`,
//! `dbname` (PostgreSQL) — the URI is built from those.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::Mutex;

use crate::error::FunctionError;

/// How long a secret read from Secrets Manager is used before it is read again.
pub const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(900);

/// The environment variable that overrides [`DEFAULT_SECRET_TTL`] (seconds).
pub const SECRET_TTL_ENV: &str = "REVIEWS_SECRET_TTL_SECS";

/// Which URI a secret in the RDS field shape becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// `postgres://username:password@host:port/dbname`
    Postgres,
    /// `mongodb://username:password@host:port/[dbname]` (DocumentDB's shape; `ssl: true`
    /// adds `tls=true`)
    Mongo,
}

/// [`SECRET_TTL_ENV`], else [`DEFAULT_SECRET_TTL`]; anything but a non-negative number of
/// seconds is a fatal error naming the variable.
pub fn secret_ttl_from_env() -> Result<Duration, FunctionError> {
    match std::env::var(SECRET_TTL_ENV) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                FunctionError::fatal(format!(
                    "{SECRET_TTL_ENV}={v:?} is not a number of seconds (e.g. 900)"
                ))
            }),
        _ => Ok(DEFAULT_SECRET_TTL),
    }
}

/// The Secrets Manager client, built once (it reaches the emulator when `AWS_ENDPOINT_URL`
/// is set).
#[derive(Clone)]
pub struct SecretsClient {
    client: Client,
}

impl SecretsClient {
    pub async fn from_env() -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self {
            client: Client::new(&config),
        }
    }

    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The current value of a secret. Throttling, timeouts and server errors are retryable;
    /// a missing secret, no permission or an empty value are not.
    pub async fn get(&self, id: &str) -> Result<String, FunctionError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| {
                let retryable = match &e {
                    SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
                    SdkError::ServiceError(s) => matches!(
                        s.err().code(),
                        Some("ThrottlingException" | "InternalServiceError")
                    ),
                    SdkError::ResponseError(_) => true,
                    _ => false,
                };
                let code = e.code().unwrap_or("unknown").to_owned();
                let msg = e.message().map(str::to_owned).unwrap_or_else(|| {
                    // DisplayErrorContext names the cause (connection refused, ...) without
                    // any request content.
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string()
                });
                FunctionError::classified(
                    retryable,
                    format!("Secrets Manager GetSecretValue {id}: {code}: {msg}"),
                )
            })?;
        let raw = out
            .secret_string()
            .ok_or_else(|| FunctionError::fatal(format!("secret {id} has no string value")))?;
        Ok(raw.to_owned())
    }
}

/// The URI inside a secret value: the value itself, the `uri`/`url` field of a JSON object, or
/// the URI built from the RDS fields. Errors never quote the value.
fn value_of(id: &str, raw: &str, kind: SecretKind) -> Result<String, FunctionError> {
    let raw = raw.trim();
    if raw.starts_with('{') {
        let doc: serde_json::Value = serde_json::from_str(raw)
            .map_err(|_| FunctionError::fatal(format!("secret {id} is not valid JSON")))?;
        if let Some(uri) = ["uri", "url"]
            .iter()
            .find_map(|k| doc.get(*k).and_then(|v| v.as_str()))
        {
            return Ok(uri.to_owned());
        }
        return uri_from_fields(id, &doc, kind);
    }
    if raw.is_empty() {
        return Err(FunctionError::fatal(format!("secret {id} is empty")));
    }
    Ok(raw.to_owned())
}

/// `username`, `password`, `host`, `port` (number or text), `dbname`: the fields of an
/// RDS-managed secret (and of the rotation templates' secrets).
fn uri_from_fields(
    id: &str,
    doc: &serde_json::Value,
    kind: SecretKind,
) -> Result<String, FunctionError> {
    let field = |k: &str| {
        doc.get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let missing: Vec<&str> = ["username", "password", "host"]
        .into_iter()
        .filter(|k| field(k).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(FunctionError::fatal(format!(
            "secret {id}: JSON value with neither a \"uri\" field nor the RDS fields (missing: {})",
            missing.join(", ")
        )));
    }
    let port = match doc.get("port") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    if doc.get("port").is_some_and(|p| !p.is_null()) && port.is_none_or(|p| p > 65535) {
        return Err(FunctionError::fatal(format!(
            "secret {id}: \"port\" is not a port number"
        )));
    }
    let (scheme, default_port) = match kind {
        SecretKind::Postgres => ("postgres", 5432),
        SecretKind::Mongo => ("mongodb", 27017),
    };
    let host = field("host").unwrap_or_default();
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]") // an IPv6 address
    } else {
        host.to_owned()
    };
    let mut uri = format!(
        "{scheme}://{}:{}@{host}:{}/",
        encode(field("username").unwrap_or_default()),
        encode(field("password").unwrap_or_default()),
        port.unwrap_or(default_port),
    );
    match kind {
        SecretKind::Postgres => uri.push_str(&encode(field("dbname").unwrap_or("postgres"))),
        SecretKind::Mongo => {
            if let Some(db) = field("dbname") {
                uri.push_str(&encode(db));
            }
            if doc.get("ssl").and_then(|v| v.as_bool()) == Some(true) {
                uri.push_str("?tls=true");
            }
        }
    }
    Ok(uri)
}

/// Percent-encoding of a URI user, password or path segment (RFC 3986 unreserved kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

enum Source {
    Manager {
        client: SecretsClient,
        id: String,
        ttl: Duration,
    },
    Value(String),
}

struct Cached {
    value: Arc<str>,
    read_at: Instant,
}

/// One secret setting, resolved on first use and cached (for the TTL, when it comes from
/// Secrets Manager). Its `Debug` never shows the value.
pub struct Secret {
    what: &'static str,
    kind: SecretKind,
    source: Source,
    cached: Mutex<Option<Cached>>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match &self.source {
            Source::Manager { id, .. } => format!("secretsmanager:{id}"),
            Source::Value(_) => "environment".to_owned(),
        };
        f.debug_struct("Secret")
            .field("what", &self.what)
            .field("from", &from)
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// `id_var` names a Secrets Manager secret (production); when it is unset, `value_var`
    /// holds the value itself (local runs). Neither set: a fatal error naming both.
    pub async fn from_env(
        what: &'static str,
        kind: SecretKind,
        id_var: &str,
        value_var: &str,
    ) -> Result<Arc<Self>, FunctionError> {
        let id = std::env::var(id_var).ok().filter(|v| !v.trim().is_empty());
        let value = std::env::var(value_var)
            .ok()
            .filter(|v| !v.trim().is_empty());
        let source = match (id, value) {
            (Some(id), _) => Source::Manager {
                client: SecretsClient::from_env().await,
                id,
                ttl: secret_ttl_from_env()?,
            },
            (None, Some(v)) => Source::Value(v),
            (None, None) => {
                return Err(FunctionError::fatal(format!(
                    "{what}: set {id_var} (a Secrets Manager secret id) or, locally, {value_var}"
                )));
            }
        };
        Ok(Arc::new(Self {
            what,
            kind,
            source,
            cached: Mutex::new(None),
        }))
    }

    /// A Secrets Manager secret, cached for [`DEFAULT_SECRET_TTL`].
    pub fn from_manager(
        what: &'static str,
        kind: SecretKind,
        client: SecretsClient,
        id: impl Into<String>,
    ) -> Self {
        Self {
            what,
            kind,
            source: Source::Manager {
                client,
                id: id.into(),
                ttl: DEFAULT_SECRET_TTL,
            },
            cached: Mutex::new(None),
        }
    }

    /// How long a value read from Secrets Manager is used (no effect on a value given by the
    /// environment).
    pub fn with_ttl(mut self, new_ttl: Duration) -> Self {
        if let Source::Manager { ttl, .. } = &mut self.source {
            *ttl = new_ttl;
        }
        self
    }

    /// The value: read on the first call and again once the TTL has passed, from the cache
    /// otherwise. A failed read is not cached, so the next call tries again.
    pub async fn get(&self) -> Result<Arc<str>, FunctionError> {
        self.read(false).await
    }

    /// The value read afresh, whatever the TTL: for a caller whose login was just refused
    /// (the secret may have been rotated since it was cached).
    pub async fn refresh(&self) -> Result<Arc<str>, FunctionError> {
        self.read(true).await
    }

    async fn read(&self, force: bool) -> Result<Arc<str>, FunctionError> {
        let mut cached = self.cached.lock().await;
        let (client, id, ttl) = match &self.source {
            Source::Value(v) => {
                let v = cached
                    .get_or_insert_with(|| Cached {
                        value: Arc::from(v.as_str()),
                        read_at: Instant::now(),
                    })
                    .value
                    .clone();
                return Ok(v);
            }
            Source::Manager { client, id, ttl } => (client, id, *ttl),
        };
        if let Some(c) = cached.as_ref()
            && !force
            && c.read_at.elapsed() < ttl
        {
            return Ok(c.value.clone());
        }
        let raw = client.get(id).await?;
        let value: Arc<str> = Arc::from(value_of(id, &raw, self.kind)?);
        let changed = cached.as_ref().map(|c| c.value != value);
        tracing::info!(secret = %id, what = self.what, forced = force,
            changed = ?changed, "secret read");
        *cached = Some(Cached {
            value: value.clone(),
            read_at: Instant::now(),
        });
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG: SecretKind = SecretKind::Postgres;

    #[test]
    fn secret_values() {
        assert_eq!(
            value_of("s", " postgres://u:p@h/db\n", PG).unwrap(),
            "postgres://u:p@h/db"
        );
        assert_eq!(
            value_of("s", r#"{"uri": "mongodb://h"}"#, SecretKind::Mongo).unwrap(),
            "mongodb://h"
        );
        assert_eq!(
            value_of("s", r#"{"url": "postgres://h"}"#, PG).unwrap(),
            "postgres://h"
        );
        let e = value_of("s", r#"{"password": "hunter2"}"#, PG).unwrap_err();
        assert_eq!(e.error_type(), "FatalError");
        assert!(!e.to_string().contains("hunter2"));
        assert!(e.to_string().contains("username, host"), "{e}");
        assert!(value_of("s", "  ", PG).is_err());
        assert!(
            !value_of("s", "{not json hunter2", PG)
                .unwrap_err()
                .to_string()
                .contains("hunter2")
        );
    }

    #[test]
    fn the_rds_secret_shape_becomes_a_uri() {
        let rds = r#"{"engine": "postgres", "username": "etl_reader", "password": "p@ss:w/rd %1",
            "host": "db.abc.eu-west-1.rds.amazonaws.com", "port": 5432, "dbname": "amazonreviews"}"#;
        assert_eq!(
            value_of("s", rds, PG).unwrap(),
            "postgres://etl_reader:p%40ss%3Aw%2Frd%20%251@db.abc.eu-west-1.rds.amazonaws.com:5432/amazonreviews"
        );
        // The port as text, no dbname: PostgreSQL's defaults.
        let rds = r#"{"username": "u", "password": "p", "host": "h", "port": "6543"}"#;
        assert_eq!(
            value_of("s", rds, PG).unwrap(),
            "postgres://u:p@h:6543/postgres"
        );
        let docdb =
            r#"{"engine": "mongo", "username": "w", "password": "p", "host": "::1", "ssl": true}"#;
        assert_eq!(
            value_of("s", docdb, SecretKind::Mongo).unwrap(),
            "mongodb://w:p@[::1]:27017/?tls=true"
        );
        let e = value_of(
            "s",
            r#"{"username": "u", "password": "hunter2", "host": "h", "port": "x"}"#,
            PG,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("port") && !e.contains("hunter2"), "{e}");
    }

    #[tokio::test]
    async fn debug_never_shows_the_value() {
        let s = Secret {
            what: "PostgreSQL URI",
            kind: PG,
            source: Source::Value("postgres://u:hunter2@h/db".into()),
            cached: Mutex::new(None),
        };
        assert_eq!(&*s.get().await.unwrap(), "postgres://u:hunter2@h/db");
        assert_eq!(&*s.refresh().await.unwrap(), "postgres://u:hunter2@h/db");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
