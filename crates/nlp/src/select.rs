//! Which topic classifier scores the reviews: the zero-shot model when it is installed, or the
//! keyword classifier. Shared by the `reviews` command and the score Lambda.

use std::str::FromStr;
use std::sync::Arc;

use reviews_domain::TopicClassifier;
use reviews_domain::lexicon::KeywordClassifier;

use crate::{EncoderConfig, NlpError, SentenceEncoder, ZeroShotClassifier, ZeroShotConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClassifierChoice {
    /// The model when it is installed, else keywords.
    #[default]
    Auto,
    /// The zero-shot model; an error if it is not installed.
    Model,
    /// The keyword classifier (English and French word lists).
    Keywords,
}

impl FromStr for ClassifierChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "model" => Ok(Self::Model),
            "keywords" => Ok(Self::Keywords),
            other => Err(format!(
                "unknown classifier {other:?}: use auto, model or keywords"
            )),
        }
    }
}

/// The classifier built, and a line saying which one and why (for the log).
pub struct Selected {
    pub classifier: Arc<dyn TopicClassifier>,
    pub description: String,
    /// Names this classifier for reuse of its results: two runs with the same id give a
    /// text the same topics (the model's folder name and size, or `keywords`).
    pub id: String,
}

/// Build the classifier for `choice` with the model files of `config` (see
/// [`EncoderConfig::default`] for where they are looked up).
pub fn select_classifier(
    choice: ClassifierChoice,
    config: EncoderConfig,
) -> Result<Selected, NlpError> {
    let installed = config.model_dir.join("model.onnx").exists() && config.ort_library.exists();
    let keywords = |why: String| Selected {
        classifier: Arc::new(KeywordClassifier::default()),
        description: why,
        id: "keywords".to_owned(),
    };
    match choice {
        ClassifierChoice::Keywords => Ok(keywords("topic classifier: keywords".to_owned())),
        ClassifierChoice::Auto if !installed => Ok(keywords(format!(
            "topic classifier: keywords (no model in {}; scripts/fetch-model.sh installs it)",
            config.model_dir.display()
        ))),
        ClassifierChoice::Model if !installed => Err(NlpError::ModelFileMissing {
            path: if config.ort_library.exists() {
                config.model_dir.join("model.onnx")
            } else {
                config.ort_library.clone()
            },
            what: "the model or the ONNX Runtime library",
        }),
        _ => {
            let dir = config.model_dir.clone();
            let size = std::fs::metadata(dir.join("model.onnx")).map_or(0, |m| m.len());
            let name = dir
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let encoder = SentenceEncoder::shared(config)?;
            let c = ZeroShotClassifier::new(encoder, ZeroShotConfig::default())?;
            Ok(Selected {
                classifier: Arc::new(c),
                description: format!("topic classifier: zero-shot model {}", dir.display()),
                id: format!("zero-shot:{name}:{size}"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse() {
        assert_eq!("Model".parse(), Ok(ClassifierChoice::Model));
        assert_eq!("".parse(), Ok(ClassifierChoice::Auto));
        assert!("bert".parse::<ClassifierChoice>().is_err());
    }

    #[test]
    fn missing_model_falls_back_or_fails_as_asked() {
        let config = EncoderConfig {
            model_dir: "/nonexistent/model".into(),
            ..EncoderConfig::default()
        };
        let auto = select_classifier(ClassifierChoice::Auto, config.clone()).unwrap();
        assert!(auto.description.contains("keywords"));
        let err = select_classifier(ClassifierChoice::Model, config)
            .err()
            .unwrap();
        assert!(err.to_string().contains("fetch-model.sh"), "{err}");
    }
}
