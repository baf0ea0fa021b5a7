//! Step 7: validate every curated part of the run (schema, row count, product order,
//! checksums), then point curated/_latest.json at it. Readers never see a half-written run.

use std::sync::Arc;

use reviews_lake::Lake;
use reviews_lambda::FunctionError;
use reviews_stages::{PublishInput, PublishOutput, publish};

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

    pub async fn handle(&self, event: serde_json::Value) -> Result<PublishOutput, FunctionError> {
        let input: PublishInput = reviews_lambda::parse_input(event)?;
        Ok(publish(self.lake.clone(), &input).await?)
    }
}
