//! Incremental runs: an extract that read only the rows changed since the live commit must
//! not publish a dataset of only those rows. Each changed bucket's merge carries over the
//! bucket's cleaned rows of the commit the run builds on (fixed on the run's first attempt,
//! see [`reviews_lake::state::run_base`]), and applies the day's changes to them:
//!
//! - a review read again replaces its earlier version (`updated`);
//! - a review whose new version is rejected is no longer served (`removed_by_reject`): its
//!   old text must not stay live after an edit made it invalid;
//! - a review deleted at the source is removed (`deleted`, a tombstone);
//! - a review whose buyer asked for erasure is removed (`erased`).
//!
//! The carried files are checked against what their transform recorded, and their total
//! against the live snapshot: a missing or short file is an error, never a silent drop.

use std::collections::{BTreeSet, HashSet};

use reviews_domain::Review;
use reviews_domain::schema::batch_to_reviews;
use reviews_lake::manifest::Manifest;
use reviews_lake::parquet_io::{Dataset, read_parquet};
use reviews_lake::state::{ChangeCounts, RunBase, read_cleaned_record};
use reviews_lake::{Lake, LakeError, RunId, layout};
use serde::{Deserialize, Serialize};

use crate::error::StageError;

/// Why a review of the base snapshot left the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TombstoneReason {
    SourceDeleted,
    RejectedUpdate,
    ErasedBuyer,
}

/// One review removed from the dataset by a run (only the id: no buyer, no text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub review_id: String,
    pub reason: TombstoneReason,
}

/// `cleaned/run=<id>/_tombstones/bucket=<b>.json`: what the run removed from one bucket, for
/// audit.
pub fn tombstones_key(run: &RunId, bucket: u32) -> String {
    format!(
        "{}_tombstones/bucket={bucket:05}.json",
        layout::run_prefix(layout::CLEANED, run)
    )
}

/// Read the cleaned rows of one file, checked against the count its writer recorded.
pub async fn read_cleaned_file(
    lake: &dyn Lake,
    key: &str,
    expected: Option<u64>,
) -> Result<Vec<Review>, StageError> {
    let bytes = lake.get(key).await.map_err(|e| match e {
        LakeError::NotFound(_) => {
            StageError::Validation(format!("carried file {key} is missing: {e}"))
        }
        e => e.into(),
    })?;
    let rows = tokio::task::block_in_place(|| {
        let batches = read_parquet(Dataset::Cleaned, bytes).map_err(StageError::parquet(key))?;
        let mut rows = Vec::new();
        for b in &batches {
            rows.extend(batch_to_reviews(b).map_err(|e| StageError::Parquet {
                key: key.to_owned(),
                source: e.into(),
            })?);
        }
        Ok::<_, StageError>(rows)
    })?;
    if let Some(expected) = expected
        && rows.len() as u64 != expected
    {
        return Err(StageError::Validation(format!(
            "carried file {key} holds {} rows, its writer recorded {expected}",
            rows.len()
        )));
    }
    Ok(rows)
}

/// Every cleaned row of a base snapshot, checked: each file must be there with its row
/// count, and the total must be the snapshot's. Used once, to re-bucket a snapshot (from
/// before buckets, or with another bucket count); runs on a bucketed base read only the
/// buckets they change.
pub async fn load_snapshot_rows(
    lake: &dyn Lake,
    base: &RunBase,
    snapshot: &Manifest,
) -> Result<Vec<Review>, StageError> {
    let keys: Vec<(String, Option<u64>)> = if snapshot.buckets > 0 {
        snapshot
            .bucket_files
            .iter()
            .map(|f| (f.cleaned_key.clone(), Some(f.rows)))
            .collect()
    } else {
        let live_run = &snapshot.run_id;
        match read_cleaned_record(lake, live_run).await? {
            Some(record) => record
                .parts
                .into_iter()
                .map(|p| (p.key, Some(p.rows)))
                .collect(),
            // A snapshot from before cleaned records were kept: its listing, checked by the total.
            None => lake
                .list(&layout::run_prefix(layout::CLEANED, live_run))
                .await?
                .into_iter()
                .filter(|k| k.ends_with(".parquet"))
                .map(|k| (k, None))
                .collect(),
        }
    };
    let mut rows = Vec::new();
    for (key, expected) in keys {
        rows.extend(read_cleaned_file(lake, &key, expected).await?);
    }
    if rows.len() as u64 != base.rows {
        return Err(StageError::Validation(format!(
            "the cleaned rows of run {} are {} but its live snapshot has {}: refusing \
             to carry a short dataset over",
            snapshot.run_id,
            rows.len(),
            base.rows
        )));
    }
    Ok(rows)
}

/// Apply this run's changes to one bucket's base rows: `cleaned` (the bucket's valid rows
/// of this run) gets every base row that stays. Returns the counts (`rejected` stays 0) and
/// the tombstones.
pub fn merge(
    cleaned: &mut Vec<Review>,
    earlier: Vec<Review>,
    rejected_ids: &HashSet<&str>,
    deleted: &HashSet<&str>,
    erased: &BTreeSet<String>,
) -> (ChangeCounts, Vec<Tombstone>) {
    let fresh: HashSet<&str> = cleaned.iter().map(|r| r.review_id.as_str()).collect();
    let mut counts = ChangeCounts {
        previous: earlier.len() as u64,
        ..Default::default()
    };
    let mut tombstones = Vec::new();
    let mut kept = Vec::with_capacity(earlier.len());
    for row in earlier {
        let id = row.review_id.as_str();
        let reason = if fresh.contains(id) {
            counts.updated += 1;
            continue;
        } else if deleted.contains(id) {
            counts.deleted += 1;
            TombstoneReason::SourceDeleted
        } else if rejected_ids.contains(id) {
            counts.removed_by_reject += 1;
            TombstoneReason::RejectedUpdate
        } else if row.buyer_id.as_ref().is_some_and(|b| erased.contains(b)) {
            counts.erased += 1;
            TombstoneReason::ErasedBuyer
        } else {
            kept.push(row);
            continue;
        };
        tombstones.push(Tombstone {
            review_id: row.review_id,
            reason,
        });
    }
    counts.new = cleaned.len() as u64 - counts.updated;
    counts.carried = kept.len() as u64;
    cleaned.extend(kept);
    counts.total = cleaned.len() as u64;
    (counts, tombstones)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(id: &str, buyer: &str) -> Review {
        Review {
            review_id: id.into(),
            product_id: "P".into(),
            product_title: String::new(),
            product_category: String::new(),
            buyer_id: Some(buyer.into()),
            rating: 5,
            title: String::new(),
            text: "t".into(),
            helpful_votes: 0,
            total_votes: 0,
            verified_purchase: None,
            review_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            language: None,
            language_guess: "en".into(),
            word_count: 1,
            char_count: 1,
            run_id: "r".into(),
            processed_at: chrono::Utc::now(),
            product_mean_rating: 5.0,
            product_review_count: 1,
        }
    }

    #[test]
    fn every_base_row_is_counted_once() {
        let earlier = ["a", "b", "c", "d", "e", "f"]
            .map(|id| review(id, if id == "e" { "gone" } else { "x" }))
            .to_vec();
        let mut cleaned = vec![review("a", "x"), review("new", "x")];
        let rejected = HashSet::from(["c"]);
        let deleted = HashSet::from(["b", "not-in-base"]);
        let erased = BTreeSet::from(["gone".to_owned()]);
        let (counts, tombstones) = merge(&mut cleaned, earlier, &rejected, &deleted, &erased);
        assert_eq!(
            (counts.updated, counts.new, counts.deleted),
            (1, 1, 1),
            "{counts:?}"
        );
        assert_eq!(
            (counts.removed_by_reject, counts.erased, counts.carried),
            (1, 1, 2)
        );
        assert!(counts.balanced(), "{counts:?}");
        let mut ids: Vec<_> = cleaned.iter().map(|r| r.review_id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["a", "d", "f", "new"]);
        assert_eq!(tombstones.len(), 3);
    }
}
