//! Step 7: validate every curated part of the run (schema, row count, product order,
//! checksums), then commit it: one conditional write of curated/_latest.json that moves the
//! snapshot and the watermark together. Readers never see a half-written run; a run built on
//! a commit that is no longer live is refused.
//!
//! The same function gives the run lease back on the state machine's failure path
//! (`{"release_lease": "<run_id>"}`), so the next execution need not wait for it to expire.

use std::sync::Arc;

use reviews_lake::{Lake, RunId};
use reviews_lambda::FunctionError;
use reviews_stages::{PublishInput, PublishOutput, publish};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The failure path's event: give the run lease back.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseInput {
    pub release_lease: RunId,
}

/// The answer to [`ReleaseInput`].
#[derive(Debug, Serialize, JsonSchema)]
pub struct LeaseReleased {
    pub released: RunId,
}

/// What the function answers: the commit, or the released lease.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PublishResult {
    Published(PublishOutput),
    Released(LeaseReleased),
}

pub struct PublishFunction {
    lake: Arc<dyn Lake>,
}

impl PublishFunction {
    pub fn new(lake: Arc<dyn Lake>) -> Self {
        Self { lake }
    }

    /// `REVIEWS_LAKE_URI`.
    pub async fn from_env() -> Result<Self, FunctionError> {
        Ok(Self::new(reviews_lambda::lake_from_env().await?))
    }

    pub async fn handle(&self, event: serde_json::Value) -> Result<PublishResult, FunctionError> {
        if event.get("release_lease").is_some() {
            let input: ReleaseInput = reviews_lambda::parse_input(event)?;
            reviews_lake::state::release_lease(self.lake.as_ref(), &input.release_lease)
                .await
                .map_err(reviews_stages::StageError::from)?;
            tracing::info!(run_id = %input.release_lease, "run lease released after a failure");
            return Ok(PublishResult::Released(LeaseReleased {
                released: input.release_lease,
            }));
        }
        let input: PublishInput = reviews_lambda::parse_input(event)?;
        let out = publish(self.lake.clone(), &input).await?;
        Ok(PublishResult::Published(out))
    }
}
