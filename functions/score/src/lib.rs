//! Steps 5+6 for one product bucket: the bucket's carried rows merged with the run's changes,
//! topics (zero-shot, ONNX Runtime) for new or edited texts only, and the relevance score,
//! written to cleaned/ and curated/. The model session is created once per cold start.
//!
//! The model and the ONNX Runtime library reach the function as a Lambda layer mounted at
//! /opt (`REVIEWS_MODEL_DIR=/opt/models`, `ORT_DYLIB_PATH=/opt/models/onnxruntime/...`), built
//! by scripts/infra/build_score_layer.py; see infra/README.md for the sizes.

use std::sync::Arc;

use reviews_domain::score::ScoreWeights;
use reviews_lake::Lake;
use reviews_lambda::FunctionError;
use reviews_nlp::{ClassifierChoice, EncoderConfig, select_classifier};
use reviews_stages::{BucketItem, BucketOutput, NoProgress, Scorer, merge_bucket};

pub struct ScoreFunction {
    lake: Arc<dyn Lake>,
    scorer: Scorer,
}

impl ScoreFunction {
    pub fn new(lake: Arc<dyn Lake>, scorer: Scorer) -> Self {
        Self { lake, scorer }
    }

    /// `REVIEWS_LAKE_URI`; `REVIEWS_CLASSIFIER` = auto (default: the model when installed,
    /// else keywords), model or keywords; the model files from `REVIEWS_MODEL_DIR` and
    /// `ORT_DYLIB_PATH`. The weights: the file `REVIEWS_SCORING_CONFIG` names (e.g. in a layer),
    /// else config/scoring.toml as compiled in, the same file and parser as the CLI's. Read
    /// once per cold start; a missing or invalid file is a fatal error that names it.
    pub async fn from_env() -> Result<Self, FunctionError> {
        let lake = reviews_lambda::lake_from_env().await?;
        let choice: ClassifierChoice = std::env::var("REVIEWS_CLASSIFIER")
            .unwrap_or_default()
            .parse()
            .map_err(|e| FunctionError::fatal(format!("REVIEWS_CLASSIFIER: {e}")))?;
        let selected = select_classifier(choice, EncoderConfig::default())
            .map_err(|e| FunctionError::fatal(e.to_string()))?;
        let weights = weights_from_env()?;
        tracing::info!(classifier = %selected.description, ?weights, "scorer ready");
        Ok(Self::new(
            lake,
            Scorer::new(selected.classifier, weights).with_classifier_id(selected.id),
        ))
    }

    pub async fn handle(&self, event: serde_json::Value) -> Result<BucketOutput, FunctionError> {
        let input: BucketItem = reviews_lambda::parse_input(event)?;
        Ok(merge_bucket(self.lake.clone(), &self.scorer, &input, &NoProgress).await?)
    }
}

/// The weights of `REVIEWS_SCORING_CONFIG` when set, else the built-in ones.
pub fn weights_from_env() -> Result<ScoreWeights, FunctionError> {
    let path = std::env::var_os("REVIEWS_SCORING_CONFIG").filter(|p| !p.is_empty());
    reviews_stages::scoring::load_or_built_in(path.as_deref().map(std::path::Path::new))
        .map_err(|e| FunctionError::fatal(e.to_string()))
}
