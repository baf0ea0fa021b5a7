//! Zero-shot topics by similarity to label prototypes, and the informativeness signal.

use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayView1, Axis};
use reviews_domain::classify::{ClassifyError, TextSignals, Topic, TopicClassifier};

use crate::config::ZeroShotConfig;
use crate::encoder::SentenceEncoder;
use crate::error::Result;

/// What [`ZeroShotClassifier::analyze`] returns for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Cosine similarity with each topic prototype, in topic order.
    pub similarities: Vec<f32>,
    /// `cos(text, generic)`: similarity with vague verdicts, the input of informativeness.
    pub generic_similarity: f32,
    pub signals: TextSignals,
}

/// Zero-shot topic classifier over a sentence encoder.
///
/// No NLI model can be had from the package registries here, so topics come from embeddings:
/// every label has a prototype, the normalised mean of the embeddings of its description and
/// example sentences (computed once, at construction). A review is encoded once, whatever the
/// label count, and its topic scores are `softmax(cos(review, prototype) / temperature)`.
///
/// Informativeness ("how much concrete product experience the text carries") is how far the
/// review sits from the prototype of vague verdicts ("Great product!", "Five stars."), times
/// the share of its topic mass that is not off-topic:
/// `sigmoid((center - cos(r, generic)) / scale) * (1 - score(off_topic))`.
/// A text must say something to move away from the vague verdicts; an anchor of "concrete
/// experience" sentences was tried too and ranked worse against helpful votes (README).
pub struct ZeroShotClassifier {
    encoder: Arc<SentenceEncoder>,
    topics: Vec<Topic>,
    /// One unit row per topic.
    prototypes: Array2<f32>,
    temperature: f32,
    off_topic: Option<usize>,
    generic: Array1<f32>,
    inf_center: f32,
    inf_scale: f32,
}

impl ZeroShotClassifier {
    pub fn new(encoder: Arc<SentenceEncoder>, config: ZeroShotConfig) -> Result<Self> {
        config.validate()?;
        // Embed every prototype sentence in one call: one sorted, batched pass.
        let mut groups: Vec<Vec<&str>> = config
            .topics
            .iter()
            .map(|t| {
                std::iter::once(t.description.as_str())
                    .chain(t.examples.iter().map(String::as_str))
                    .collect()
            })
            .collect();
        let inf = &config.informativeness;
        groups.push(inf.generic.iter().map(String::as_str).collect());
        let flat: Vec<&str> = groups.iter().flatten().copied().collect();
        let emb = encoder.encode(&flat)?;

        let mut centroids = Array2::<f32>::zeros((groups.len(), emb.ncols()));
        let mut start = 0;
        for (g, group) in groups.iter().enumerate() {
            let rows = emb.slice(ndarray::s![start..start + group.len(), ..]);
            let mean = rows.mean_axis(Axis(0)).expect("groups are not empty");
            centroids.row_mut(g).assign(&normalized(mean.view()));
            start += group.len();
        }
        let n = config.topics.len();
        let off_topic = config
            .off_topic
            .as_ref()
            .and_then(|id| config.topics.iter().position(|t| &t.id == id));
        Ok(ZeroShotClassifier {
            topics: config
                .topics
                .iter()
                .map(|t| Topic {
                    id: t.id.clone(),
                    name: t.name.clone(),
                })
                .collect(),
            prototypes: centroids.slice(ndarray::s![..n, ..]).to_owned(),
            generic: centroids.row(n).to_owned(),
            temperature: config.temperature,
            off_topic,
            inf_center: inf.center,
            inf_scale: inf.scale,
            encoder,
        })
    }

    pub fn encoder(&self) -> &SentenceEncoder {
        &self.encoder
    }

    /// Signals with the raw quantities behind them, for tuning and explanations.
    pub fn analyze(&self, texts: &[&str]) -> Result<Vec<Analysis>> {
        let emb = self.encoder.encode(texts)?;
        let sims = emb.dot(&self.prototypes.t());
        let generic = emb.dot(&self.generic);
        Ok(sims
            .rows()
            .into_iter()
            .zip(generic)
            .zip(texts)
            .map(|((row, generic), text)| {
                let topic_scores = softmax(row, self.temperature);
                let on_topic = self.off_topic.map_or(1.0, |i| 1.0 - topic_scores[i]);
                // An empty text carries no experience, whatever its [CLS][SEP] embedding says.
                let informativeness = if text.chars().any(char::is_alphanumeric) {
                    (sigmoid((self.inf_center - generic) / self.inf_scale) * on_topic)
                        .clamp(0.0, 1.0)
                } else {
                    0.0
                };
                Analysis {
                    similarities: row.to_vec(),
                    generic_similarity: generic,
                    signals: TextSignals {
                        topic_scores,
                        informativeness,
                    },
                }
            })
            .collect())
    }

    /// [`TopicClassifier::classify`] with the crate's own error type.
    pub fn signals(&self, texts: &[&str]) -> Result<Vec<TextSignals>> {
        Ok(self
            .analyze(texts)?
            .into_iter()
            .map(|a| a.signals)
            .collect())
    }
}

impl TopicClassifier for ZeroShotClassifier {
    fn topics(&self) -> &[Topic] {
        &self.topics
    }

    fn classify(&self, texts: &[&str]) -> Result<Vec<TextSignals>, ClassifyError> {
        Ok(self.signals(texts)?)
    }
}

fn normalized(v: ArrayView1<'_, f32>) -> Array1<f32> {
    let norm = v.dot(&v).sqrt().max(1e-12);
    v.mapv(|x| x / norm)
}

/// Softmax of `x / temperature`, stable (max subtracted first).
fn softmax(x: ArrayView1<'_, f32>, temperature: f32) -> Vec<f32> {
    let max = x.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let exp: Vec<f32> = x.iter().map(|&v| ((v - max) / temperature).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_a_distribution_and_sharpens_with_temperature() {
        let x = ndarray::array![0.30f32, 0.20, 0.10];
        let warm = softmax(x.view(), 1.0);
        let cold = softmax(x.view(), 0.05);
        for s in [&warm, &cold] {
            assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            assert!(s.iter().all(|&p| (0.0..=1.0).contains(&p)));
        }
        assert!(cold[0] > 0.85 && warm[0] < 0.4);
        // 0.1 of cosine at temperature 0.05 is a factor e^2.
        assert!((cold[0] / cold[1] - 2f32.exp()).abs() < 1e-3);
    }

    #[test]
    fn sigmoid_is_bounded_and_centred() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(-100.0) >= 0.0 && sigmoid(100.0) <= 1.0);
    }
}
