//! Step 2 (beside the main branch): upsert the run's raw rows, and any earlier run's that
//! were missed, into the MongoDB archive as the dedicated writer user. MongoDB down is a
//! `RetryableError`; the state machine retries, then records the archive as deferred, and the
//! next run's archive catches up (the backlog is known from the lake).

use std::sync::Arc;
use std::time::Duration;

use reviews_archive::{Archive, ArchiveConfig, ArchiveError};
use reviews_lake::{Lake, RunId};
use reviews_lambda::{FunctionError, Secret};
use reviews_stages::archive::{ArchiveOutput, archive};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::Mutex;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveEvent {
    pub run_id: RunId,
}

/// The archive function: lake client and secret at cold start; the MongoDB client on first
/// use (building it needs the secret), then kept.
pub struct ArchiveFunction {
    lake: Arc<dyn Lake>,
    uri: Arc<Secret>,
    /// How long an invocation waits for MongoDB before the `RetryableError`.
    server_selection_timeout: Duration,
    archive: Mutex<Option<Archive>>,
}

impl ArchiveFunction {
    pub fn new(lake: Arc<dyn Lake>, uri: Arc<Secret>) -> Self {
        Self {
            lake,
            uri,
            server_selection_timeout: Duration::from_secs(10),
            archive: Mutex::new(None),
        }
    }

    pub fn with_server_selection_timeout(mut self, timeout: Duration) -> Self {
        self.server_selection_timeout = timeout;
        self
    }

    /// `REVIEWS_LAKE_URI`, and `REVIEWS_MONGO_SECRET_ID` (or, locally, `REVIEWS_MONGO_URI`);
    /// `REVIEWS_MONGO_TIMEOUT_SECS` (default 10): how long to wait for a usable server.
    pub async fn from_env() -> Result<Self, FunctionError> {
        let lake = reviews_lambda::lake_from_env().await?;
        let (uri, timeout) = reviews_lambda::mongo_settings_from_env().await?;
        Ok(Self::new(lake, uri).with_server_selection_timeout(timeout))
    }

    /// The client, built on first use from the secret's current value.
    async fn archive(&self, fresh_secret: bool) -> Result<Archive, FunctionError> {
        let mut slot = self.archive.lock().await;
        if let Some(a) = slot.as_ref()
            && !fresh_secret
        {
            return Ok(a.clone());
        }
        let uri = if fresh_secret {
            self.uri.refresh().await?
        } else {
            self.uri.get().await?
        };
        let mut cfg = ArchiveConfig::new(uri.to_string());
        cfg.server_selection_timeout = self.server_selection_timeout;
        let archive = Archive::connect(cfg).await.map_err(FunctionError::from)?;
        *slot = Some(archive.clone());
        Ok(archive)
    }

    pub async fn handle(&self, event: serde_json::Value) -> Result<ArchiveOutput, FunctionError> {
        let event: ArchiveEvent = reviews_lambda::parse_input(event)?;
        let run = &event.run_id;
        let lake = self.lake.as_ref();
        let mut result = archive(lake, &self.archive(false).await?, run).await;
        if let Err(e) = &result
            && e.source_error::<ArchiveError>()
                .is_some_and(ArchiveError::is_auth_failure)
        {
            // Refused login: the secret may have been rotated since the client was built.
            tracing::warn!(run_id = %run, "MongoDB refused the login: reading the secret again");
            result = archive(lake, &self.archive(true).await?, run).await;
        }
        if let Err(e) = &result
            && e.is_retryable()
        {
            // MongoDB unreachable or without a primary: the next invocation starts from a new
            // client (a fresh discovery of the server) rather than this one's topology.
            *self.archive.lock().await = None;
        }
        result.map_err(FunctionError::from)
    }
}
