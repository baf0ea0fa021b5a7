//! Steps 3+4: clean the run's raw parts one at a time, route valid rows to product buckets
//! and rejected ones to rejects/ with a reason per row, then plan which buckets the run
//! rewrites (the items of the bucket Map).

use std::sync::Arc;

use reviews_lake::Lake;
use reviews_lambda::FunctionError;
use reviews_stages::{NoProgress, TransformInput, TransformOutput, transform};

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

    pub async fn handle(&self, event: serde_json::Value) -> Result<TransformOutput, FunctionError> {
        let mut input: TransformInput = reviews_lambda::parse_input(event)?;
        input.buckets = input.buckets.or(self.buckets);
        Ok(transform(self.lake.clone(), &input, &NoProgress).await?)
    }
}
