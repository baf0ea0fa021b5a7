//! Transform + load cleaned: clean raw rows, write valid ones to cleaned/ as product-sorted
//! shards and rejected ones to rejects/. Every input row lands in exactly one of the two.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use chrono::Utc;
use reviews_domain::clean::fill_product_stats;
use reviews_domain::schema::{batch_to_raw, reviews_to_batch};
use reviews_domain::{Cleaner, RawReview, Rejected, Review};
use reviews_lake::parquet_io::{Dataset, ParquetBuffer, read_parquet};
use reviews_lake::state::{self, ChangeCounts, CleanedPart, CleanedRecord};
use reviews_lake::{Lake, RunId, layout};
use serde::{Deserialize, Serialize};

use crate::carry;
use crate::error::StageError;
use crate::extract::read_deletions;
use crate::progress::Progress;
use crate::rejects;

/// Default target rows per cleaned shard (one scoring task each).
pub const DEFAULT_SHARD_ROWS: usize = 100_000;
/// Rows per record batch inside a cleaned file.
const ENCODE_ROWS: usize = 32 * 1024;
/// Buyers who asked for erasure (a JSON list of buyer ids), read by every transform.
pub const ERASED_BUYERS_KEY: &str = state::ERASED_BUYERS;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformInput {
    pub run_id: RunId,
    /// The run's raw/ parts (what extract returned).
    pub raw_keys: Vec<String>,
    /// Target rows per shard; shards are cut at product boundaries, so a shard can be larger.
    #[serde(default)]
    pub shard_rows: Option<usize>,
    /// The raw rows are only what changed since an earlier run (an incremental extract):
    /// carry the earlier cleaned rows over (see [`crate::carry`]).
    #[serde(default)]
    pub merge_previous: bool,
    /// The review ids deleted at the source in this run's range (what extract returned).
    #[serde(default)]
    pub deletions_key: Option<String>,
}

/// One cleaned shard: the unit of work of one scoring task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    pub run_id: RunId,
    pub cleaned_key: String,
    pub index: usize,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformOutput {
    pub run_id: RunId,
    pub rows_in: u64,
    pub cleaned: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub rejects_key: String,
    /// Earlier cleaned rows carried over (`merge_previous`), not counted in `cleaned`.
    pub carried: u64,
    /// Rows in this run's cleaned/ shards: `cleaned + carried`.
    pub total_rows: u64,
    pub products: u64,
    pub shards: Vec<Shard>,
    /// How the dataset changed against the commit the run builds on.
    pub changes: ChangeCounts,
}

/// Run the transform stage.
pub async fn transform(
    lake: Arc<dyn Lake>,
    input: &TransformInput,
    progress: &dyn Progress,
) -> Result<TransformOutput, StageError> {
    let run = &input.run_id;
    let shard_rows = input.shard_rows.unwrap_or(DEFAULT_SHARD_ROWS).max(1);
    if let Some(key) = input
        .raw_keys
        .iter()
        .find(|k| layout::run_of_key(k).as_ref() != Some(run) || !k.starts_with("raw/"))
    {
        return Err(StageError::Input(format!(
            "raw key {key:?} is not a raw/ object of run {run}"
        )));
    }
    if input.raw_keys.is_empty() {
        return Err(StageError::Input(format!("run {run}: no raw_keys given")));
    }
    let base = state::run_base(lake.as_ref(), run, Utc::now()).await?;
    let started_at = base.started_at;
    let erased = load_erased_buyers(lake.as_ref()).await?;
    let deleted: BTreeSet<String> = match &input.deletions_key {
        Some(key) if layout::run_of_key(key).as_ref() != Some(run) || !key.starts_with("raw/") => {
            return Err(StageError::Input(format!(
                "deletions key {key:?} is not a raw/ object of run {run}"
            )));
        }
        Some(key) => read_deletions(lake.as_ref(), key)
            .await?
            .into_iter()
            .collect(),
        None => BTreeSet::new(),
    };
    let mut raw_parts = Vec::with_capacity(input.raw_keys.len());
    for key in &input.raw_keys {
        raw_parts.push((key.clone(), lake.get(key).await?));
    }
    let earlier = match input.merge_previous {
        true if base.live_run.as_ref() != Some(run) => {
            carry::load_base_rows(lake.as_ref(), &base).await?
        }
        _ => Vec::new(),
    };

    let run_str = run.to_string();
    let (cleaned, rejected, rows_in) = tokio::task::block_in_place(|| {
        let mut parts = Vec::with_capacity(raw_parts.len());
        for (key, bytes) in raw_parts {
            let batches = read_parquet(Dataset::Raw, bytes).map_err(StageError::parquet(&key))?;
            parts.push((key, batches));
        }
        let total: usize = parts
            .iter()
            .flat_map(|(_, batches)| batches.iter().map(|b| b.num_rows()))
            .sum();
        progress.start("transform", Some(total as u64));
        // One cleaner for every part: a duplicate review id across parts is still a duplicate.
        let mut cleaner = Cleaner::new(run_str, started_at).with_erased_buyers(erased.clone());
        let mut cleaned = Vec::with_capacity(total);
        let mut rejected = Vec::new();
        for (key, batches) in &parts {
            for batch in batches {
                let rows = batch_to_raw(batch).map_err(|e| StageError::Parquet {
                    key: key.clone(),
                    source: e.into(),
                })?;
                clean_batch(&mut cleaner, &rows, &mut cleaned, &mut rejected);
                progress.advance(rows.len() as u64);
            }
        }
        progress.finish();
        Ok::<_, StageError>((cleaned, rejected, total as u64))
    })?;
    let (cleaned_n, rejected_n) = (cleaned.len() as u64, rejected.len() as u64);
    if cleaned_n + rejected_n != rows_in {
        return Err(StageError::Internal(format!(
            "row accounting broken: {rows_in} in, {cleaned_n} cleaned + {rejected_n} rejected"
        )));
    }

    let (parts, products, changes, tombstones) = tokio::task::block_in_place(|| {
        let mut cleaned = cleaned;
        let (mut changes, tombstones) =
            carry::merge(&mut cleaned, earlier, &rejected, &deleted, &erased);
        changes.rejected = rejected_n;
        changes.total = cleaned.len() as u64;
        fill_product_stats(&mut cleaned);
        cleaned.sort_unstable_by(|a, b| {
            a.product_id
                .cmp(&b.product_id)
                .then_with(|| a.review_id.cmp(&b.review_id))
        });
        let products = count_products(&cleaned);
        let shards = split_at_products(&cleaned, shard_rows);
        progress.start("write cleaned", Some(cleaned.len() as u64));
        let parts = encode_shards(run, &cleaned, &shards, progress)?;
        progress.finish();
        Ok::<_, StageError>((parts, products, changes, tombstones))
    })?;
    if !changes.balanced() {
        return Err(StageError::Internal(format!(
            "change accounting broken: {changes:?}"
        )));
    }

    let mut shards = Vec::with_capacity(parts.len());
    for (index, (key, bytes, rows)) in parts.into_iter().enumerate() {
        lake.put(&key, bytes).await?;
        shards.push(Shard {
            run_id: run.clone(),
            cleaned_key: key,
            index,
            rows,
        });
    }
    let rejects_key = layout::rejects_key(run);
    let csv = rejects::to_csv(&rejected).map_err(|e| StageError::Internal(e.to_string()))?;
    lake.put(&rejects_key, csv.into()).await?;
    remove_stale_parts(lake.as_ref(), run, shards.len()).await?;
    lake.put(
        &carry::tombstones_key(run),
        serde_json::to_vec(&tombstones).expect("serialises").into(),
    )
    .await?;
    // Written last: a transform that died before this point is not a carry-over base.
    state::write_cleaned_record(
        lake.as_ref(),
        &CleanedRecord {
            run_id: run.clone(),
            base_sequence: base.sequence,
            parts: shards
                .iter()
                .map(|s| CleanedPart {
                    key: s.cleaned_key.clone(),
                    rows: s.rows,
                })
                .collect(),
            counts: changes.clone(),
            erased_buyers: erased.len() as u64,
        },
    )
    .await?;
    let carried = changes.carried;

    let out = TransformOutput {
        run_id: run.clone(),
        rows_in,
        cleaned: cleaned_n,
        rejected: rejected_n,
        rejected_by_reason: rejects::count_by_reason(&rejected),
        rejects_key,
        carried,
        total_rows: cleaned_n + carried,
        products,
        shards,
        changes,
    };
    tracing::info!(
        run_id = %run, rows_in, cleaned = cleaned_n, rejected = rejected_n, carried,
        new = out.changes.new, updated = out.changes.updated, deleted = out.changes.deleted,
        removed_by_reject = out.changes.removed_by_reject, erased = out.changes.erased,
        shards = out.shards.len(), "transform done"
    );
    Ok(out)
}

/// Check a batch on all cores, then admit in input order (duplicates: first valid wins).
fn clean_batch(
    cleaner: &mut Cleaner,
    rows: &[RawReview],
    cleaned: &mut Vec<Review>,
    rejected: &mut Vec<Rejected>,
) {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = rows.len().div_ceil(workers).max(1);
    let checked: Vec<Result<Review, Box<Rejected>>> = std::thread::scope(|s| {
        let shared: &Cleaner = cleaner;
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|r| shared.check(r)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("cleaning thread panicked"))
            .collect()
    });
    for (raw, result) in rows.iter().zip(checked) {
        match result.map(|review| cleaner.admit(review)) {
            Ok(Ok(review)) => cleaned.push(review),
            Ok(Err((reason, detail))) => rejected.push(Rejected {
                raw: raw.clone(),
                reason,
                detail,
            }),
            Err(rej) => rejected.push(*rej),
        }
    }
}

fn count_products(sorted: &[Review]) -> u64 {
    sorted
        .windows(2)
        .filter(|w| w[0].product_id != w[1].product_id)
        .count() as u64
        + u64::from(!sorted.is_empty())
}

/// Cut product-sorted rows into ranges of about `target` rows, never splitting a product.
pub fn split_at_products(sorted: &[Review], target: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < sorted.len() {
        let mut end = (start + target).min(sorted.len());
        while end < sorted.len() && sorted[end].product_id == sorted[end - 1].product_id {
            end += 1;
        }
        ranges.push(start..end);
        start = end;
    }
    ranges
}

type EncodedPart = (String, bytes::Bytes, u64);

/// Encode shards to Parquet, several at a time (zstd and encoding are CPU-bound).
fn encode_shards(
    run: &RunId,
    rows: &[Review],
    shards: &[std::ops::Range<usize>],
    progress: &dyn Progress,
) -> Result<Vec<EncodedPart>, StageError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let encode_one = |index: usize, range: &std::ops::Range<usize>| {
        let key = layout::cleaned_key(run, index);
        let mut buf = ParquetBuffer::new(Dataset::Cleaned).map_err(StageError::parquet(&key))?;
        for chunk in rows[range.clone()].chunks(ENCODE_ROWS) {
            let batch = reviews_to_batch(chunk).map_err(|e| StageError::Internal(e.to_string()))?;
            buf.write(&batch).map_err(StageError::parquet(&key))?;
            progress.advance(chunk.len() as u64);
        }
        let bytes = buf
            .finish(&[("reviews.run_id", run.to_string())])
            .map_err(StageError::parquet(&key))?;
        Ok::<_, StageError>((key, bytes, range.len() as u64))
    };
    parallel_map(shards, workers, encode_one)
}

/// Map `f` over `items` on up to `workers` threads, keeping order; the first error wins.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(usize, &T) -> Result<R, StageError> + Sync,
) -> Result<Vec<R>, StageError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<R, StageError>>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers.max(1).min(items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    let r = f(i, &items[i]);
                    *results[i].lock().expect("no poison") = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| m.into_inner().expect("no poison").expect("every item ran"))
        .collect()
}

async fn load_erased_buyers(lake: &dyn Lake) -> Result<HashSet<String>, StageError> {
    Ok(state::read_erased_buyers(lake).await?.into_iter().collect())
}

/// A re-run with fewer shards must not leave the earlier attempt's extra parts behind.
async fn remove_stale_parts(lake: &dyn Lake, run: &RunId, shards: usize) -> Result<(), StageError> {
    let keep: HashSet<String> = (0..shards)
        .flat_map(|i| [layout::cleaned_key(run, i), layout::curated_key(run, i)])
        .collect();
    for dataset in [layout::CLEANED, layout::CURATED] {
        for key in lake.list(&layout::run_prefix(dataset, run)).await? {
            if key.ends_with(".parquet") && !keep.contains(&key) {
                lake.delete(&key).await?;
            }
        }
    }
    Ok(())
}
