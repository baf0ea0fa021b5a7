//! Steps 3+4: clean the run's raw rows into cleaned/ shards (cut at product boundaries, one
//! scoring task each) and rejects/ with a reason per row.

use std::sync::Arc;

use reviews_lake::Lake;
use reviews_lambda::FunctionError;
use reviews_stages::{NoProgress, TransformInput, TransformOutput, transform};

pub struct TransformFunction {
    lake: Arc<dyn Lake>,
}

impl TransformFunction {
    pub fn new(lake: Arc<dyn Lake>) -> Self {
        Self { lake }
    }

    /// `REVIEWS_LAKE_URI`.
    pub async fn from_env() -> Result<Self, FunctionError> {
        Ok(Self::new(reviews_lambda::lake_from_env().await?))
    }

    pub async fn handle(&self, event: serde_json::Value) -> Result<TransformOutput, FunctionError> {
        let input: TransformInput = reviews_lambda::parse_input(event)?;
        Ok(transform(self.lake.clone(), &input, &NoProgress).await?)
    }
}
