//! The classifier seam: the score stage depends on this trait, not on a model runtime.

use thiserror::Error;

/// What a text classifier tells the scorer about one review text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSignals {
    /// One score per topic, aligned with [`TopicClassifier::topics`], each in [0, 1].
    pub topic_scores: Vec<f32>,
    /// How much concrete product experience the text carries, in [0, 1].
    pub informativeness: f32,
}

/// A topic label the classifier knows: a stable id (`value_for_money`) and a human name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Topic {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Error)]
pub enum ClassifyError {
    #[error("classifier is not available: {0}")]
    Unavailable(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

/// Zero-shot topic classification of review texts, batched.
pub trait TopicClassifier: Send + Sync {
    /// The topics, in the order of [`TextSignals::topic_scores`].
    fn topics(&self) -> &[Topic];
    /// Classify a batch of texts; returns one [`TextSignals`] per text, in order.
    fn classify(&self, texts: &[&str]) -> Result<Vec<TextSignals>, ClassifyError>;
}
