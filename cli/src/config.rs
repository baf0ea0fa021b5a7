//! Scoring configuration: weights of the relevance signals, from a TOML file.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::score::ScoreWeights;
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

/// Load the weights (from `path`, else config/scoring.toml when present, else the built-in
/// defaults) and build the scorer with the keyword classifier.
pub fn load_scorer(path: Option<&Path>) -> Result<Scorer> {
    let weights = match path {
        Some(p) => read(p)?,
        None if Path::new(DEFAULT_CONFIG).exists() => read(Path::new(DEFAULT_CONFIG))?,
        None => ScoreWeights::default(),
    };
    Ok(Scorer::new(Arc::new(KeywordClassifier::default()), weights))
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
