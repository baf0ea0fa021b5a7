//! The scoring configuration (weights of the relevance signals): one TOML format, read the same
//! way by the CLI and the score Lambda. config/scoring.toml is compiled in as the built-in
//! default, so a deployment without the file scores exactly as `reviews run` does with it.

use std::path::Path;

use reviews_domain::score::ScoreWeights;
use serde::Deserialize;

/// config/scoring.toml as it was when the binary was built.
pub const BUILT_IN: &str = include_str!("../../../config/scoring.toml");

#[derive(Debug, thiserror::Error)]
pub enum ScoringError {
    #[error("cannot read the scoring configuration {path}: {message}")]
    Read { path: String, message: String },
    #[error("invalid scoring configuration {origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl From<ScoringError> for crate::StageError {
    fn from(e: ScoringError) -> Self {
        crate::StageError::Input(e.to_string())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoringFile {
    #[serde(default)]
    weights: ScoreWeights,
}

/// The weights in a scoring file's text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<ScoreWeights, ScoringError> {
    let invalid = |message: String| ScoringError::Invalid {
        origin: origin.to_owned(),
        message,
    };
    let file: ScoringFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    file.weights
        .validate()
        .map_err(|e| invalid(format!("invalid weights: {e}")))?;
    Ok(file.weights)
}

/// The weights of the file at `path`.
pub fn load(path: &Path) -> Result<ScoreWeights, ScoringError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScoringError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse(&text, &path.display().to_string())
}

/// The built-in weights (config/scoring.toml compiled in).
pub fn built_in() -> ScoreWeights {
    parse(BUILT_IN, "config/scoring.toml (built in)").expect("config/scoring.toml is valid")
}

/// The weights of `path` when given, else the built-in ones.
pub fn load_or_built_in(path: Option<&Path>) -> Result<ScoreWeights, ScoringError> {
    match path {
        Some(p) => load(p),
        None => Ok(built_in()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_weights_are_the_repository_file() {
        let file = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/scoring.toml"),
        )
        .unwrap();
        assert_eq!(parse(&file, "file").unwrap(), built_in());
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        let e = load(&missing).unwrap_err().to_string();
        assert!(e.contains("none.toml"), "{e}");
        let e = parse("[weights]\nlength = -1.0\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.toml") && e.contains("invalid weights"), "{e}");
        let e = parse("[weights]\nlenght = 1.0\n", "y.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lenght"), "{e}");
        let custom = dir.path().join("custom.toml");
        std::fs::write(&custom, "[weights]\nlength = 1.0\ninformativeness = 0.0\n").unwrap();
        let w = load_or_built_in(Some(&custom)).unwrap();
        assert_eq!(w.length, 1.0);
        assert_ne!(w, built_in());
    }
}
