//! Step 1: extract the rows changed since the stored watermark from PostgreSQL into raw/, as
//! the read-only role whose URI is a Secrets Manager secret.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reviews_lake::{Lake, RunId};
use reviews_lambda::{FunctionError, Secret};
use reviews_postgres::{PgConfig, extract_to_lake};
use reviews_stages::NoProgress;
use serde::{Deserialize, Serialize};

/// The state machine's payload: the execution's name and start time, and an optional run id
/// (a re-run of an earlier run passes it; otherwise it is derived from the other two).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractEvent {
    pub execution_name: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub run_id: Option<RunId>,
}

/// Small on purpose: the state machine passes it on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractResult {
    pub run_id: RunId,
    /// The raw/ parts, in source order.
    pub raw_keys: Vec<String>,
    pub rows: u64,
    /// Where the next run starts (null when the source is empty).
    pub watermark: Option<String>,
    /// True when this run read only the rows changed since an earlier run: transform then
    /// carries the earlier cleaned rows over.
    pub incremental: bool,
    pub started_at: DateTime<Utc>,
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

/// The extract function: the lake client and the database secret, built once per cold start.
pub struct ExtractFunction {
    lake: Arc<dyn Lake>,
    database_url: Arc<Secret>,
    /// Connection attempts inside one invocation; the state machine retries beyond that.
    connect_attempts: u32,
}

impl ExtractFunction {
    pub fn new(lake: Arc<dyn Lake>, database_url: Arc<Secret>) -> Self {
        Self {
            lake,
            database_url,
            connect_attempts: 3,
        }
    }

    /// `REVIEWS_LAKE_URI`, and `REVIEWS_PG_SECRET_ID` (or, locally, `REVIEWS_PG_URL`).
    pub async fn from_env() -> Result<Self, FunctionError> {
        let lake = reviews_lambda::lake_from_env().await?;
        let url = Secret::from_env(
            "PostgreSQL URI of the read-only role",
            "REVIEWS_PG_SECRET_ID",
            "REVIEWS_PG_URL",
        )
        .await?;
        Ok(Self::new(lake, url))
    }

    pub async fn handle(&self, event: serde_json::Value) -> Result<ExtractResult, FunctionError> {
        let event: ExtractEvent = reviews_lambda::parse_input(event)?;
        let run = run_id_for(&event)?;
        let url = self.database_url.get().await?;
        let cfg = PgConfig::new(url)
            .map_err(|e| FunctionError::fatal(e.to_string()))?
            .with_attempts(self.connect_attempts, Duration::from_millis(250));
        let out = extract_to_lake(self.lake.clone(), &run, &cfg, None, &NoProgress)
            .await
            .map_err(|e| FunctionError::classified(e.is_retryable(), e.to_string()))?;
        Ok(ExtractResult {
            run_id: out.run_id,
            raw_keys: out.raw_keys,
            rows: out.rows,
            watermark: out.watermark,
            incremental: out.incremental,
            started_at: out.started_at,
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
