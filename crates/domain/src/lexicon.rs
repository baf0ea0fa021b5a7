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

/// Every stem and phrase of [`STEMS`] in one automaton, so that a text is scanned once.
struct StemIndex {
    matcher: aho_corasick::AhoCorasick,
    /// By pattern id of `matcher`.
    patterns: Vec<StemPattern>,
}

struct StemPattern {
    /// The entries of [`STEMS`] that list it (a stem may be listed under two topics).
    topics: Vec<usize>,
    /// A single-word stem counts at the start of a word only (it is a prefix of the word);
    /// a phrase (several words, symbols) counts anywhere, each occurrence once.
    word_stem: bool,
}

static STEM_INDEX: std::sync::LazyLock<StemIndex> = std::sync::LazyLock::new(|| {
    let mut patterns: Vec<(&'static str, StemPattern)> = Vec::new();
    for (topic, (_, stems)) in STEMS.iter().enumerate() {
        for stem in stems.iter() {
            match patterns.iter_mut().find(|(p, _)| p == stem) {
                Some((_, pattern)) => pattern.topics.push(topic),
                None => patterns.push((
                    stem,
                    StemPattern {
                        topics: vec![topic],
                        word_stem: stem.chars().all(char::is_alphanumeric),
                    },
                )),
            }
        }
    }
    // A full DFA: a few hundred short patterns make a small table, and it searches each
    // byte with one lookup, where the default (a contiguous NFA here) may follow failure
    // links.
    let matcher = aho_corasick::AhoCorasick::builder()
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(patterns.iter().map(|(p, _)| *p))
        .expect("the stems build an automaton");
    StemIndex {
        matcher,
        patterns: patterns.into_iter().map(|(_, p)| p).collect(),
    }
});

/// Hits per entry of [`STEMS`] in a text, in one pass: a word stem counts once per word it
/// begins (the text split at every non-alphanumeric character), a phrase once per
/// non-overlapping occurrence (as `str::matches` counts); at most 20 per entry.
fn stem_hits(text: &str) -> [u32; STEMS.len()] {
    let index = &*STEM_INDEX;
    let lower = text.to_lowercase();
    let mut hits = [0u32; STEMS.len()];
    // The overlapping search reports a pattern's occurrences in order: a phrase counts
    // when it starts after its previous counted occurrence ended.
    let mut counted_until = vec![0usize; index.patterns.len()];
    for m in index.matcher.find_overlapping_iter(&lower) {
        let id = m.pattern().as_usize();
        let pattern = &index.patterns[id];
        if pattern.word_stem {
            let starts_word = lower[..m.start()]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
            if !starts_word {
                continue;
            }
        } else {
            if m.start() < counted_until[id] {
                continue;
            }
            counted_until[id] = m.end();
        }
        for &topic in &pattern.topics {
            hits[topic] += 1;
        }
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

    /// The reference count: each word's prefixes checked against every stem, each phrase
    /// searched on its own with `str::matches`.
    fn stem_hits_one_by_one(text: &str) -> [u32; STEMS.len()] {
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let mut hits = [0u32; STEMS.len()];
        for (topic, (_, stems)) in STEMS.iter().enumerate() {
            for stem in stems.iter() {
                hits[topic] += if stem.chars().all(char::is_alphanumeric) {
                    words.iter().filter(|w| w.starts_with(stem)).count() as u32
                } else {
                    lower.matches(stem).count() as u32
                };
            }
        }
        hits.map(|h| h.min(20))
    }

    proptest::proptest! {
        #[test]
        fn one_automaton_counts_as_separate_searches_do(
            picks in proptest::collection::vec((0usize..400, "[ a-zA-ZéÉ'.,!]{0,6}"), 0..16)
        ) {
            let stems: Vec<&str> = STEMS
                .iter()
                .flat_map(|(_, stems)| stems.iter().copied())
                .collect();
            let text: String = picks
                .iter()
                .map(|(i, filler)| format!("{filler}{}", stems[i % stems.len()]))
                .collect();
            proptest::prop_assert_eq!(stem_hits(&text), stem_hits_one_by_one(&text));
        }
    }

    #[test]
    fn stems_count_at_word_starts_and_phrases_anywhere() {
        let sample = "Quality is great. The item broke after a week; unqualified praise \
                      from me, still working? No: broke afterwards too.";
        assert_eq!(stem_hits(sample), stem_hits_one_by_one(sample));
    }
}
