//! Scoring: classify each review into topics, weigh the signals into one relevance, in
//! curated order (product_id, relevance desc). [`crate::bucket`] runs it per bucket.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use reviews_domain::schema::{CuratedReview, TopicScore};
use reviews_domain::score::{ScoreWeights, relevance, signals};
use reviews_domain::topics::OFF_TOPIC;
use reviews_domain::{ClassifyError, Review, TextSignals, TopicClassifier};

use crate::progress::Progress;
use crate::rank::{LinearRanker, RankerError, RankerFile, features, learned_signal, reasons};

/// Footer key of the curated files that lists the topic labels (JSON).
pub const TOPICS_METADATA_KEY: &str = "reviews.topics";
/// At most this many topics are kept per review.
const MAX_TOPICS: usize = 3;
/// Topics scoring below this are not kept (the best one always is).
const MIN_TOPIC_SCORE: f32 = 0.15;
/// Footer key of the curated files that names the classifier (see [`Scorer::classifier_id`]).
pub const CLASSIFIER_METADATA_KEY: &str = "reviews.classifier";

/// Everything scoring needs, built once per process: the classifier (a model session is
/// expensive) and the weights.
pub struct Scorer {
    pub classifier: Arc<dyn TopicClassifier>,
    pub weights: ScoreWeights,
    /// Texts per classifier call.
    pub batch_size: usize,
    /// Evaluation scores reviews as if brand new: no votes and no age.
    pub use_votes: bool,
    pub use_age: bool,
    /// Which classifier this is (written in each curated file's footer): topic scores are
    /// reused from an earlier file only when it was written by the same classifier.
    pub classifier_id: String,
    /// The learned ranking (a ranker file), when configured: its score is the `learned` signal
    /// and its largest contributions the reasons.
    pub ranker: Option<Arc<LinearRanker>>,
}

/// What an earlier run's classifier said about a review's text, kept in its curated row.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlierTopics {
    pub text: String,
    pub topics: Vec<TopicScore>,
    pub informativeness: Option<f32>,
}

impl Scorer {
    pub fn new(classifier: Arc<dyn TopicClassifier>, weights: ScoreWeights) -> Self {
        Self {
            classifier,
            weights,
            batch_size: 256,
            use_votes: true,
            use_age: true,
            classifier_id: String::new(),
            ranker: None,
        }
    }

    /// Name the classifier (see [`Scorer::classifier_id`]).
    pub fn with_classifier_id(mut self, id: impl Into<String>) -> Self {
        self.classifier_id = id.into();
        self
    }

    /// Score with a trained ranker too. Refused when it was trained with another classifier
    /// than this scorer's (its informativeness feature would mean something else).
    pub fn with_ranker(mut self, file: &RankerFile, path: &str) -> Result<Self, RankerError> {
        if file.training.classifier != self.classifier_id {
            return Err(RankerError::Classifier {
                path: path.to_owned(),
                trained: file.training.classifier.clone(),
                scoring: self.classifier_id.clone(),
            });
        }
        self.ranker = Some(Arc::new(file.model()));
        Ok(self)
    }

    /// Score reviews (any order in, curated order out).
    pub fn score(
        &self,
        reviews: &[Review],
        reference: NaiveDate,
        scored_at: DateTime<Utc>,
        progress: &dyn Progress,
    ) -> Result<Vec<CuratedReview>, ClassifyError> {
        Ok(self
            .score_reusing(
                reviews.to_vec(),
                &HashMap::new(),
                reference,
                scored_at,
                progress,
            )?
            .rows)
    }

    /// Score reviews, classifying only those whose text is not in `earlier` (by review id,
    /// with the same text): the model is the expensive part, and an unchanged text has the
    /// same topics. Every signal that depends on the day or the product is computed again.
    /// Takes the rows by value: their strings move into the curated rows, not copied.
    pub fn score_reusing(
        &self,
        reviews: Vec<Review>,
        earlier: &HashMap<String, EarlierTopics>,
        reference: NaiveDate,
        scored_at: DateTime<Utc>,
        progress: &dyn Progress,
    ) -> Result<Scored, ClassifyError> {
        let topics = self.classifier.topics();
        let known = |r: &Review| earlier.get(&r.review_id).filter(|e| e.text == r.text);
        let to_encode: Vec<usize> = (0..reviews.len())
            .filter(|&i| known(&reviews[i]).is_none())
            .collect();
        let encoded = to_encode.len() as u64;
        // What the classifier said, by row position.
        let mut fresh: Vec<Option<(Vec<TopicScore>, Option<f32>)>> = Vec::new();
        fresh.resize_with(reviews.len(), || None);
        for chunk in to_encode.chunks(self.batch_size.max(1)) {
            let texts: Vec<&str> = chunk.iter().map(|&i| reviews[i].text.as_str()).collect();
            let nlp = self.classifier.classify(&texts)?;
            if nlp.len() != chunk.len() {
                return Err(ClassifyError::Inference(format!(
                    "classifier returned {} results for {} texts",
                    nlp.len(),
                    chunk.len()
                )));
            }
            for (&i, text_signals) in chunk.iter().zip(nlp) {
                fresh[i] = Some((
                    top_topics(topics, &text_signals.topic_scores),
                    Some(text_signals.informativeness),
                ));
            }
            progress.advance(chunk.len() as u64);
        }
        drop(to_encode);
        let total = reviews.len() as u64;
        let mut out = Vec::with_capacity(reviews.len());
        for (review, fresh) in reviews.into_iter().zip(fresh) {
            let (review_topics, informativeness) = match fresh {
                Some(classified) => classified,
                None => {
                    let e = known(&review).expect("a text not classified is known");
                    (e.topics.clone(), e.informativeness)
                }
            };
            let text_signals = informativeness.map(|informativeness| TextSignals {
                topic_scores: Vec::new(),
                informativeness,
            });
            let mut s = signals(
                &review,
                text_signals.as_ref(),
                &self.weights,
                reference,
                self.use_votes,
                self.use_age,
            );
            let contributions = self.ranker.as_ref().map(|model| {
                let parts = model.contributions(&features(&review, informativeness));
                s.learned = Some(learned_signal(parts.iter().sum()));
                parts
            });
            let reasons = reasons(contributions.as_deref(), &s, &self.weights, &review_topics);
            let language = match review.language {
                Some(declared) => declared,
                None => review.language_guess,
            };
            out.push(CuratedReview {
                product_id: review.product_id,
                relevance: relevance(&s, &self.weights),
                review_id: review.review_id,
                product_title: review.product_title,
                product_category: review.product_category,
                rating: review.rating,
                title: review.title,
                text: review.text,
                helpful_votes: review.helpful_votes,
                total_votes: review.total_votes,
                verified_purchase: review.verified_purchase,
                review_date: review.review_date,
                language,
                word_count: review.word_count,
                topics: review_topics,
                reasons,
                signals: s,
                run_id: review.run_id,
                scored_at,
            });
        }
        progress.advance(total - encoded);
        Ok(Scored {
            encoded,
            reused: total - encoded,
            rows: sorted_by(out, CuratedReview::sort_key_cmp),
        })
    }
}

/// `rows` in the order of `cmp`, each row moved once: the comparisons sort positions, not the
/// (large) rows themselves.
pub(crate) fn sorted_by<T>(rows: Vec<T>, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> Vec<T> {
    let mut order: Vec<u32> =
        (0..u32::try_from(rows.len()).expect("fewer than 2^32 rows")).collect();
    // Unstable (pattern-defeating quicksort, faster here than the stable merge sort) with
    // the position as the last key: the order a stable sort gives.
    order.sort_unstable_by(|&a, &b| cmp(&rows[a as usize], &rows[b as usize]).then(a.cmp(&b)));
    let mut slots: Vec<Option<T>> = rows.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i as usize].take().expect("each position once"))
        .collect()
}

/// Curated rows, and how many texts the classifier saw.
#[derive(Debug, Clone)]
pub struct Scored {
    pub rows: Vec<CuratedReview>,
    pub encoded: u64,
    pub reused: u64,
}

/// The best topics of a review: up to three above the threshold, best first; off-topic only
/// when nothing else is there.
fn top_topics(topics: &[reviews_domain::Topic], scores: &[f32]) -> Vec<TopicScore> {
    let mut idx: Vec<usize> = (0..scores.len().min(topics.len())).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut out: Vec<TopicScore> = Vec::new();
    for (rank, i) in idx.into_iter().enumerate() {
        let (id, score) = (&topics[i].id, scores[i]);
        if rank > 0 && (score < MIN_TOPIC_SCORE || id == OFF_TOPIC) {
            continue;
        }
        if rank == 0 || out.len() < MAX_TOPICS {
            out.push(TopicScore {
                id: id.clone(),
                score: (score * 1000.0).round() / 1000.0,
            });
        }
        if out.len() == MAX_TOPICS {
            break;
        }
    }
    if out.len() > 1 && out[0].id == OFF_TOPIC {
        out.truncate(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reviews_domain::topics::default_topics;

    /// Rows with equal keys keep their input order, as a stable sort keeps them.
    #[test]
    fn sorted_by_keeps_ties_in_input_order() {
        let rows: Vec<(u32, usize)> = (0..5_000).map(|i| ((i * 7919 % 13) as u32, i)).collect();
        let mut stable = rows.clone();
        stable.sort_by_key(|r| r.0);
        assert_eq!(sorted_by(rows, |a, b| a.0.cmp(&b.0)), stable);
    }

    #[test]
    fn top_topics_rules() {
        let t = default_topics();
        // product_quality .5, value .3, delivery .1 (below threshold), off_topic .1
        let s = [0.5, 0.3, 0.1, 0.0, 0.0, 0.0, 0.1];
        let got = top_topics(&t, &s);
        assert_eq!(
            got.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            ["product_quality", "value_for_money"]
        );
        let off = [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9];
        assert_eq!(top_topics(&t, &off).len(), 1);
        assert_eq!(top_topics(&t, &off)[0].id, "off_topic");
    }
}
