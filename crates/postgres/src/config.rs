//! Connection settings, identifier checks and connecting with retry and backoff.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Connection, NoTls, Socket};

use crate::error::{PgError, is_transient};
use crate::tls::{TlsMode, connector, split_tls_params};

/// The default [`PgConfig::safety_lag`]: 5 minutes. It must exceed the longest write
/// transaction on the source: a row's `updated_at` (and a deletion's `deleted_at`) is stamped
/// with `now()`, the start of the writing transaction, so a transaction that runs longer than
/// the lag can commit a row below a watermark that has already moved past it, and that row is
/// never extracted.
pub const DEFAULT_SAFETY_LAG: Duration = Duration::from_secs(300);

/// The environment variable [`safety_lag_from_env`] reads: the safety lag in seconds.
pub const SAFETY_LAG_ENV: &str = "REVIEWS_PG_SAFETY_LAG_SECS";

/// How to reach PostgreSQL and how hard to try. The URL holds a secret: [`fmt::Debug`] shows
/// only host, port, user and database.
#[derive(Clone)]
pub struct PgConfig {
    url: String,
    parsed: tokio_postgres::Config,
    /// Attempts to connect before giving up with a retryable error (at least 1).
    pub connect_attempts: u32,
    /// Wait before the second attempt; doubles after each failure, up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// The schema that holds the source tables.
    pub schema: String,
    /// Rows fetched from the server-side cursor per round trip.
    pub fetch_rows: i32,
    /// Rows whose `updated_at` (and deletions whose `deleted_at`) is newer than the server's
    /// clock minus this lag are left for the next run, so that a writer's transaction that
    /// started before the extract but commits after it (its rows carry the older timestamp) is
    /// not skipped. Must exceed the longest write transaction on the source; default
    /// [`DEFAULT_SAFETY_LAG`]. Zero reads up to now (tests only: it loses late commits).
    pub safety_lag: Duration,
    /// `sslmode`: verify-full unless the URL says `disable`.
    tls_mode: TlsMode,
    /// `sslrootcert`: the CA(s) to trust; `None`: the system store.
    root_cert: Option<PathBuf>,
}

impl PgConfig {
    /// Settings from a `postgres://user:password@host:port/db` URL (or a key=value string),
    /// with 5 connection attempts, 0.2 s initial backoff, a 5 s connect timeout and a
    /// [`DEFAULT_SAFETY_LAG`] of 5 minutes by default.
    ///
    /// TLS as libpq's `sslmode` and `sslrootcert` parameters say (see [`crate::tls`]):
    /// `verify-full` when absent, with the CAs of `sslrootcert` or else the system store.
    pub fn new(url: &str) -> Result<Self, PgError> {
        let (rest, mode, root_cert) = split_tls_params(url)?;
        let tls_mode = match mode {
            Some(m) => TlsMode::parse(&m)?,
            None => TlsMode::default(),
        };
        let mut parsed = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| PgError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        // No silent fallback to plain text when TLS is asked for.
        parsed.ssl_mode(match tls_mode {
            TlsMode::VerifyFull => SslMode::Require,
            TlsMode::Disable => SslMode::Disable,
        });
        if parsed.get_connect_timeout().is_none() {
            parsed.connect_timeout(Duration::from_secs(5));
        }
        parsed.application_name("reviews-pipeline");
        Ok(Self {
            url: url.to_owned(),
            parsed,
            connect_attempts: 5,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            schema: "public".to_owned(),
            fetch_rows: 5_000,
            safety_lag: DEFAULT_SAFETY_LAG,
            tls_mode,
            root_cert: root_cert.filter(|p| !p.is_empty()).map(PathBuf::from),
        })
    }

    /// The CA file to trust when the URL names none (e.g. the RDS bundle a Lambda is
    /// configured with, while its secret holds only host, user and password).
    pub fn with_default_root_cert(mut self, path: Option<&Path>) -> Self {
        if self.root_cert.is_none() {
            self.root_cert = path.map(Path::to_path_buf);
        }
        self
    }

    pub fn tls_mode(&self) -> TlsMode {
        self.tls_mode
    }

    /// The CA file trusted for the server's certificate (`None`: the system store).
    pub fn root_cert(&self) -> Option<&Path> {
        self.root_cert.as_deref()
    }

    /// The same server with another database.
    pub fn with_database(&self, dbname: &str) -> Self {
        let mut c = self.clone();
        c.parsed.dbname(dbname);
        c
    }

    /// The same server and database as another user.
    pub fn with_credentials(&self, user: &str, password: &str) -> Self {
        let mut c = self.clone();
        c.parsed.user(user).password(password);
        c
    }

    pub fn with_attempts(mut self, attempts: u32, backoff_initial: Duration) -> Self {
        self.connect_attempts = attempts.max(1);
        self.backoff_initial = backoff_initial;
        self
    }

    /// The same settings with another [`PgConfig::safety_lag`].
    pub fn with_safety_lag(mut self, lag: Duration) -> Self {
        self.safety_lag = lag;
        self
    }

    pub fn database(&self) -> Option<&str> {
        self.parsed.get_dbname()
    }

    pub fn user(&self) -> Option<&str> {
        self.parsed.get_user()
    }

    /// `host:port/database` for logs and errors (never credentials).
    pub fn target(&self) -> String {
        let host = match self.parsed.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.parsed.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{host}:{port}/{}",
            self.parsed.get_dbname().unwrap_or("(default)")
        )
    }

    /// The original URL, secret included (for handing to another process only).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connect, retrying transient failures (refused, reset, timed out, server starting or
    /// shutting down, too many connections) with exponential backoff. Fatal failures (wrong
    /// password, unknown database) are returned at once. The connection's driver task runs on
    /// the current tokio runtime.
    pub async fn connect(&self) -> Result<Client, PgError> {
        let attempts = self.connect_attempts.max(1);
        let tls = match self.tls_mode {
            TlsMode::VerifyFull => Some(connector(self.root_cert.as_deref())?),
            TlsMode::Disable => None,
        };
        let mut delay = self.backoff_initial;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let connected = match &tls {
                Some(tls) => self
                    .parsed
                    .connect(tls.clone())
                    .await
                    .map(|(client, conn)| self.drive(client, conn)),
                None => self
                    .parsed
                    .connect(NoTls)
                    .await
                    .map(|(client, conn)| self.drive(client, conn)),
            };
            match connected {
                Ok(client) => return Ok(client),
                Err(e) if attempt < attempts && is_transient(&e) => {
                    tracing::warn!(
                        target = %self.target(), attempt, error = %e,
                        delay_ms = delay.as_millis() as u64, "PostgreSQL connect failed, retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.backoff_max);
                }
                Err(source) => {
                    return Err(PgError::Connect {
                        target: self.target(),
                        attempts: attempt,
                        hint: tls_hint(self.tls_mode, &source),
                        source,
                    });
                }
            }
        }
    }

    /// Runs the connection's driver on the current runtime; returns the client.
    fn drive<T>(&self, client: Client, connection: Connection<Socket, T>) -> Client
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let target = self.target();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(target = %target, error = %e, "PostgreSQL connection ended");
            }
        });
        client
    }
}

/// What to do about a failed TLS connection, in words (empty when TLS is not the cause).
fn tls_hint(mode: TlsMode, e: &tokio_postgres::Error) -> &'static str {
    if mode != TlsMode::VerifyFull {
        return "";
    }
    let text = crate::error::chain_text(e);
    if text.contains("does not support TLS") {
        " (the server offers no TLS: sslmode=verify-full is the default; enable ssl on the \
         server, or add sslmode=disable for a local server)"
    } else if text.contains("certificate") || text.contains("Certificate") {
        " (the server's TLS certificate was not accepted: point sslrootcert at the CA that \
         signed it, e.g. the RDS CA bundle, and connect by the host name it was issued for)"
    } else {
        ""
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("target", &self.target())
            .field("user", &self.parsed.get_user())
            .field("connect_attempts", &self.connect_attempts)
            .field("schema", &self.schema)
            .field("safety_lag", &self.safety_lag)
            .field("sslmode", &self.tls_mode.as_str())
            .field("sslrootcert", &self.root_cert)
            .finish_non_exhaustive()
    }
}

/// The safety lag from [`SAFETY_LAG_ENV`] (`REVIEWS_PG_SAFETY_LAG_SECS`): `None` when it is
/// unset or blank (keep the default), else a non-negative number of seconds (`300`, `2.5`).
/// Anything else is a [`PgError::Config`] naming the variable and the value.
pub fn safety_lag_from_env() -> Result<Option<Duration>, PgError> {
    match std::env::var(SAFETY_LAG_ENV) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => parse_safety_lag(&v).map(Some),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(PgError::Config(format!(
            "{SAFETY_LAG_ENV} is not valid UTF-8; expected a number of seconds"
        ))),
    }
}

fn parse_safety_lag(value: &str) -> Result<Duration, PgError> {
    let v = value.trim();
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            PgError::Config(format!(
                "{SAFETY_LAG_ENV}={v:?} is not a number of seconds (expected e.g. 300 or 2.5)"
            ))
        })
}

/// A PostgreSQL identifier we accept from configuration (database, role, schema names):
/// lower-case ASCII letters, digits and `_`, starting with a letter or `_`, at most 63 bytes.
/// Such names never need quoting, but are double-quoted anyway where they are spliced into
/// utility statements that take no parameters (CREATE DATABASE, CREATE ROLE, GRANT).
pub fn check_identifier(what: &str, name: &str) -> Result<(), PgError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PgError::Config(format!(
            "{what} {name:?} is not a plain identifier (a-z, 0-9, _; at most 63 bytes)"
        )))
    }
}

/// A checked identifier, double-quoted.
pub(crate) fn ident(name: &str) -> String {
    debug_assert!(check_identifier("identifier", name).is_ok());
    format!("\"{name}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in ["amazonreviews", "etl_reader", "_x1"] {
            assert!(check_identifier("name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Upper",
            "a-b",
            "a\"b",
            "a;drop",
            &"x".repeat(64),
        ] {
            assert!(check_identifier("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_safety_lag_defaults_to_five_minutes_and_parses_from_text() {
        let c = PgConfig::new("postgres://u:p@127.0.0.1:5433/db").unwrap();
        assert_eq!(c.safety_lag, DEFAULT_SAFETY_LAG);
        assert_eq!(DEFAULT_SAFETY_LAG, Duration::from_secs(300));
        let c = c.with_safety_lag(Duration::ZERO);
        assert_eq!(c.safety_lag, Duration::ZERO);
        assert_eq!(parse_safety_lag("300").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_safety_lag(" 2.5 ").unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(parse_safety_lag("0").unwrap(), Duration::ZERO);
        for bad in ["five", "", "-1", "NaN", "inf", "5m"] {
            let err = parse_safety_lag(bad).expect_err(bad).to_string();
            assert!(err.contains(SAFETY_LAG_ENV), "{err}");
            assert!(err.contains("not a number of seconds"), "{err}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let c = PgConfig::new("postgres://u:s3cret@127.0.0.1:5433/db").unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("127.0.0.1:5433/db"), "{shown}");
        let other = c.with_database("x").with_credentials("r", "pw2");
        assert_eq!(other.database(), Some("x"));
        assert_eq!(other.user(), Some("r"));
    }
}
