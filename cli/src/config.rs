//! Scoring configuration (weights of the relevance signals, from a TOML file) and the choice of
//! topic classifier.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use reviews_domain::TopicClassifier;
use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::score::ScoreWeights;
use reviews_nlp::{EncoderConfig, SentenceEncoder, ZeroShotClassifier, ZeroShotConfig};
use reviews_stages::Scorer;
use serde::Deserialize;

/// The file read when none is named, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "config/scoring.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoringFile {
    #[serde(default)]
    weights: ScoreWeights,
}

/// Which topic classifier scores the reviews.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClassifierChoice {
    /// The sentence-encoder model when it is installed (scripts/fetch-model.sh), else keywords.
    Auto,
    /// The zero-shot classifier on ONNX Runtime; an error if the model is not installed.
    Model,
    /// The keyword classifier (English and French word lists).
    Keywords,
}

/// Build the classifier. `Auto` says on stderr which one it took and why.
pub fn classifier(choice: ClassifierChoice) -> Result<Arc<dyn TopicClassifier>> {
    let encoder_config = EncoderConfig::default();
    let installed =
        encoder_config.model_dir.join("model.onnx").exists() && encoder_config.ort_library.exists();
    match choice {
        ClassifierChoice::Keywords => Ok(Arc::new(KeywordClassifier::default())),
        ClassifierChoice::Auto if !installed => {
            eprintln!(
                "topic classifier: keywords (no model in {}; scripts/fetch-model.sh installs it)",
                encoder_config.model_dir.display()
            );
            Ok(Arc::new(KeywordClassifier::default()))
        }
        ClassifierChoice::Model if !installed => bail!(
            "the model is not installed in {} (or ONNX Runtime at {}): run scripts/fetch-model.sh",
            encoder_config.model_dir.display(),
            encoder_config.ort_library.display()
        ),
        _ => {
            let dir = encoder_config.model_dir.clone();
            let encoder =
                SentenceEncoder::shared(encoder_config).context("loading the sentence encoder")?;
            let c = ZeroShotClassifier::new(encoder, ZeroShotConfig::default())
                .context("building the topic classifier")?;
            eprintln!("topic classifier: zero-shot model {}", dir.display());
            Ok(Arc::new(c))
        }
    }
}

/// Load the weights (from `path`, else config/scoring.toml when present, else the built-in
/// defaults) and build the scorer around `classifier`.
pub fn load_scorer(path: Option<&Path>, classifier: Arc<dyn TopicClassifier>) -> Result<Scorer> {
    let weights = match path {
        Some(p) => read(p)?,
        None if Path::new(DEFAULT_CONFIG).exists() => read(Path::new(DEFAULT_CONFIG))?,
        None => ScoreWeights::default(),
    };
    Ok(Scorer::new(classifier, weights))
}

fn read(path: &Path) -> Result<ScoreWeights> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read scoring config {}", path.display()))?;
    let file: ScoringFile = toml::from_str(&text)
        .with_context(|| format!("invalid scoring config {}", path.display()))?;
    file.weights
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid weights in {}: {e}", path.display()))?;
    Ok(file.weights)
}
