//! The right to erasure in AWS, started by the administrator (`aws lambda invoke` with
//! `{"buyer_id": "..."}`): the same workflow as `reviews erase`
//! ([`reviews_stages::erase::erase`]): the buyer on the erased list (compare-and-swap), the
//! run lease, the archive's documents deleted, every object of the lake scrubbed with its
//! manifests kept valid. The output is the report. The archive is always erased here: there
//! is no waiver in production.
//!
//! Errors: a pipeline run holding the lease, MongoDB or S3 unavailable are `RetryableError`
//! (invoke again: the buyer is already on the list, and a re-run finishes the job); a
//! malformed payload or an object the scrub cannot rewrite are `FatalError`.

use std::sync::Arc;
use std::time::Duration;

use reviews_archive::{Archive, ArchiveConfig};
use reviews_lake::Lake;
use reviews_lambda::{FunctionError, Secret};
use reviews_stages::StageError;
use reviews_stages::erase::{ArchiveStep, EraseOptions, EraseReport, erase};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraseEvent {
    pub buyer_id: String,
}

pub struct EraseFunction {
    lake: Arc<dyn Lake>,
    uri: Arc<Secret>,
    server_selection_timeout: Duration,
    options: EraseOptions,
}

impl EraseFunction {
    pub fn new(lake: Arc<dyn Lake>, uri: Arc<Secret>) -> Self {
        Self {
            lake,
            uri,
            server_selection_timeout: Duration::from_secs(10),
            options: EraseOptions::default(),
        }
    }

    pub fn with_server_selection_timeout(mut self, timeout: Duration) -> Self {
        self.server_selection_timeout = timeout;
        self
    }

    pub fn with_options(mut self, options: EraseOptions) -> Self {
        self.options = options;
        self
    }

    /// `REVIEWS_LAKE_URI`, and `REVIEWS_MONGO_SECRET_ID` (or, locally, `REVIEWS_MONGO_URI`);
    /// `REVIEWS_MONGO_TIMEOUT_SECS` (default 10).
    pub async fn from_env() -> Result<Self, FunctionError> {
        let lake = reviews_lambda::lake_from_env().await?;
        let (uri, timeout) = reviews_lambda::mongo_settings_from_env().await?;
        Ok(Self::new(lake, uri).with_server_selection_timeout(timeout))
    }

    /// A client on the secret's current value. Erasures are rare: reading the secret afresh
    /// for each one costs nothing and means a rotated password never fails one.
    async fn archive(&self) -> Result<Archive, FunctionError> {
        let uri = self.uri.refresh().await?;
        let mut cfg = ArchiveConfig::new(uri.to_string());
        cfg.server_selection_timeout = self.server_selection_timeout;
        Archive::connect(cfg)
            .await
            .map_err(|e| FunctionError::classified(e.is_retryable(), e.to_string()))
    }

    pub async fn handle(&self, event: serde_json::Value) -> Result<EraseReport, FunctionError> {
        let event: EraseEvent = reviews_lambda::parse_input(event)?;
        let buyer = reviews_stages::erase::validate_buyer(&event.buyer_id)?;
        let archive = self.archive().await?;
        erase(
            self.lake.as_ref(),
            &buyer,
            ArchiveStep::Erase(&archive),
            &self.options,
        )
        .await
        .map_err(|e| match e {
            // A pipeline run is writing: nothing is lost, the buyer is on the list already;
            // invoke again once it is done.
            e @ StageError::LeaseHeld { .. } => FunctionError::retryable(e.to_string()),
            e => e.into(),
        })
    }
}
