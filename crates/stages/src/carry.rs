//! Incremental runs: an extract that read only the rows changed since the last run must not
//! publish a dataset of only those rows. Transform carries the cleaned rows of the previous
//! complete transform over (`TransformInput::merge_previous`): a review read again in this
//! run replaces its earlier version, every other earlier review is kept, and buyers who asked
//! for erasure are dropped from both.
//!
//! Which run is the base is fixed on a run's first attempt (`state/runs/run=<id>/base.json`),
//! so a re-run carries the same rows and writes the same bytes. The base is the run named by
//! `state/cleaned_head.json`, which a transform moves to itself once its cleaned/ is complete
//! (and only forward in run start time): a run whose publish failed is still carried, so its
//! rows are not lost when the next run extracts from the moved watermark.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use reviews_domain::Review;
use reviews_domain::schema::batch_to_reviews;
use reviews_lake::parquet_io::{Dataset, read_parquet};
use reviews_lake::{Lake, LakeError, RunId, layout};
use serde::{Deserialize, Serialize};

use crate::error::StageError;

/// The last run whose cleaned/ is complete.
pub const CLEANED_HEAD_KEY: &str = "state/cleaned_head.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    run_id: RunId,
    started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BaseRecord {
    base: Option<RunId>,
}

fn base_record_key(run: &RunId) -> String {
    format!("state/runs/run={run}/base.json")
}

async fn get_json<T: for<'de> Deserialize<'de>>(
    lake: &dyn Lake,
    key: &str,
) -> Result<Option<T>, StageError> {
    match lake.get(key).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StageError::Validation(format!("{key}: {e}"))),
        Err(LakeError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The run whose cleaned rows `run` carries over, decided on the run's first attempt.
pub async fn base_run(lake: &dyn Lake, run: &RunId) -> Result<Option<RunId>, StageError> {
    let key = base_record_key(run);
    if let Some(rec) = get_json::<BaseRecord>(lake, &key).await? {
        return Ok(rec.base);
    }
    let base = get_json::<Head>(lake, CLEANED_HEAD_KEY)
        .await?
        .map(|h| h.run_id)
        .filter(|b| b != run);
    let rec = BaseRecord { base: base.clone() };
    lake.put(&key, serde_json::to_vec(&rec).expect("serialises").into())
        .await?;
    Ok(base)
}

/// Every cleaned row of `base`.
pub async fn load_rows(lake: &dyn Lake, base: &RunId) -> Result<Vec<Review>, StageError> {
    let mut keys: Vec<String> = lake
        .list(&layout::run_prefix(layout::CLEANED, base))
        .await?
        .into_iter()
        .filter(|k| k.ends_with(".parquet"))
        .collect();
    keys.sort();
    let mut rows = Vec::new();
    for key in keys {
        let bytes = lake.get(&key).await?;
        let batches = read_parquet(Dataset::Cleaned, bytes).map_err(StageError::parquet(&key))?;
        for b in &batches {
            rows.extend(batch_to_reviews(b).map_err(|e| StageError::Parquet {
                key: key.clone(),
                source: e.into(),
            })?);
        }
    }
    Ok(rows)
}

/// Add the earlier rows that this run did not read again and whose buyer is not erased.
/// Returns how many were carried.
pub fn merge(cleaned: &mut Vec<Review>, earlier: Vec<Review>, erased: &HashSet<String>) -> u64 {
    let fresh: HashSet<String> = cleaned.iter().map(|r| r.review_id.clone()).collect();
    let before = cleaned.len();
    cleaned.extend(earlier.into_iter().filter(|r| {
        !fresh.contains(&r.review_id) && !r.buyer_id.as_ref().is_some_and(|b| erased.contains(b))
    }));
    (cleaned.len() - before) as u64
}

/// Make `run` the base of later runs, unless a run that started later already is.
pub async fn advance_head(
    lake: &dyn Lake,
    run: &RunId,
    started_at: DateTime<Utc>,
) -> Result<(), StageError> {
    if let Some(head) = get_json::<Head>(lake, CLEANED_HEAD_KEY).await?
        && head.started_at > started_at
    {
        return Ok(());
    }
    let head = Head {
        run_id: run.clone(),
        started_at,
    };
    lake.put(
        CLEANED_HEAD_KEY,
        serde_json::to_vec(&head).expect("serialises").into(),
    )
    .await?;
    Ok(())
}
