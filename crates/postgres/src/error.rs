//! Typed errors of the PostgreSQL source, sorted into retryable (the server is down, refusing,
//! restarting or dropped the connection) and fatal (configuration, schema, permissions).

use reviews_ports::{Classified, ErrorClass};
use thiserror::Error;
use tokio_postgres::error::SqlState;

#[derive(Debug, Error)]
pub enum PgError {
    /// The configuration is unusable (bad URL, bad identifier, empty password).
    #[error("PostgreSQL configuration: {0}")]
    Config(String),
    /// Could not connect after every attempt of the backoff.
    #[error(
        "could not connect to PostgreSQL at {target} after {attempts} attempt(s): {}{hint}",
        chain_text(source)
    )]
    Connect {
        /// host:port/database, never credentials.
        target: String,
        attempts: u32,
        /// What to do about it, when that is known (a TLS mismatch); else empty.
        hint: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The source tables are missing or incompatible. Each entry names one table or column.
    #[error("the PostgreSQL source schema is not usable: {}", problems.join("; "))]
    Schema { problems: Vec<String> },
    /// A statement failed (or the connection broke while it ran).
    #[error("PostgreSQL {context}: {source}")]
    Query {
        context: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A stored watermark could not be read.
    #[error("watermark: {0}")]
    Watermark(String),
}

impl PgError {
    pub(crate) fn query(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> PgError {
        move |source| PgError::Query { context, source }
    }

    /// Whether trying again later may succeed: the server is down, refusing connections,
    /// shutting down or starting up, out of connections, or the connection broke mid-way.
    pub fn is_retryable(&self) -> bool {
        match self {
            PgError::Connect { source, .. } | PgError::Query { source, .. } => is_transient(source),
            PgError::Config(_) | PgError::Schema { .. } | PgError::Watermark(_) => false,
        }
    }

    /// Whether the server refused the credentials (wrong password, unknown role): with a
    /// rotated secret, the cached value is stale and a fresh read may succeed.
    pub fn is_auth_failure(&self) -> bool {
        match self {
            PgError::Connect { source, .. } => source.as_db_error().is_some_and(|db| {
                *db.code() == SqlState::INVALID_PASSWORD
                    || *db.code() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            }),
            _ => false,
        }
    }
}

impl Classified for PgError {
    fn class(&self) -> ErrorClass {
        ErrorClass::of(PgError::is_retryable(self))
    }
}

/// Whether a driver error is a transient fault of the server or the network.
pub fn is_transient(e: &tokio_postgres::Error) -> bool {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let class = &code.code()[..2];
        return class == "08" // connection exception
            || class == "53" // insufficient resources (too many connections, disk full, memory)
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::LOCK_NOT_AVAILABLE;
    }
    if e.is_closed() {
        return true;
    }
    // A refused certificate or TLS handshake does not heal by trying again.
    if tls_failure(e) {
        return false;
    }
    // Connect, Io and Timeout errors: refused, reset, unreachable, timed out.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        source = s.source();
    }
    e.to_string().starts_with("timeout")
}

/// Whether the TLS layer refused the connection (certificate, name, protocol): rustls's error,
/// possibly inside the io::Error the TLS stream returns it in.
fn tls_failure(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// The error with its causes ("error connecting to server: invalid peer certificate: ..."):
/// tokio-postgres's Display alone often hides the part that says what went wrong.
pub(crate) fn chain_text(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
