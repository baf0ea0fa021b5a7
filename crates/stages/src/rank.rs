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

use reviews_domain::Review;

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
    pub fn score(&self, x: &[f64]) -> f64 {
        x.iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .zip(&self.weights)
            .map(|(((v, m), s), w)| (v - m) / s * w)
            .sum()
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
        let model = LinearRanker::train(&train_x, &pairs, 0.01, 300);
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
