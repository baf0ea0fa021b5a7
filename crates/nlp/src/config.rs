//! The zero-shot label set and its scoring parameters, loadable from TOML or JSON.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{NlpError, Result};

/// The built-in defaults: the same file documents every field.
pub const DEFAULT_TOPICS_TOML: &str = include_str!("../topics.toml");

/// One zero-shot label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Stable snake_case id stored in curated data (`value_for_money`).
    pub id: String,
    /// Human name (`Value for money`).
    pub name: String,
    /// One sentence saying what the label covers; part of the prototype.
    pub description: String,
    /// A few review-like sentences of the label; part of the prototype.
    #[serde(default)]
    pub examples: Vec<String>,
}

/// Parameters of the informativeness signal, see [`crate::ZeroShotClassifier`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InformativenessConfig {
    /// Vague verdicts that carry no concrete experience ("Great product!", "Five stars.").
    pub generic: Vec<String>,
    /// Cosine with the generic prototype that maps to 0.5.
    pub center: f32,
    /// Width of the sigmoid, in cosine units.
    pub scale: f32,
}

/// Labels and scoring parameters of the zero-shot classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroShotConfig {
    /// Softmax temperature over the cosine similarities.
    pub temperature: f32,
    /// Id of the topic meaning "nothing about the product", if any.
    #[serde(default)]
    pub off_topic: Option<String>,
    pub informativeness: InformativenessConfig,
    pub topics: Vec<TopicSpec>,
}

impl Default for ZeroShotConfig {
    fn default() -> Self {
        ZeroShotConfig::from_toml_str(DEFAULT_TOPICS_TOML)
            .expect("the built-in topics.toml is valid (checked by a unit test)")
    }
}

impl ZeroShotConfig {
    pub fn from_toml_str(s: &str) -> Result<Self> {
        let config: ZeroShotConfig =
            toml::from_str(s).map_err(|e| NlpError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_json_str(s: &str) -> Result<Self> {
        let config: ZeroShotConfig =
            serde_json::from_str(s).map_err(|e| NlpError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Read a `.json` file as JSON, anything else as TOML.
    pub fn from_path(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| NlpError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            Self::from_json_str(&text)
        } else {
            Self::from_toml_str(&text)
        };
        parsed.map_err(|e| NlpError::Config(format!("{}: {e}", path.display())))
    }

    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(NlpError::Config(m));
        if self.topics.is_empty() {
            return fail("at least one topic is needed".into());
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return fail(format!("temperature must be > 0, got {}", self.temperature));
        }
        let inf = &self.informativeness;
        if !(inf.scale > 0.0 && inf.scale.is_finite()) {
            return fail(format!(
                "informativeness.scale must be > 0, got {}",
                inf.scale
            ));
        }
        if inf.generic.is_empty() {
            return fail("informativeness needs generic anchor sentences".into());
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.topics {
            let snake = !t.id.is_empty()
                && t.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !snake {
                return fail(format!("topic id `{}` is not snake_case", t.id));
            }
            if !seen.insert(t.id.as_str()) {
                return fail(format!("topic id `{}` appears twice", t.id));
            }
            if t.description.trim().is_empty() {
                return fail(format!("topic `{}` has no description", t.id));
            }
        }
        match &self.off_topic {
            Some(off) if !seen.contains(off.as_str()) => {
                fail(format!("off_topic `{off}` is not one of the topics"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults_are_the_documented_labels() {
        let c = ZeroShotConfig::default();
        let ids: Vec<&str> = c.topics.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "product_quality",
                "value_for_money",
                "delivery_packaging",
                "customer_service",
                "ease_of_use",
                "durability",
                "off_topic"
            ]
        );
        assert_eq!(c.off_topic.as_deref(), Some("off_topic"));
    }

    #[test]
    fn json_round_trip_and_small_custom_set() {
        let c = ZeroShotConfig::default();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(ZeroShotConfig::from_json_str(&json).unwrap(), c);

        let custom = r#"
            temperature = 0.1
            [informativeness]
            center = 0.35
            scale = 0.05
            generic = ["Great."]
            [[topics]]
            id = "sound"
            name = "Sound"
            description = "How it sounds."
        "#;
        let c = ZeroShotConfig::from_toml_str(custom).unwrap();
        assert_eq!(c.topics.len(), 1);
        assert!(c.topics[0].examples.is_empty() && c.off_topic.is_none());
    }

    #[test]
    fn bad_configs_are_rejected_with_a_reason() {
        let base = ZeroShotConfig::default();
        let mut c = base.clone();
        c.topics[1].id = "Value For Money".into();
        assert!(c.validate().unwrap_err().to_string().contains("snake_case"));
        let mut c = base.clone();
        c.off_topic = Some("chit_chat".into());
        assert!(c.validate().unwrap_err().to_string().contains("chit_chat"));
        let mut c = base.clone();
        c.temperature = 0.0;
        assert!(c.validate().is_err());
        let mut c = base;
        c.topics.push(c.topics[0].clone());
        assert!(c.validate().unwrap_err().to_string().contains("twice"));
        assert!(ZeroShotConfig::from_toml_str("temperature = 1\nbogus = 2").is_err());
    }
}
