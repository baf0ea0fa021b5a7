//! Steps 3+4: clean the run's raw parts, route valid rows to product buckets and rejected
//! ones to rejects/ with a reason per row, then plan which buckets the run rewrites (the
//! items of the bucket Map). Two events:
//! - `{run_id, part, raw_key, buckets?}`: route one part (a task of the state machine's
//!   route Map) → [`RoutePartOutput`];
//! - `{run_id, raw_keys, merge_previous, deletions_key?, buckets?, routed?}`: plan, after
//!   routing every part here unless `routed` → [`TransformOutput`].

use std::sync::Arc;

use reviews_lake::Lake;
use reviews_lambda::FunctionError;
use reviews_stages::{
    NoProgress, RoutePartInput, RoutePartOutput, TransformInput, TransformOutput, route, transform,
};
use serde::Serialize;

pub struct TransformFunction {
    lake: Arc<dyn Lake>,
    /// The bucket count when the input names none.
    buckets: Option<u32>,
}

impl TransformFunction {
    pub fn new(lake: Arc<dyn Lake>) -> Self {
        Self {
            lake,
            buckets: None,
        }
    }

    pub fn with_buckets(mut self, buckets: Option<u32>) -> Self {
        self.buckets = buckets;
        self
    }

    /// `REVIEWS_LAKE_URI`; `REVIEWS_BUCKETS` product buckets (default: the live snapshot's
    /// count, else 64).
    pub async fn from_env() -> Result<Self, FunctionError> {
        let buckets = reviews_stages::buckets_from_env().map_err(FunctionError::from)?;
        Ok(Self::new(reviews_lambda::lake_from_env().await?).with_buckets(buckets))
    }

    pub async fn handle(&self, event: serde_json::Value) -> Result<TransformResult, FunctionError> {
        if event.get("raw_key").is_some() {
            let mut input: RoutePartInput = reviews_lambda::parse_input(event)?;
            input.buckets = input.buckets.or(self.buckets);
            let out = route(self.lake.clone(), &input, &NoProgress).await?;
            return Ok(TransformResult::Routed(out));
        }
        let mut input: TransformInput = reviews_lambda::parse_input(event)?;
        input.buckets = input.buckets.or(self.buckets);
        let out = transform(self.lake.clone(), &input, &NoProgress).await?;
        Ok(TransformResult::Planned(out))
    }
}

/// What the function answers: the routed part, or the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TransformResult {
    Routed(RoutePartOutput),
    Planned(TransformOutput),
}
