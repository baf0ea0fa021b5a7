//! A learned ranking of helpfulness: a linear model over what a brand-new review has (length
//! and structure of its text and title, its rating and how far that is from the product's mean,
//! verified purchase, language, the model's informativeness), trained with a pairwise logistic
//! objective on pairs of one product's reviews where one got more helpful votes. Pairwise
//! within products because that is what the evaluation measures (which review of a product to
//! show first), and because it cancels what differs between products (traffic, age of the
//! listing). Only pairs posted within [`PAIR_MAX_DAYS`] of each other are used: helpful votes
//! pile up on older reviews, and a model trained across ages would learn age.
//!
//! [`cross_validated_scores`] scores every review by a model trained on the other products
//! only (folds split by product), so an evaluation of those scores is on products the model
//! never saw.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use reviews_domain::Review;
use serde::{Deserialize, Serialize};

use crate::eval::Judged;

/// Pairs for training: posted at most this many days apart.
pub const PAIR_MAX_DAYS: i64 = 180;

/// The features, in order.
pub const FEATURE_NAMES: &[&str] = &[
    "log_words",
    "log_chars_per_word",
    "sentences",
    "words_per_sentence",
    "title_words",
    "exclamations",
    "questions",
    "digits",
    "uppercase_share",
    "rating",
    "abs_deviation",
    "signed_deviation",
    "verified",
    "english",
    "informativeness",
];

/// The features of one review (see [`FEATURE_NAMES`]).
pub fn features(r: &Review, informativeness: Option<f32>) -> Vec<f64> {
    let words = f64::from(r.word_count.max(1));
    let text = r.text.as_str();
    let sentences = text
        .split(['.', '!', '?'])
        .filter(|s| s.split_whitespace().next().is_some())
        .count()
        .max(1) as f64;
    let letters = text.chars().filter(|c| c.is_alphabetic()).count().max(1) as f64;
    let upper = text.chars().filter(|c| c.is_uppercase()).count() as f64;
    let count = |c: char| text.chars().filter(|x| *x == c).count() as f64;
    let deviation = f64::from(r.rating) - f64::from(r.product_mean_rating);
    vec![
        words.ln_1p(),
        (f64::from(r.char_count.max(1)) / words).ln(),
        sentences.ln_1p(),
        (words / sentences).ln_1p(),
        (r.title.split_whitespace().count() as f64).ln_1p(),
        count('!').ln_1p(),
        count('?').ln_1p(),
        (text.chars().filter(char::is_ascii_digit).count() as f64).ln_1p(),
        upper / letters,
        f64::from(r.rating),
        deviation.abs(),
        deviation,
        match r.verified_purchase {
            Some(true) => 1.0,
            Some(false) => 0.0,
            None => 0.5,
        },
        f64::from(u8::from(r.effective_language() == "en")),
        f64::from(informativeness.unwrap_or(0.0)),
    ]
}

/// A linear model over standardised features.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearRanker {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub weights: Vec<f64>,
}

impl LinearRanker {
    /// Each feature's part of the score (standardised value times weight), in
    /// [`FEATURE_NAMES`] order: the largest ones say why a review ranks high.
    pub fn contributions(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .zip(&self.weights)
            .map(|(((v, m), s), w)| (v - m) / s * w)
            .collect()
    }

    pub fn score(&self, x: &[f64]) -> f64 {
        self.contributions(x).iter().sum()
    }

    /// Fit on `pairs` (winner, loser) of rows of `x`: full-batch gradient descent on the
    /// pairwise logistic loss with an L2 penalty (deterministic: same data, same weights).
    pub fn train(x: &[Vec<f64>], pairs: &[(usize, usize)], l2: f64, epochs: usize) -> Self {
        let d = x.first().map_or(0, Vec::len);
        let n = x.len().max(1) as f64;
        let mean: Vec<f64> = (0..d)
            .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n)
            .collect();
        let scale: Vec<f64> = (0..d)
            .map(|j| {
                let var = x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
                if var > 1e-12 { var.sqrt() } else { 1.0 }
            })
            .collect();
        let z: Vec<Vec<f64>> = x
            .iter()
            .map(|r| (0..d).map(|j| (r[j] - mean[j]) / scale[j]).collect())
            .collect();
        let mut w = vec![0.0; d];
        if pairs.is_empty() {
            return Self {
                mean,
                scale,
                weights: w,
            };
        }
        let lr = 0.5;
        for _ in 0..epochs {
            let mut grad: Vec<f64> = w.iter().map(|wj| l2 * wj).collect();
            for &(a, b) in pairs {
                let diff: f64 = (0..d).map(|j| w[j] * (z[a][j] - z[b][j])).sum();
                // d/dw of log(1 + exp(-diff)), averaged over pairs.
                let g = -1.0 / (1.0 + diff.exp()) / pairs.len() as f64;
                for j in 0..d {
                    grad[j] += g * (z[a][j] - z[b][j]);
                }
            }
            for j in 0..d {
                w[j] -= lr * grad[j];
            }
        }
        Self {
            mean,
            scale,
            weights: w,
        }
    }
}

/// Training pairs (winner, loser) among `idx`: same product, posted within
/// [`PAIR_MAX_DAYS`], different votes, the winner with at least one.
pub fn training_pairs(items: &[Judged], idx: &[usize]) -> Vec<(usize, usize)> {
    let mut by_product: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in idx {
        by_product.entry(&items[i].product_id).or_default().push(i);
    }
    let mut pairs = Vec::new();
    for group in by_product.values() {
        for (p, &a) in group.iter().enumerate() {
            for &b in &group[p + 1..] {
                let (x, y) = (&items[a], &items[b]);
                if (x.day - y.day).abs() > PAIR_MAX_DAYS || x.helpful_votes == y.helpful_votes {
                    continue;
                }
                let (w, l) = if x.helpful_votes > y.helpful_votes {
                    (a, b)
                } else {
                    (b, a)
                };
                pairs.push((w, l));
            }
        }
    }
    pairs
}

/// The fold of a product (a fixed hash: the same split on every run).
pub fn fold_of(product_id: &str, folds: usize) -> usize {
    let mut h = DefaultHasher::new();
    product_id.hash(&mut h);
    (h.finish() % folds.max(1) as u64) as usize
}

/// The L2 penalty and epochs of every fit (set once, not tuned on any test fold).
pub const L2: f64 = 0.01;
pub const EPOCHS: usize = 300;

/// The `format` of a ranker file.
pub const RANKER_FORMAT: &str = "reviews-ranker";
/// The version of the ranker file this build reads and writes. A file of another version, or
/// one built over other features, is refused: its weights would mean something else here.
pub const RANKER_VERSION: u32 = 1;

/// Where a ranker's weights came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingProvenance {
    /// The training file's name (no directory) and SHA-256.
    pub input: String,
    pub input_sha256: String,
    pub reviews: usize,
    pub products: usize,
    pub pairs: usize,
    /// The classifier whose informativeness is a feature (`keywords`, `model:<file>`...).
    pub classifier: String,
    pub l2: f64,
    pub epochs: usize,
    pub trained_at: chrono::DateTime<chrono::Utc>,
}

/// A trained ranker as a small versioned JSON file (`reviews train` writes it, the score stage
/// reads it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankerFile {
    pub format: String,
    pub version: u32,
    /// The feature names, in the order of the weights: must be [`FEATURE_NAMES`].
    pub features: Vec<String>,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub weights: Vec<f64>,
    pub training: TrainingProvenance,
}

/// Why a ranker file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RankerError {
    #[error("ranker file {path}: cannot read it: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("ranker file {path}: not a ranker file ({reason})")]
    Malformed { path: String, reason: String },
    #[error(
        "ranker file {path}: version {found} of {format:?}, this build reads version {RANKER_VERSION} of {RANKER_FORMAT:?}: build it again with `reviews train`"
    )]
    Version {
        path: String,
        format: String,
        found: u32,
    },
    #[error(
        "ranker file {path}: built over other features than this build computes ({reason}): build it again with `reviews train`"
    )]
    Features { path: String, reason: String },
    #[error(
        "ranker file {path}: trained with the {trained} classifier, but this pipeline scores with {scoring}: its informativeness feature would mean something else; train it with the same classifier (`reviews train --classifier ...`)"
    )]
    Classifier {
        path: String,
        trained: String,
        scoring: String,
    },
}

impl RankerFile {
    pub fn new(model: &LinearRanker, training: TrainingProvenance) -> Self {
        Self {
            format: RANKER_FORMAT.to_owned(),
            version: RANKER_VERSION,
            features: FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            mean: model.mean.clone(),
            scale: model.scale.clone(),
            weights: model.weights.clone(),
            training,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("ranker serialises");
        out.push(b'\n');
        out
    }

    /// Parse and check a ranker file: its format, version and feature list.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Self, RankerError> {
        // The version first, so that a future file's new fields say "version", not "unknown".
        let head: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| RankerError::Malformed {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        let format = head.get("format").and_then(|v| v.as_str()).unwrap_or("");
        if format != RANKER_FORMAT {
            return Err(RankerError::Malformed {
                path: path.to_owned(),
                reason: format!("format is {format:?}, not {RANKER_FORMAT:?}"),
            });
        }
        let version = head.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != u64::from(RANKER_VERSION) {
            return Err(RankerError::Version {
                path: path.to_owned(),
                format: format.to_owned(),
                found: u32::try_from(version).unwrap_or(u32::MAX),
            });
        }
        let file: Self = serde_json::from_value(head).map_err(|e| RankerError::Malformed {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if file.features != FEATURE_NAMES {
            return Err(RankerError::Features {
                path: path.to_owned(),
                reason: format!("it has {:?}, this build {:?}", file.features, FEATURE_NAMES),
            });
        }
        let d = FEATURE_NAMES.len();
        if file.mean.len() != d || file.scale.len() != d || file.weights.len() != d {
            return Err(RankerError::Features {
                path: path.to_owned(),
                reason: format!("{d} features but other lengths of mean, scale or weights"),
            });
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !(finite(&file.mean)
            && finite(&file.weights)
            && file.scale.iter().all(|s| *s > 0.0 && s.is_finite()))
        {
            return Err(RankerError::Malformed {
                path: path.to_owned(),
                reason: "a mean, scale or weight is not a finite number (scales must be > 0)"
                    .to_owned(),
            });
        }
        Ok(file)
    }

    pub fn load(path: &Path) -> Result<Self, RankerError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| RankerError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&shown, &bytes)
    }

    pub fn model(&self) -> LinearRanker {
        LinearRanker {
            mean: self.mean.clone(),
            scale: self.scale.clone(),
            weights: self.weights.clone(),
        }
    }
}

/// The learned signal of a ranker score: a share in [0, 1] (0.5 is the average review of the
/// training data; the score is a pairwise log-odds).
pub fn learned_signal(score: f64) -> f32 {
    (1.0 / (1.0 + (-score).exp())) as f32
}

/// Contributions smaller than this (standardised log-odds) are not worth a reason.
const MIN_CONTRIBUTION: f64 = 0.1;
/// A topic must score at least this to be named in a reason.
const MIN_REASON_TOPIC_SCORE: f32 = 0.3;
/// At most this many reasons per review.
pub const MAX_REASONS: usize = 3;

/// What each feature says when it lifts a review (features that mean nothing to a shopper,
/// such as punctuation or language, give no reason).
fn feature_reason(feature: &str) -> Option<&'static str> {
    Some(match feature {
        "log_words" | "log_chars_per_word" | "sentences" | "words_per_sentence" => "detailed",
        "title_words" => "descriptive title",
        "digits" => "gives figures",
        "rating" | "abs_deviation" | "signed_deviation" => "differs from the average rating",
        "verified" => "verified purchase",
        "informativeness" => "informative",
        _ => return None,
    })
}

/// Why a review ranks where it does, strongest first: the learned ranking's largest positive
/// contributions when a ranker scored it (`contributions` in [`FEATURE_NAMES`] order), else the
/// weighted signals that lift it most; then its main topic.
pub fn reasons(
    contributions: Option<&[f64]>,
    signals: &reviews_domain::score::Signals,
    weights: &reviews_domain::score::ScoreWeights,
    topics: &[reviews_domain::schema::TopicScore],
) -> Vec<String> {
    // "Differs from the average rating" only when it does, by a star or more.
    let differs = signals.deviation >= 0.25;
    let mut by_reason: Vec<(&'static str, f64)> = Vec::new();
    let mut add = |reason: &'static str, amount: f64| {
        if reason == "differs from the average rating" && !differs {
            return;
        }
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, a)) => *a += amount,
            None => by_reason.push((reason, amount)),
        }
    };
    match contributions {
        Some(parts) => {
            for (name, part) in FEATURE_NAMES.iter().zip(parts) {
                if let Some(reason) = feature_reason(name) {
                    add(reason, *part);
                }
            }
        }
        None => {
            // A signal gives a reason when it is high, weighed by what it counts for.
            let high = |value: Option<f32>, at: f32, weight: f32| {
                value.filter(|v| *v >= at).map(|v| f64::from(v * weight))
            };
            let w = weights;
            let s = signals;
            for (reason, amount) in [
                ("detailed", high(Some(s.length), 0.6, w.length)),
                (
                    "differs from the average rating",
                    high(Some(s.deviation), 0.25, w.deviation),
                ),
                (
                    "found helpful by other shoppers",
                    high(s.helpful, 0.5, w.helpful),
                ),
                ("verified purchase", high(Some(s.verified), 1.0, w.verified)),
                ("recent", high(s.recency, 0.8, w.recency)),
                (
                    "informative",
                    high(s.informativeness, 0.5, w.informativeness),
                ),
            ] {
                if let Some(a) = amount {
                    add(reason, a + MIN_CONTRIBUTION);
                }
            }
        }
    }
    by_reason.retain(|(_, a)| *a > MIN_CONTRIBUTION);
    by_reason.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut out: Vec<String> = by_reason
        .into_iter()
        .take(MAX_REASONS - 1)
        .map(|(r, _)| r.to_owned())
        .collect();
    if let Some(t) = topics
        .iter()
        .find(|t| t.id != reviews_domain::topics::OFF_TOPIC && t.score >= MIN_REASON_TOPIC_SCORE)
    {
        out.push(format!("mentions {}", t.id.replace('_', " ")));
    }
    out
}

/// Fit one model on every item (the model a ranker file holds).
pub fn train_all(items: &[Judged], x: &[Vec<f64>]) -> (LinearRanker, usize) {
    let all: Vec<usize> = (0..items.len()).collect();
    let pairs = training_pairs(items, &all);
    (LinearRanker::train(x, &pairs, L2, EPOCHS), pairs.len())
}

/// Every review scored by a model trained on the other folds' products only.
pub fn cross_validated_scores(items: &[Judged], x: &[Vec<f64>], folds: usize) -> Vec<f64> {
    let fold: Vec<usize> = items
        .iter()
        .map(|i| fold_of(&i.product_id, folds))
        .collect();
    let mut scores = vec![0.0; items.len()];
    for f in 0..folds {
        let train: Vec<usize> = (0..items.len()).filter(|&i| fold[i] != f).collect();
        let pairs = training_pairs(items, &train);
        let train_x: Vec<Vec<f64>> = train.iter().map(|&i| x[i].clone()).collect();
        // Pairs index `x`; re-index them into `train_x`.
        let pos: BTreeMap<usize, usize> = train.iter().enumerate().map(|(p, &i)| (i, p)).collect();
        let pairs: Vec<(usize, usize)> = pairs.iter().map(|(a, b)| (pos[a], pos[b])).collect();
        let model = LinearRanker::train(&train_x, &pairs, L2, EPOCHS);
        for i in (0..items.len()).filter(|&i| fold[i] == f) {
            scores[i] = model.score(&x[i]);
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_signal_that_decides_the_pairs() {
        // Feature 0 decides the votes, feature 1 is noise.
        let x: Vec<Vec<f64>> = (0..40)
            .map(|i| vec![f64::from(i % 10), f64::from((i * 7) % 5)])
            .collect();
        let items: Vec<Judged> = (0..40)
            .map(|i| Judged {
                product_id: format!("p{}", i / 10),
                helpful_votes: (i % 10) as u32,
                day: 0,
            })
            .collect();
        let all: Vec<usize> = (0..40).collect();
        let pairs = training_pairs(&items, &all);
        assert!(!pairs.is_empty());
        let m = LinearRanker::train(&x, &pairs, 0.0, 200);
        assert!(
            m.weights[0] > 0.5 && m.weights[0] > 5.0 * m.weights[1].abs(),
            "{m:?}"
        );
        let cv = cross_validated_scores(&items, &x, 2);
        assert!(cv[9] > cv[0]);
    }

    fn provenance() -> TrainingProvenance {
        TrainingProvenance {
            input: "votes.csv".into(),
            input_sha256: "00".repeat(32),
            reviews: 40,
            products: 4,
            pairs: 10,
            classifier: "keywords".into(),
            l2: L2,
            epochs: EPOCHS,
            trained_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_ranker_file_round_trips_and_scores_alike() {
        let d = FEATURE_NAMES.len();
        let model = LinearRanker {
            mean: vec![0.5; d],
            scale: vec![2.0; d],
            weights: (0..d).map(|j| j as f64 / 10.0).collect(),
        };
        let file = RankerFile::new(&model, provenance());
        let back = RankerFile::parse("r.json", &file.to_json()).unwrap();
        assert_eq!(back, file);
        let x: Vec<f64> = (0..d).map(|j| j as f64).collect();
        assert_eq!(back.model().score(&x), model.score(&x));
        let parts = model.contributions(&x);
        assert!((parts.iter().sum::<f64>() - model.score(&x)).abs() < 1e-9);
    }

    #[test]
    fn an_incompatible_ranker_file_is_refused_with_what_to_do() {
        let d = FEATURE_NAMES.len();
        let model = LinearRanker {
            mean: vec![0.0; d],
            scale: vec![1.0; d],
            weights: vec![1.0; d],
        };
        let good: serde_json::Value =
            serde_json::from_slice(&RankerFile::new(&model, provenance()).to_json()).unwrap();
        let with = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            edit(&mut v);
            RankerFile::parse("r.json", &serde_json::to_vec(&v).unwrap()).unwrap_err()
        };
        let e = with(&|v| v["version"] = 2.into());
        assert!(matches!(e, RankerError::Version { found: 2, .. }), "{e}");
        assert!(e.to_string().contains("reviews train"), "{e}");
        let e = with(&|v| v["features"][0] = "stars".into());
        assert!(matches!(e, RankerError::Features { .. }), "{e}");
        let e = with(&|v| v["weights"] = serde_json::json!([1.0]));
        assert!(matches!(e, RankerError::Features { .. }), "{e}");
        let e = with(&|v| v["format"] = "onnx".into());
        assert!(matches!(e, RankerError::Malformed { .. }), "{e}");
        let e = with(&|v| v["scale"][0] = 0.0.into());
        assert!(matches!(e, RankerError::Malformed { .. }), "{e}");
        let e = RankerFile::parse("r.json", b"{not json").unwrap_err();
        assert!(matches!(e, RankerError::Malformed { .. }), "{e}");
        let e = RankerFile::load(Path::new("/nonexistent/ranker.json")).unwrap_err();
        assert!(matches!(e, RankerError::Read { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/ranker.json"), "{e}");
    }

    #[test]
    fn reasons_name_the_largest_lifts_and_the_main_topic() {
        use reviews_domain::schema::TopicScore;
        use reviews_domain::score::{ScoreWeights, Signals};
        let mut parts = vec![0.0; FEATURE_NAMES.len()];
        let at = |n: &str| FEATURE_NAMES.iter().position(|f| *f == n).unwrap();
        parts[at("log_words")] = 0.5;
        parts[at("sentences")] = 0.4;
        parts[at("verified")] = 0.3;
        parts[at("abs_deviation")] = 2.0;
        parts[at("exclamations")] = 5.0;
        let topics = [
            TopicScore {
                id: "off_topic".into(),
                score: 0.9,
            },
            TopicScore {
                id: "value_for_money".into(),
                score: 0.6,
            },
        ];
        let w = ScoreWeights::default();
        let near_mean = Signals {
            deviation: 0.0,
            ..Default::default()
        };
        // Deviation lifts most, but the rating is at the mean: no "differs" reason.
        assert_eq!(
            reasons(Some(&parts), &near_mean, &w, &topics),
            ["detailed", "verified purchase", "mentions value for money"]
        );
        let far = Signals {
            deviation: 0.5,
            ..Default::default()
        };
        assert_eq!(
            reasons(Some(&parts), &far, &w, &topics[..1]),
            ["differs from the average rating", "detailed"]
        );
        // Without a ranker: the weighted signals.
        let long_verified = Signals {
            length: 0.9,
            verified: 1.0,
            ..Default::default()
        };
        assert_eq!(
            reasons(None, &long_verified, &w, &[]),
            ["detailed", "verified purchase"]
        );
        assert!(reasons(None, &Signals::default(), &w, &[]).is_empty());
        assert!((learned_signal(0.0) - 0.5).abs() < 1e-6);
        assert!(learned_signal(3.0) > 0.9 && learned_signal(-3.0) < 0.1);
    }

    #[test]
    fn pairs_stay_within_products_and_ages() {
        let items = vec![
            Judged {
                product_id: "a".into(),
                helpful_votes: 3,
                day: 0,
            },
            Judged {
                product_id: "a".into(),
                helpful_votes: 1,
                day: 500,
            },
            Judged {
                product_id: "b".into(),
                helpful_votes: 0,
                day: 0,
            },
            Judged {
                product_id: "a".into(),
                helpful_votes: 0,
                day: 10,
            },
        ];
        assert_eq!(training_pairs(&items, &[0, 1, 2, 3]), vec![(0, 3)]);
        assert_eq!(fold_of("a", 5), fold_of("a", 5));
    }
}
