//! Score + load curated: classify each review into topics, weigh the signals into one
//! relevance, and write the shard to curated/ sorted by (product_id, relevance desc).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use reviews_domain::schema::{CuratedReview, TopicScore, batch_to_reviews, curated_to_batch};
use reviews_domain::score::{ScoreWeights, relevance, signals};
use reviews_domain::topics::OFF_TOPIC;
use reviews_domain::{ClassifyError, Review, TopicClassifier};
use reviews_lake::parquet_io::{Dataset, ParquetBuffer, read_parquet};
use reviews_lake::{Lake, RunId, layout};
use serde::{Deserialize, Serialize};

use crate::error::StageError;
use crate::extract::run_started_at;
use crate::progress::Progress;

/// Footer key of the curated files that lists the topic labels (JSON).
pub const TOPICS_METADATA_KEY: &str = "reviews.topics";
/// At most this many topics are kept per review.
const MAX_TOPICS: usize = 3;
/// Topics scoring below this are not kept (the best one always is).
const MIN_TOPIC_SCORE: f32 = 0.15;
/// Rows per record batch inside a curated file.
const ENCODE_ROWS: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreInput {
    pub run_id: RunId,
    pub cleaned_key: String,
    pub index: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreOutput {
    pub run_id: RunId,
    pub curated_key: String,
    pub index: usize,
    pub rows: u64,
}

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
}

impl Scorer {
    pub fn new(classifier: Arc<dyn TopicClassifier>, weights: ScoreWeights) -> Self {
        Self {
            classifier,
            weights,
            batch_size: 256,
            use_votes: true,
            use_age: true,
        }
    }

    /// Score reviews (any order in, curated order out).
    pub fn score(
        &self,
        reviews: &[Review],
        reference: NaiveDate,
        scored_at: DateTime<Utc>,
        progress: &dyn Progress,
    ) -> Result<Vec<CuratedReview>, ClassifyError> {
        let topics = self.classifier.topics();
        let mut out = Vec::with_capacity(reviews.len());
        for chunk in reviews.chunks(self.batch_size.max(1)) {
            let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
            let nlp = self.classifier.classify(&texts)?;
            if nlp.len() != chunk.len() {
                return Err(ClassifyError::Inference(format!(
                    "classifier returned {} results for {} texts",
                    nlp.len(),
                    chunk.len()
                )));
            }
            for (review, text_signals) in chunk.iter().zip(&nlp) {
                let s = signals(
                    review,
                    Some(text_signals),
                    &self.weights,
                    reference,
                    self.use_votes,
                    self.use_age,
                );
                out.push(CuratedReview {
                    product_id: review.product_id.clone(),
                    relevance: relevance(&s, &self.weights),
                    review_id: review.review_id.clone(),
                    product_title: review.product_title.clone(),
                    product_category: review.product_category.clone(),
                    rating: review.rating,
                    title: review.title.clone(),
                    text: review.text.clone(),
                    helpful_votes: review.helpful_votes,
                    total_votes: review.total_votes,
                    verified_purchase: review.verified_purchase,
                    review_date: review.review_date,
                    language: review.effective_language().to_owned(),
                    word_count: review.word_count,
                    topics: top_topics(topics, &text_signals.topic_scores),
                    signals: s,
                    run_id: review.run_id.clone(),
                    scored_at,
                });
            }
            progress.advance(chunk.len() as u64);
        }
        out.sort_by(CuratedReview::sort_key_cmp);
        Ok(out)
    }
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

/// Run the score stage on one cleaned shard.
pub async fn score_shard(
    lake: Arc<dyn Lake>,
    scorer: &Scorer,
    input: &ScoreInput,
    progress: &dyn Progress,
) -> Result<ScoreOutput, StageError> {
    let run = &input.run_id;
    if layout::run_of_key(&input.cleaned_key).as_ref() != Some(run) {
        return Err(StageError::Input(format!(
            "cleaned_key {:?} is not an object of run {run}",
            input.cleaned_key
        )));
    }
    let started_at = run_started_at(lake.as_ref(), run, Utc::now()).await?;
    let bytes = lake.get(&input.cleaned_key).await?;
    let key = layout::curated_key(run, input.index);
    let cleaned_key = input.cleaned_key.clone();
    let (encoded, rows) = tokio::task::block_in_place(|| {
        let batches =
            read_parquet(Dataset::Cleaned, bytes).map_err(StageError::parquet(&cleaned_key))?;
        let mut reviews = Vec::new();
        for b in &batches {
            reviews.extend(batch_to_reviews(b).map_err(|e| StageError::Parquet {
                key: cleaned_key.clone(),
                source: e.into(),
            })?);
        }
        progress.start("score", Some(reviews.len() as u64));
        let curated = scorer.score(&reviews, started_at.date_naive(), started_at, progress)?;
        progress.finish();
        drop(reviews);
        let mut buf = ParquetBuffer::new(Dataset::Curated).map_err(StageError::parquet(&key))?;
        for chunk in curated.chunks(ENCODE_ROWS) {
            let batch = curated_to_batch(chunk).map_err(|e| StageError::Internal(e.to_string()))?;
            buf.write(&batch).map_err(StageError::parquet(&key))?;
        }
        let topics = serde_json::to_string(scorer.classifier.topics()).expect("serialises");
        let bytes = buf
            .finish(&[
                (TOPICS_METADATA_KEY, topics),
                ("reviews.run_id", run.to_string()),
            ])
            .map_err(StageError::parquet(&key))?;
        Ok::<_, StageError>((bytes, curated.len() as u64))
    })?;
    lake.put(&key, encoded).await?;
    tracing::info!(run_id = %run, shard = input.index, rows, key = %key, "score done");
    Ok(ScoreOutput {
        run_id: run.clone(),
        curated_key: key,
        index: input.index,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reviews_domain::topics::default_topics;

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
