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
        let scorer = with_ranker_from_env(
            Scorer::new(selected.classifier, weights).with_classifier_id(selected.id),
        )?;
        tracing::info!(
            classifier = %selected.description,
            weights = ?scorer.weights,
            learned = scorer.ranker.is_some(),
            "scorer ready"
        );
        Ok(Self::new(lake, scorer))
    }

    pub async fn handle(&self, event: serde_json::Value) -> Result<BucketOutput, FunctionError> {
        let input: BucketItem = reviews_lambda::parse_input(event)?;
        Ok(merge_bucket(self.lake.clone(), &self.scorer, &input, &NoProgress).await?)
    }
}

/// The scorer with the ranker file `REVIEWS_RANKER` names (from `reviews train`, e.g. in a
/// layer), when set: read once per cold start; a missing, incompatible or other-classifier
/// file is a fatal error that names it and says what to do.
pub fn with_ranker_from_env(scorer: Scorer) -> Result<Scorer, FunctionError> {
    let path = std::env::var_os("REVIEWS_RANKER").filter(|p| !p.is_empty());
    with_ranker(scorer, path.as_deref().map(std::path::Path::new))
}

/// The scorer with the ranker file at `path`, when given.
pub fn with_ranker(
    scorer: Scorer,
    path: Option<&std::path::Path>,
) -> Result<Scorer, FunctionError> {
    let Some(path) = path else {
        return Ok(scorer);
    };
    let fatal = |e: reviews_stages::rank::RankerError| FunctionError::fatal(e.to_string());
    let file = reviews_stages::rank::RankerFile::load(path).map_err(fatal)?;
    scorer
        .with_ranker(&file, &path.display().to_string())
        .map_err(fatal)
}

/// The weights of `REVIEWS_SCORING_CONFIG` when set, else the built-in ones.
pub fn weights_from_env() -> Result<ScoreWeights, FunctionError> {
    let path = std::env::var_os("REVIEWS_SCORING_CONFIG").filter(|p| !p.is_empty());
    reviews_stages::scoring::load_or_built_in(path.as_deref().map(std::path::Path::new))
        .map_err(|e| FunctionError::fatal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reviews_domain::lexicon::KeywordClassifier;

    fn scorer() -> Scorer {
        Scorer::new(
            Arc::new(KeywordClassifier::default()),
            ScoreWeights::default(),
        )
        .with_classifier_id("keywords")
    }

    #[test]
    fn a_missing_or_foreign_ranker_file_stops_the_cold_start_with_what_to_do() {
        let e = with_ranker(
            scorer(),
            Some(std::path::Path::new("/nonexistent/ranker.json")),
        )
        .err()
        .expect("a missing file is an error");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("/nonexistent/ranker.json"), "{e}");

        let dir = std::env::temp_dir().join(format!("ranker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ranker.json");
        let d = reviews_stages::rank::FEATURE_NAMES.len();
        let model = reviews_stages::rank::LinearRanker {
            mean: vec![0.0; d],
            scale: vec![1.0; d],
            weights: vec![0.1; d],
        };
        let mut training = reviews_stages::rank::TrainingProvenance {
            input: "votes.csv".into(),
            input_sha256: "00".repeat(32),
            reviews: 1,
            products: 1,
            pairs: 1,
            classifier: "model:other".into(),
            l2: 0.01,
            epochs: 1,
            trained_at: Default::default(),
        };
        let file = reviews_stages::rank::RankerFile::new(&model, training.clone());
        std::fs::write(&path, file.to_json()).unwrap();
        let e = with_ranker(scorer(), Some(&path))
            .err()
            .expect("other classifier");
        assert!(e.to_string().contains("classifier"), "{e}");

        training.classifier = "keywords".into();
        let file = reviews_stages::rank::RankerFile::new(&model, training);
        std::fs::write(&path, file.to_json()).unwrap();
        let ok = with_ranker(scorer(), Some(&path)).unwrap();
        assert!(ok.ranker.is_some());
        assert!(with_ranker(scorer(), None).unwrap().ranker.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
