//! Step 1: extract the rows changed since the live commit's watermark into raw/. The stage is
//! `reviews_stages::extract_changes`; in production the change feed is PostgreSQL
//! (`reviews_postgres::PgFeed`), read as the read-only role whose URI is a Secrets Manager
//! secret.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reviews_lake::{Lake, RunId};
use reviews_lambda::{FunctionError, Secret, SecretKind};
use reviews_ports::ChangeFeed;
use reviews_postgres::{PgConfig, PgError, PgFeed};
use reviews_stages::{ExtractOutput, NoProgress, StageError, extract_changes};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The state machine's payload: the execution's name and start time, and an optional run id
/// (a re-run of an earlier run passes it; otherwise it is derived from the other two).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractEvent {
    pub execution_name: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub run_id: Option<RunId>,
}

/// Whether the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExtractStatus {
    /// raw/ is written: the stages run.
    Extracted,
    /// Another run holds the run lease: this execution ends here, having changed nothing.
    LeaseHeld,
}

/// Small on purpose: the state machine passes it on. The stage's own output, flattened, with
/// whether the run goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExtractResult {
    pub status: ExtractStatus,
    /// The run holding the lease when `status` is `lease_held`.
    pub lease_holder: Option<RunId>,
    #[serde(flatten)]
    pub output: ExtractOutput,
}

/// The given run id, else `<start date>-<execution name>` (see [`RunId::for_execution`]).
pub fn run_id_for(event: &ExtractEvent) -> Result<RunId, FunctionError> {
    if let Some(run) = &event.run_id {
        return Ok(run.clone());
    }
    let (Some(name), Some(start)) = (&event.execution_name, event.start_time) else {
        return Err(FunctionError::fatal(
            "invalid stage input: give run_id, or execution_name and start_time",
        ));
    };
    RunId::for_execution(start.date_naive(), name).map_err(FunctionError::fatal)
}

/// Where the extract function reads: a change feed, built from credentials that may have
/// been rotated since they were cached.
#[async_trait]
pub trait FeedProvider: Send + Sync {
    /// The feed; `fresh`: read the credentials again first (the cached ones were refused).
    async fn feed(&self, fresh: bool) -> Result<Arc<dyn ChangeFeed>, FunctionError>;

    /// Whether `e` says the source refused the credentials (then one fresh try is worth it).
    fn credentials_refused(&self, _e: &StageError) -> bool {
        false
    }
}

/// The PostgreSQL feed, as the read-only role whose URI is a secret.
pub struct PostgresFeeds {
    database_url: Arc<Secret>,
    /// Connection attempts inside one invocation; the state machine retries beyond that.
    connect_attempts: u32,
    /// Rows newer than this are left for the next run (`None`: the extract's default).
    safety_lag: Option<Duration>,
    /// The CA bundle that signs the database's TLS certificate when the secret's URI names
    /// none (an RDS-managed secret holds only host, port, user and password).
    root_cert: Option<PathBuf>,
}

impl PostgresFeeds {
    pub fn new(database_url: Arc<Secret>) -> Self {
        Self {
            database_url,
            connect_attempts: 3,
            safety_lag: None,
            root_cert: None,
        }
    }

    fn settings(&self, url: &str) -> Result<PgConfig, FunctionError> {
        let mut cfg = PgConfig::new(url)
            .map_err(|e| FunctionError::fatal(e.to_string()))?
            .with_attempts(self.connect_attempts, Duration::from_millis(250))
            .with_default_root_cert(self.root_cert.as_deref());
        if let Some(lag) = self.safety_lag {
            cfg = cfg.with_safety_lag(lag);
        }
        Ok(cfg)
    }
}

#[async_trait]
impl FeedProvider for PostgresFeeds {
    async fn feed(&self, fresh: bool) -> Result<Arc<dyn ChangeFeed>, FunctionError> {
        let url = if fresh {
            self.database_url.refresh().await?
        } else {
            self.database_url.get().await?
        };
        Ok(Arc::new(PgFeed::new(self.settings(&url)?)))
    }

    fn credentials_refused(&self, e: &StageError) -> bool {
        e.source_error::<PgError>()
            .is_some_and(PgError::is_auth_failure)
    }
}

/// The extract function: the lake client and the feed's credentials, built once per cold
/// start; the stage is [`extract_changes`]. Production reads PostgreSQL ([`PostgresFeeds`]);
/// any [`FeedProvider`] will do (the fast test tier uses an in-memory feed).
pub struct ExtractFunction<P = PostgresFeeds> {
    lake: Arc<dyn Lake>,
    feeds: P,
    /// How long the run lease holds (a run that dies keeps the next one out this long).
    lease_ttl: Duration,
}

/// The environment variable naming the CA bundle (PEM) of the database's TLS certificate.
pub const ROOT_CERT_ENV: &str = "REVIEWS_PG_SSLROOTCERT";

impl ExtractFunction<PostgresFeeds> {
    pub fn new(lake: Arc<dyn Lake>, database_url: Arc<Secret>) -> Self {
        Self::with_feeds(lake, PostgresFeeds::new(database_url))
    }

    pub fn with_root_cert(mut self, path: Option<PathBuf>) -> Self {
        self.feeds.root_cert = path;
        self
    }

    pub fn with_safety_lag(mut self, lag: Duration) -> Self {
        self.feeds.safety_lag = Some(lag);
        self
    }

    /// `REVIEWS_LAKE_URI`, and `REVIEWS_PG_SECRET_ID` (or, locally, `REVIEWS_PG_URL`);
    /// optionally `REVIEWS_LEASE_TTL_SECS`, `REVIEWS_PG_SAFETY_LAG_SECS`,
    /// `REVIEWS_PG_SSLROOTCERT` and `REVIEWS_SECRET_TTL_SECS`.
    pub async fn from_env() -> Result<Self, FunctionError> {
        let lake = reviews_lambda::lake_from_env().await?;
        let url = Secret::from_env(
            "PostgreSQL URI of the read-only role",
            SecretKind::Postgres,
            "REVIEWS_PG_SECRET_ID",
            "REVIEWS_PG_URL",
        )
        .await?;
        let root_cert = std::env::var_os(ROOT_CERT_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let mut f = Self::new(lake, url)
            .with_root_cert(root_cert)
            .with_lease_ttl(
                reviews_stages::lease_ttl_from_env()
                    .map_err(|e| FunctionError::fatal(e.to_string()))?,
            );
        if let Some(lag) = reviews_postgres::safety_lag_from_env()
            .map_err(|e| FunctionError::fatal(e.to_string()))?
        {
            f = f.with_safety_lag(lag);
        }
        Ok(f)
    }
}

impl<P: FeedProvider> ExtractFunction<P> {
    pub fn with_feeds(lake: Arc<dyn Lake>, feeds: P) -> Self {
        Self {
            lake,
            feeds,
            lease_ttl: reviews_stages::DEFAULT_LEASE_TTL,
        }
    }

    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    pub async fn handle(&self, event: serde_json::Value) -> Result<ExtractResult, FunctionError> {
        let event: ExtractEvent = reviews_lambda::parse_input(event)?;
        let run = run_id_for(&event)?;
        match reviews_stages::begin_run(self.lake.as_ref(), &run, self.lease_ttl).await {
            Ok(_) => {}
            Err(StageError::LeaseHeld { holder, expires_at }) => {
                tracing::warn!(run_id = %run, holder = %holder, %expires_at,
                    "another run holds the lease: this execution does nothing");
                return Ok(ExtractResult {
                    status: ExtractStatus::LeaseHeld,
                    lease_holder: Some(holder),
                    output: ExtractOutput {
                        run_id: run,
                        raw_keys: Vec::new(),
                        rows: 0,
                        watermark: None,
                        incremental: false,
                        started_at: Utc::now(),
                        deletions_key: None,
                        deleted: 0,
                    },
                });
            }
            Err(e) => return Err(e.into()),
        }
        // Boxed: the extract future is deep, and the runtime's future nests it again.
        let result = Box::pin(self.extract(&run)).await;
        if result.is_err() {
            // Nothing moved; let another execution (or this one's retry) take the lease.
            if let Err(e) = reviews_lake::state::release_lease(self.lake.as_ref(), &run).await {
                tracing::warn!(run_id = %run, error = %e, "could not release the run lease");
            }
        }
        result
    }

    async fn extract(&self, run: &RunId) -> Result<ExtractResult, FunctionError> {
        let feed = self.feeds.feed(false).await?;
        let mut result =
            extract_changes(self.lake.clone(), run, feed.as_ref(), None, &NoProgress).await;
        if let Err(e) = &result
            && self.feeds.credentials_refused(e)
        {
            // The login was refused: the secret may have been rotated since it was cached.
            // One fresh read and one more try; a second refusal is the answer.
            tracing::warn!(run_id = %run, "the source refused the login: reading the secret again");
            let feed = self.feeds.feed(true).await?;
            result =
                extract_changes(self.lake.clone(), run, feed.as_ref(), None, &NoProgress).await;
        }
        Ok(ExtractResult {
            status: ExtractStatus::Extracted,
            lease_holder: None,
            output: result?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_from_the_execution() {
        let ev: ExtractEvent = serde_json::from_value(serde_json::json!({
            "execution_name": "daily:run/1 é",
            "start_time": "2026-11-29T06:00:00.123Z",
            "run_id": null
        }))
        .unwrap();
        assert_eq!(
            run_id_for(&ev).unwrap().to_string(),
            "2026-11-29-daily-run-1--"
        );
        let ev: ExtractEvent =
            serde_json::from_value(serde_json::json!({"run_id": "rerun-7"})).unwrap();
        assert_eq!(run_id_for(&ev).unwrap().to_string(), "rerun-7");
        let ev: ExtractEvent = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(run_id_for(&ev).unwrap_err().error_type(), "FatalError");
    }
}
