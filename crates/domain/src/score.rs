//! The relevance score (the "pondération"): several signals, each in [0, 1], weighed into one
//! number in [0, 1]. Weights come from configuration; a signal that is absent (no model, no
//! votes yet) drops out and the others are re-weighed, so scores stay comparable in [0, 1].

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::classify::TextSignals;
use crate::record::Review;

/// Weights of the signals. Only ratios matter; they need not sum to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreWeights {
    /// Model-based: how much concrete product experience the text carries.
    pub informativeness: f32,
    /// Length, saturating: a detailed review beats a one-liner, a novel does not beat an essay.
    pub length: f32,
    /// Helpful votes, as the Wilson lower bound of the helpful share.
    pub helpful: f32,
    /// Verified purchase.
    pub verified: f32,
    /// Distance of the rating from the product's mean rating: on real votes, reviews that
    /// depart from the consensus are found more helpful than those that echo it.
    pub deviation: f32,
    /// Recency, halving every `recency_half_life_days`.
    pub recency: f32,
    /// The learned ranking of helpfulness (a ranker file from `reviews train`), as a share in
    /// [0, 1]; absent, and so dropping out, when no ranker is configured.
    pub learned: f32,
    /// Word count at which the length signal reaches 1.
    pub length_saturation_words: f32,
    pub recency_half_life_days: f32,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        Self {
            informativeness: 0.05,
            length: 0.30,
            helpful: 0.20,
            verified: 0.05,
            deviation: 0.10,
            recency: 0.05,
            learned: 0.60,
            length_saturation_words: 1000.0,
            recency_half_life_days: 730.0,
        }
    }
}

impl ScoreWeights {
    /// Reject weights that cannot give a meaningful score.
    pub fn validate(&self) -> Result<(), String> {
        let w = [
            self.informativeness,
            self.length,
            self.helpful,
            self.verified,
            self.deviation,
            self.recency,
            self.learned,
        ];
        if w.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err("weights must be finite and >= 0".into());
        }
        if w.iter().sum::<f32>() - self.learned <= 0.0 {
            return Err(
                "at least one weight besides `learned` must be > 0 (without a ranker file the \
                 learned signal is absent)"
                    .into(),
            );
        }
        if !(self.length_saturation_words >= 1.0 && self.recency_half_life_days >= 1.0) {
            return Err("length_saturation_words and recency_half_life_days must be >= 1".into());
        }
        Ok(())
    }
}

/// The signals of one review, each in [0, 1]; `None` when not available.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Signals {
    pub informativeness: Option<f32>,
    pub length: f32,
    pub helpful: Option<f32>,
    pub verified: f32,
    pub deviation: f32,
    pub recency: Option<f32>,
    /// The learned ranking's score as a share in [0, 1] (the score stage sets it when a ranker
    /// file is configured).
    #[serde(default)]
    pub learned: Option<f32>,
}

/// Compute the signals of a review as of `reference_date` (the run date).
/// `use_votes` and `use_age` let evaluation score a review as if it were brand new.
pub fn signals(
    review: &Review,
    nlp: Option<&TextSignals>,
    weights: &ScoreWeights,
    reference_date: NaiveDate,
    use_votes: bool,
    use_age: bool,
) -> Signals {
    let words = review.word_count as f32;
    let length = ((1.0 + words).ln() / (1.0 + weights.length_saturation_words).ln()).min(1.0);
    let helpful = (use_votes && review.total_votes > 0)
        .then(|| wilson_lower_bound(review.helpful_votes, review.total_votes));
    let verified = match review.verified_purchase {
        Some(true) => 1.0,
        None => 0.5,
        Some(false) => 0.0,
    };
    let deviation = (f32::from(review.rating) - review.product_mean_rating).abs() / 4.0;
    let recency = use_age.then(|| {
        let age = (reference_date - review.review_date).num_days().max(0) as f32;
        0.5f32.powf(age / weights.recency_half_life_days)
    });
    Signals {
        informativeness: nlp.map(|s| s.informativeness.clamp(0.0, 1.0)),
        length,
        helpful,
        verified,
        deviation: deviation.clamp(0.0, 1.0),
        recency,
        learned: None,
    }
}

/// Weigh the signals into a relevance in [0, 1]. Absent signals drop out of both sums.
pub fn relevance(s: &Signals, w: &ScoreWeights) -> f32 {
    let parts = [
        (s.informativeness, w.informativeness),
        (Some(s.length), w.length),
        (s.helpful, w.helpful),
        (Some(s.verified), w.verified),
        (Some(s.deviation), w.deviation),
        (s.recency, w.recency),
        (s.learned, w.learned),
    ];
    let (num, den) = parts
        .iter()
        .filter_map(|(v, w)| v.map(|v| (v * w, *w)))
        .fold((0.0f32, 0.0f32), |(n, d), (x, w)| (n + x, d + w));
    if den > 0.0 {
        (num / den).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Lower bound of the Wilson score interval (95%) for `positive` successes in `total` trials:
/// 3 of 3 helpful votes is weaker evidence than 60 of 70.
pub fn wilson_lower_bound(positive: u32, total: u32) -> f32 {
    if total == 0 {
        return 0.0;
    }
    let n = f64::from(total);
    let p = f64::from(positive.min(total)) / n;
    let z = 1.959_964f64;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let margin = z * ((p * (1.0 - p) + z2 / (4.0 * n)) / n).sqrt();
    (((centre - margin) / (1.0 + z2 / n)).max(0.0)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn review(words: usize, rating: u8, mean: f32, helpful: u32, total: u32) -> Review {
        Review {
            review_id: "R".into(),
            product_id: "P".into(),
            product_title: String::new(),
            product_category: String::new(),
            buyer_id: None,
            rating,
            title: String::new(),
            text: "w ".repeat(words),
            helpful_votes: helpful,
            total_votes: total,
            verified_purchase: Some(true),
            review_date: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            language: None,
            language_guess: "en".into(),
            word_count: words as u32,
            char_count: 0,
            run_id: "t".into(),
            processed_at: Utc::now(),
            product_mean_rating: mean,
            product_review_count: 3,
        }
    }

    #[test]
    fn wilson_prefers_evidence() {
        assert_eq!(wilson_lower_bound(0, 0), 0.0);
        assert!(wilson_lower_bound(60, 70) > wilson_lower_bound(3, 3));
        assert!(wilson_lower_bound(3, 3) > wilson_lower_bound(1, 3));
        let w = wilson_lower_bound(5, 10);
        assert!((0.0..0.5).contains(&w));
    }

    #[test]
    fn relevance_is_bounded_and_ordered() {
        let w = ScoreWeights::default();
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let long = review(200, 4, 4.0, 8, 9);
        let short = review(3, 1, 4.0, 0, 0);
        let sl = signals(&long, None, &w, today, true, true);
        let ss = signals(&short, None, &w, today, true, true);
        let (rl, rs) = (relevance(&sl, &w), relevance(&ss, &w));
        assert!((0.0..=1.0).contains(&rl) && (0.0..=1.0).contains(&rs));
        assert!(rl > rs, "{rl} vs {rs}");
        assert_eq!(ss.helpful, None, "no votes: the signal is absent, not zero");
    }

    #[test]
    fn votes_and_age_can_be_left_out() {
        let w = ScoreWeights::default();
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let r = review(50, 5, 4.0, 10, 10);
        let s = signals(&r, None, &w, today, false, false);
        assert_eq!(s.helpful, None);
        assert_eq!(s.recency, None);
    }

    #[test]
    fn weights_validate() {
        assert!(ScoreWeights::default().validate().is_ok());
        let bad = ScoreWeights {
            length: -1.0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let zero = ScoreWeights {
            informativeness: 0.0,
            length: 0.0,
            helpful: 0.0,
            verified: 0.0,
            deviation: 0.0,
            recency: 0.0,
            ..Default::default()
        };
        // The learned signal alone does not do: without a ranker, it is absent.
        assert!(zero.learned > 0.0);
        assert!(zero.validate().is_err());
    }
}
