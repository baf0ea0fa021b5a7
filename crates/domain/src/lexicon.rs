//! A keyword classifier for English and French: the embedded default's topic classifier when no
//! model is configured, and a baseline the model must beat. Each topic has word stems; a review's
//! topic scores are its share of stem hits, and its informativeness grows with the number of
//! concrete (on-topic) hits.

use crate::classify::{ClassifyError, TextSignals, Topic, TopicClassifier};
use crate::topics::{OFF_TOPIC, default_topics};

/// Stems per default topic id (English and French). A word matches a stem if it starts with it.
const STEMS: &[(&str, &[&str])] = &[
    (
        "product_quality",
        &[
            "quality",
            "qualit",
            "well made",
            "cheap plastic",
            "flimsy",
            "sturdy",
            "solid",
            "excellent",
            "poor",
            "defect",
            "faulty",
            "sound",
            "picture",
            "screen",
            "material",
            "matière",
            "finition",
            "finish",
            "performan",
            "works",
            "fonctionne",
            "broke",
            "battery",
            "batterie",
            "fabrication",
            "bien fait",
        ],
    ),
    (
        "value_for_money",
        &[
            "price",
            "prix",
            "value",
            "money",
            "worth",
            "cheap",
            "expensive",
            "cher",
            "bargain",
            "affordable",
            "abordable",
            "cost",
            "coût",
            "overpriced",
            "rapport qualité",
            "euros",
            "pounds",
            "£",
            "€",
            "deal",
        ],
    ),
    (
        "delivery_packaging",
        &[
            "deliver",
            "livr",
            "arrived",
            "arrivé",
            "shipping",
            "shipped",
            "package",
            "packag",
            "colis",
            "emballage",
            "box",
            "boîte",
            "carton",
            "damaged",
            "abîmé",
            "courier",
            "transporteur",
            "late",
            "retard",
            "dispatch",
            "postage",
            "parcel",
        ],
    ),
    (
        "customer_service",
        &[
            "customer service",
            "service client",
            "seller",
            "vendeur",
            "refund",
            "rembours",
            "return",
            "retour",
            "support",
            "replac",
            "remplac",
            "warranty",
            "garantie",
            "email",
            "contacted",
            "contacté",
            "reply",
            "répon",
            "complain",
            "réclamation",
        ],
    ),
    (
        "ease_of_use",
        &[
            "easy",
            "facile",
            "simple",
            "intuitive",
            "intuitif",
            "install",
            "setup",
            "set up",
            "instructions",
            "notice",
            "manual",
            "mode d'emploi",
            "use",
            "utilis",
            "user friendly",
            "complicated",
            "compliqué",
            "difficult",
            "difficile",
            "confusing",
            "pratique",
            "handy",
        ],
    ),
    (
        "durability",
        &[
            "durab",
            "durable",
            "last",
            "lasted",
            "still working",
            "months",
            "mois",
            "years",
            "ans",
            "années",
            "wear",
            "usure",
            "usé",
            "broke after",
            "cassé",
            "fell apart",
            "robust",
            "robuste",
            "solide",
            "tear",
            "resist",
            "résist",
        ],
    ),
];

/// Keyword-based [`TopicClassifier`] over the default topics.
#[derive(Debug, Clone)]
pub struct KeywordClassifier {
    topics: Vec<Topic>,
}

impl Default for KeywordClassifier {
    fn default() -> Self {
        Self {
            topics: default_topics(),
        }
    }
}

/// Stems prepared for matching: single-word stems bucketed by first byte (matched against the
/// start of each word), the rest (multi-word, symbols) matched as substrings.
struct StemIndex {
    by_first_byte: Vec<Vec<(usize, &'static str)>>,
    phrases: Vec<(usize, &'static str)>,
}

static STEM_INDEX: std::sync::LazyLock<StemIndex> = std::sync::LazyLock::new(|| {
    let mut by_first_byte = vec![Vec::new(); 256];
    let mut phrases = Vec::new();
    for (topic, (_, stems)) in STEMS.iter().enumerate() {
        for stem in stems.iter() {
            if stem.chars().all(char::is_alphanumeric) {
                by_first_byte[stem.as_bytes()[0] as usize].push((topic, *stem));
            } else {
                phrases.push((topic, *stem));
            }
        }
    }
    StemIndex {
        by_first_byte,
        phrases,
    }
});

/// Hits per entry of [`STEMS`] in a text: one tokenisation pass, a few prefix checks per word.
fn stem_hits(text: &str) -> [u32; STEMS.len()] {
    let index = &*STEM_INDEX;
    let mut hits = [0u32; STEMS.len()];
    let lower = text.to_lowercase();
    for word in lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        for (topic, stem) in &index.by_first_byte[word.as_bytes()[0] as usize] {
            if word.starts_with(stem) {
                hits[*topic] += 1;
            }
        }
    }
    for (topic, phrase) in &index.phrases {
        hits[*topic] += lower.matches(phrase).count() as u32;
    }
    hits.map(|h| h.min(20))
}

impl KeywordClassifier {
    fn signals(&self, text: &str) -> TextSignals {
        let stem_hits = stem_hits(text);
        let mut hits: Vec<f32> = self
            .topics
            .iter()
            .map(|t| {
                STEMS
                    .iter()
                    .position(|(id, _)| *id == t.id)
                    .map_or(0.0, |i| stem_hits[i] as f32)
            })
            .collect();
        let on_topic: f32 = hits.iter().sum();
        if let Some(i) = self.topics.iter().position(|t| t.id == OFF_TOPIC) {
            // Off-topic carries the weight of "nothing concrete found".
            hits[i] = 1.0;
        }
        let total: f32 = hits.iter().sum();
        let topic_scores = hits.iter().map(|h| h / total.max(1.0)).collect();
        TextSignals {
            topic_scores,
            informativeness: 1.0 - (-on_topic / 3.0).exp(),
        }
    }
}

impl TopicClassifier for KeywordClassifier {
    fn topics(&self) -> &[Topic] {
        &self.topics
    }

    fn classify(&self, texts: &[&str]) -> Result<Vec<TextSignals>, ClassifyError> {
        Ok(texts.iter().map(|t| self.signals(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(text: &str) -> String {
        let c = KeywordClassifier::default();
        let s = &c.classify(&[text]).unwrap()[0];
        let (i, _) = s
            .topic_scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        c.topics()[i].id.clone()
    }

    #[test]
    fn finds_obvious_topics_in_both_languages() {
        assert_eq!(
            top("The parcel arrived late and the box was damaged"),
            "delivery_packaging"
        );
        assert_eq!(
            top("Colis arrivé en retard, emballage abîmé"),
            "delivery_packaging"
        );
        assert_eq!(
            top("Great price, really good value for money"),
            "value_for_money"
        );
        assert_eq!(
            top("Le vendeur m'a remboursé, service client parfait"),
            "customer_service"
        );
        assert_eq!(top("I loved it"), "off_topic");
    }

    #[test]
    fn informativeness_grows_with_concrete_content() {
        let c = KeywordClassifier::default();
        let s = c
            .classify(&[
                "ok",
                "Easy to install, sturdy, and the battery lasted two years",
            ])
            .unwrap();
        assert!(s[0].informativeness < 0.01);
        assert!(s[1].informativeness > 0.7);
    }
}
