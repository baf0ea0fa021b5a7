//! Transform + load cleaned, the routing half: clean each raw part on its own and route its
//! valid rows to product buckets (`cleaned/run=<id>/changes/bucket=<b>/part-<p>.parquet`),
//! its rejected rows to `rejects/run=<id>/part-<p>.csv`; then plan which buckets the run
//! rewrites. Every input row lands in exactly one of the two, and memory holds one raw part,
//! never the dataset. The merge of each changed bucket with its carried rows is
//! [`crate::bucket`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use arrow_array::RecordBatch;
use chrono::Utc;
use reviews_domain::schema::CURATED_SCHEMA_VERSION;
use reviews_domain::schema::{SchemaError, batch_to_raw, reviews_to_batch};
use reviews_domain::{Cleaner, IdKey, Rejected, Review};
use reviews_lake::manifest::Manifest;
use reviews_lake::parquet_io::{Dataset, ParquetBuffer, read_parquet};
use reviews_lake::state::{self, BaseFile, BucketTask, ChangeFile, Plan, RouteRecord, RunBase};
use reviews_lake::{Lake, LakeError, RunId, layout};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::carry;
use crate::error::StageError;
use crate::extract::{Deletion, read_deletions};
use crate::progress::Progress;
use crate::rejects;

/// Rows per record batch inside a cleaned file.
pub(crate) const ENCODE_ROWS: usize = 32 * 1024;
/// Buyers who asked for erasure (a JSON list of buyer ids), read by every transform.
pub const ERASED_BUYERS_KEY: &str = state::ERASED_BUYERS;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TransformInput {
    pub run_id: RunId,
    /// The run's raw/ parts (what extract returned).
    pub raw_keys: Vec<String>,
    /// The raw rows are only what changed since an earlier run (an incremental extract):
    /// carry the earlier cleaned rows over (see [`crate::carry`]).
    #[serde(default)]
    pub merge_previous: bool,
    /// The review ids deleted at the source in this run's range (what extract returned).
    #[serde(default)]
    pub deletions_key: Option<String>,
    /// Product buckets of the dataset (when not given: the base snapshot's count, else
    /// [`layout::DEFAULT_BUCKETS`]). A count other than the base snapshot's re-buckets the
    /// carried rows once.
    #[serde(default)]
    pub buckets: Option<u32>,
    /// Every raw part was already routed by [`route`] (one task each, the state machine's
    /// route Map): plan from their records instead of routing here. Parts routed apart have
    /// a cleaner each, so an id that two parts both hold is refused by the bucket merge
    /// rather than rejected as a duplicate; the PostgreSQL source gives each review once.
    #[serde(default)]
    pub routed: bool,
}

/// One raw part to clean and route: the unit of work of one task of the route Map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoutePartInput {
    pub run_id: RunId,
    /// The part's position in the run's `raw_keys` (names its change and rejects files).
    pub part: usize,
    pub raw_key: String,
    /// As [`TransformInput::buckets`]; every part and the plan resolve the same count.
    #[serde(default)]
    pub buckets: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoutePartOutput {
    pub run_id: RunId,
    pub part: usize,
    pub rows_in: u64,
    pub cleaned: u64,
    pub rejected: u64,
}

/// One bucket to merge and score: the unit of work of one task of the bucket Map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BucketItem {
    pub run_id: RunId,
    pub bucket: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TransformOutput {
    pub run_id: RunId,
    pub rows_in: u64,
    pub cleaned: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// The folder of the run's rejects (one CSV per raw part).
    pub rejects_key: String,
    pub rejects_keys: Vec<String>,
    pub buckets: u32,
    /// How many buckets this run rewrites; every other bucket is referenced from the base.
    /// A count, so that the payload stays small whatever the bucket count.
    pub changed: u64,
    /// The list of those buckets ([`BucketItem`]s), a JSON array in the lake: the
    /// Distributed Map's ItemReader reads it ([`plan_items`] here).
    pub items_key: String,
    /// Why every bucket is rewritten, when it is.
    pub full_pass: Option<String>,
}

/// Run the transform stage: route every raw part (unless [`TransformInput::routed`]), then
/// plan the bucket merges.
#[tracing::instrument(name = "transform", skip_all, fields(run_id = %input.run_id, parts = input.raw_keys.len()))]
pub async fn transform(
    lake: Arc<dyn Lake>,
    input: &TransformInput,
    progress: &dyn Progress,
) -> Result<TransformOutput, StageError> {
    let run = &input.run_id;
    for key in &input.raw_keys {
        check_raw_key(run, key)?;
    }
    if input.raw_keys.is_empty() {
        return Err(StageError::Input(format!("run {run}: no raw_keys given")));
    }
    if let Some(key) = &input.deletions_key
        && (layout::run_of_key(key).as_ref() != Some(run) || !key.starts_with("raw/"))
    {
        return Err(StageError::Input(format!(
            "deletions key {key:?} is not a raw/ object of run {run}"
        )));
    }
    let base = state::run_base(lake.as_ref(), run, Utc::now()).await?;
    let buckets = resolve_buckets(lake.as_ref(), &base, input.buckets).await?;
    let erased = state::read_erased_buyers(lake.as_ref()).await?;
    let mut records = Vec::with_capacity(input.raw_keys.len());
    if input.routed {
        for (part, key) in input.raw_keys.iter().enumerate() {
            records.push(read_route_record(lake.as_ref(), run, part, key, erased.len()).await?);
        }
    } else {
        // One cleaner for every part: a duplicate review id across parts is still a duplicate.
        let mut cleaner = Cleaner::new(run.to_string(), base.started_at)
            .with_erased_buyers(erased.iter().cloned());
        for (part, key) in input.raw_keys.iter().enumerate() {
            let record = route_part(
                lake.as_ref(),
                run,
                part,
                key,
                buckets,
                &mut cleaner,
                input.raw_keys.len() - part,
                erased.len() as u64,
                progress,
            )
            .await?;
            records.push(record);
        }
    }
    let deletions = match &input.deletions_key {
        Some(key) => read_deletions(lake.as_ref(), key).await?,
        None => Vec::new(),
    };
    let incremental = input.merge_previous && base.live_run.as_ref() != Some(run);
    let plan = plan(
        lake.as_ref(),
        &base,
        &records,
        &deletions,
        erased.len() as u64,
        incremental,
        buckets,
        progress,
    )
    .await?;
    let out = TransformOutput {
        run_id: run.clone(),
        rows_in: plan.rows_in,
        cleaned: plan.cleaned,
        rejected: plan.rejected,
        rejected_by_reason: plan.rejected_by_reason.clone(),
        rejects_key: layout::run_prefix(layout::REJECTS, run),
        rejects_keys: plan.rejects_keys.clone(),
        buckets,
        changed: plan.changed.len() as u64,
        items_key: state::plan_items_key(run),
        full_pass: plan.full_pass.clone(),
    };
    tracing::info!(
        run_id = %run, rows_in = out.rows_in, cleaned = out.cleaned, rejected = out.rejected,
        buckets, changed = out.changed, full_pass = ?out.full_pass, routed = input.routed,
        "transform done"
    );
    Ok(out)
}

/// Clean and route one raw part on its own (one task of the route Map); the transform with
/// [`TransformInput::routed`] then plans from the parts' records.
#[tracing::instrument(name = "route_part", skip_all, fields(run_id = %input.run_id, part = input.part))]
pub async fn route(
    lake: Arc<dyn Lake>,
    input: &RoutePartInput,
    progress: &dyn Progress,
) -> Result<RoutePartOutput, StageError> {
    let run = &input.run_id;
    check_raw_key(run, &input.raw_key)?;
    let base = state::run_base(lake.as_ref(), run, Utc::now()).await?;
    let buckets = resolve_buckets(lake.as_ref(), &base, input.buckets).await?;
    let erased = state::read_erased_buyers(lake.as_ref()).await?;
    let mut cleaner =
        Cleaner::new(run.to_string(), base.started_at).with_erased_buyers(erased.iter().cloned());
    let record = route_part(
        lake.as_ref(),
        run,
        input.part,
        &input.raw_key,
        buckets,
        &mut cleaner,
        1,
        erased.len() as u64,
        progress,
    )
    .await?;
    tracing::info!(
        run_id = %run, part = input.part, rows_in = record.rows_in, cleaned = record.cleaned,
        rejected = record.rejected, "part routed"
    );
    Ok(RoutePartOutput {
        run_id: run.clone(),
        part: input.part,
        rows_in: record.rows_in,
        cleaned: record.cleaned,
        rejected: record.rejected,
    })
}

/// The buckets a planned run rewrites, as the bucket Map reads them.
pub async fn plan_items(lake: &dyn Lake, run: &RunId) -> Result<Vec<BucketItem>, StageError> {
    Ok(state::read_required(lake, &state::plan_items_key(run)).await?)
}

fn check_raw_key(run: &RunId, key: &str) -> Result<(), StageError> {
    if layout::run_of_key(key).as_ref() != Some(run) || !key.starts_with("raw/") {
        return Err(StageError::Input(format!(
            "raw key {key:?} is not a raw/ object of run {run}"
        )));
    }
    Ok(())
}

/// The count asked for, else the base snapshot's, else the default: the same for every part
/// and the plan of a run, as they share the run's base.
async fn resolve_buckets(
    lake: &dyn Lake,
    base: &RunBase,
    requested: Option<u32>,
) -> Result<u32, StageError> {
    let buckets = match requested {
        Some(n) => n,
        None => base_snapshot(lake, base)
            .await?
            .map(|s| s.buckets)
            .filter(|&n| n > 0)
            .unwrap_or(layout::DEFAULT_BUCKETS),
    };
    if !(1..=layout::MAX_BUCKETS).contains(&buckets) {
        return Err(StageError::Input(format!(
            "buckets = {buckets}: use 1 to {}",
            layout::MAX_BUCKETS
        )));
    }
    Ok(buckets)
}

/// The record a route task left for `part`, checked against the plan's view of the run.
async fn read_route_record(
    lake: &dyn Lake,
    run: &RunId,
    part: usize,
    raw_key: &str,
    erased_buyers: usize,
) -> Result<RouteRecord, StageError> {
    let key = state::route_record_key(run, part);
    let record: RouteRecord = match state::read_required(lake, &key).await {
        Ok(r) => r,
        Err(LakeError::NotFound(_)) => {
            return Err(StageError::Input(format!(
                "run {run}: part {part} ({raw_key}) was not routed ({key} is missing)"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if record.raw_key != raw_key {
        return Err(StageError::Validation(format!(
            "{key} routed {}, the run's part {part} is {raw_key}",
            record.raw_key
        )));
    }
    // The part's cleaner admitted the buyers erased at the time; an erasure since then must
    // not reach the dataset through it. Failing loses nothing: the watermark has not moved,
    // and the next run routes the same rows again with the new list.
    if record.erased_buyers != erased_buyers as u64 {
        return Err(StageError::Validation(format!(
            "an erasure landed while run {run} routed its parts (part {part} knew {} erased \
             buyer(s), now {erased_buyers}): run again",
            record.erased_buyers
        )));
    }
    Ok(record)
}

/// Clean one raw part and route it: valid rows to their bucket's change file, rejected rows
/// to the part's rejects file, then the part's [`RouteRecord`] (last). `parts_left` counts
/// this part and the ones the same cleaner admits after it: its id sets are sized once, for
/// that many parts of this one's size.
#[allow(clippy::too_many_arguments)]
async fn route_part(
    lake: &dyn Lake,
    run: &RunId,
    part: usize,
    raw_key: &str,
    buckets: u32,
    cleaner: &mut Cleaner,
    parts_left: usize,
    erased_buyers: u64,
    progress: &dyn Progress,
) -> Result<RouteRecord, StageError> {
    let bytes = lake.get(raw_key).await?;
    let (files, rejected, rows_in) = tokio::task::block_in_place(|| {
        let batches = read_parquet(Dataset::Raw, bytes).map_err(StageError::parquet(raw_key))?;
        let total: usize = batches.iter().map(|b| b.num_rows()).sum();
        cleaner.reserve(total.saturating_mul(parts_left));
        progress.start(&format!("transform part {part}"), Some(total as u64));
        let mut checked: Vec<CheckedChunk> = Vec::new();
        let mut rejected = Vec::new();
        for batch in &batches {
            let mut chunks = check_batch(cleaner, batch, buckets)
                .and_then(|mut chunks| {
                    admit_batch(cleaner, batch, &mut chunks, &mut rejected).map(|()| chunks)
                })
                .map_err(|e| StageError::Parquet {
                    key: raw_key.to_owned(),
                    source: e.into(),
                })?;
            checked.append(&mut chunks);
            progress.advance(batch.num_rows() as u64);
        }
        progress.finish();
        drop(batches);
        // The admitted rows stay where their worker put them; each bucket's file is encoded
        // from references, in input order.
        let mut by_bucket: BTreeMap<u32, Vec<&Review>> = BTreeMap::new();
        for row in checked.iter().flat_map(|c| &c.valid).filter(|r| r.admitted) {
            by_bucket.entry(row.bucket).or_default().push(&row.review);
        }
        let cleaned: usize = by_bucket.values().map(Vec::len).sum();
        if cleaned + rejected.len() != total {
            return Err(StageError::Internal(format!(
                "row accounting broken in {raw_key}: {total} in, {cleaned} cleaned + {} rejected",
                rejected.len()
            )));
        }
        let files = encode_changes(run, part, by_bucket.into_iter().collect())?;
        {
            use rayon::prelude::*;
            // Freed on all cores, as they were allocated.
            checked.into_par_iter().for_each(drop);
        }
        Ok::<_, StageError>((files, rejected, total as u64))
    })?;
    // Several writes in flight: each waits on the store (a durable write locally, a round
    // trip on S3), not on the CPU. The part's record, written last, makes them count.
    let changes = put_all(
        lake,
        files
            .into_iter()
            .map(|(file, bytes)| (file.key.clone(), bytes, file)),
    )
    .await?;
    let rejects_key = layout::part_rejects_key(run, part);
    let csv = rejects::to_csv(&rejected).map_err(|e| StageError::Internal(e.to_string()))?;
    lake.put(&rejects_key, csv.into()).await?;
    let rejected_ids = rejected
        .iter()
        .filter_map(|r| {
            let id = r
                .raw
                .review_id
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())?;
            let bucket = r
                .raw
                .product_id
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| layout::bucket_of(p, buckets));
            Some((bucket, id.to_owned()))
        })
        .collect();
    let cleaned: u64 = changes.iter().map(|c| c.rows).sum();
    let record = RouteRecord {
        run_id: run.clone(),
        part,
        raw_key: raw_key.to_owned(),
        buckets,
        rows_in,
        cleaned,
        rejected: rejected.len() as u64,
        rejected_by_reason: rejects::count_by_reason(&rejected),
        rejects_key,
        changes,
        rejected_ids,
        erased_buyers,
    };
    state::write_record(lake, &state::route_record_key(run, part), &record).await?;
    Ok(record)
}

/// Files written to the lake at once by [`put_all`].
const PUTS_IN_FLIGHT: usize = 8;

/// Write every `(key, bytes, tag)` with up to [`PUTS_IN_FLIGHT`] writes at once; the tags in
/// input order once all are written (the first failure ends it).
pub(crate) async fn put_all<T>(
    lake: &dyn Lake,
    files: impl IntoIterator<Item = (String, bytes::Bytes, T)>,
) -> Result<Vec<T>, StageError> {
    use futures::stream::{StreamExt, TryStreamExt};
    futures::stream::iter(files)
        .map(|(key, bytes, tag)| async move {
            lake.put(&key, bytes).await?;
            Ok::<_, StageError>(tag)
        })
        .buffered(PUTS_IN_FLIGHT)
        .try_collect()
        .await
}

/// Decide which buckets the run rewrites and write one [`BucketTask`] for each, the item
/// list of the bucket Map, then the [`Plan`] (last).
#[allow(clippy::too_many_arguments)]
async fn plan(
    lake: &dyn Lake,
    base: &RunBase,
    records: &[RouteRecord],
    deletions: &[Deletion],
    erased_buyers: u64,
    incremental: bool,
    buckets: u32,
    progress: &dyn Progress,
) -> Result<Plan, StageError> {
    let run = &base.run_id;
    let snapshot = if incremental {
        base_snapshot(lake, base).await?
    } else {
        None
    };
    // Where each bucket's carried rows are; a base with another bucket count is re-bucketed.
    let mut base_files: BTreeMap<u32, BaseFile> = BTreeMap::new();
    let mut full_pass = None;
    if let Some(snap) = &snapshot {
        if snap.buckets == buckets {
            for f in &snap.bucket_files {
                base_files.insert(
                    f.bucket,
                    BaseFile {
                        cleaned_key: f.cleaned_key.clone(),
                        curated_key: Some(f.curated_key.clone()),
                        rows: f.rows,
                    },
                );
            }
        } else {
            full_pass = Some(format!(
                "re-bucketing the dataset from {} to {buckets} buckets",
                snap.buckets
            ));
            base_files = rebucket(lake, run, base, snap, buckets, progress).await?;
        }
        if snap.schema_version < CURATED_SCHEMA_VERSION && full_pass.is_none() {
            // Every curated file in the new version, so that no snapshot mixes the two (an
            // analytics table reads every file with one type per column).
            full_pass = Some(format!(
                "the curated files are of schema version {}: every bucket is rewritten in \
                 version {CURATED_SCHEMA_VERSION}",
                snap.schema_version
            ));
        }
        if erased_buyers > snap.erased_buyers && full_pass.is_none() {
            full_pass = Some(format!(
                "{} buyer(s) asked for erasure since the base snapshot",
                erased_buyers - snap.erased_buyers
            ));
        }
    } else if !incremental {
        full_pass = Some("a full load replaces the dataset".into());
    }

    let mut changes: BTreeMap<u32, Vec<ChangeFile>> = BTreeMap::new();
    let mut rejected: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    let mut deleted: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    let mut anywhere_rejected = BTreeSet::new();
    let mut anywhere_deleted = BTreeSet::new();
    for r in records {
        if r.buckets != buckets {
            return Err(StageError::Internal(format!(
                "part {} was routed to {} buckets, the plan has {buckets}",
                r.part, r.buckets
            )));
        }
        for c in &r.changes {
            changes.entry(c.bucket).or_default().push(c.clone());
        }
        for (bucket, id) in &r.rejected_ids {
            match bucket {
                Some(b) => rejected.entry(*b).or_default().insert(id.clone()),
                None => anywhere_rejected.insert(id.clone()),
            };
        }
    }
    for d in deletions {
        match &d.product_id {
            Some(p) => deleted
                .entry(layout::bucket_of(p.trim(), buckets))
                .or_default()
                .insert(d.review_id.clone()),
            None => anywhere_deleted.insert(d.review_id.clone()),
        };
    }
    if snapshot.is_some()
        && full_pass.is_none()
        && !(anywhere_rejected.is_empty() && anywhere_deleted.is_empty())
    {
        full_pass = Some(format!(
            "{} removal(s) of a review whose product is unknown",
            anywhere_rejected.len() + anywhere_deleted.len()
        ));
    }

    // A bucket changes when rows arrive in it, or when a removal may hit a row it holds.
    let mut changed: BTreeSet<u32> = changes.keys().copied().collect();
    for b in rejected.keys().chain(deleted.keys()) {
        if base_files.contains_key(b) {
            changed.insert(*b);
        }
    }
    if full_pass.is_some() {
        changed.extend(base_files.keys().copied());
    }
    for &bucket in &changed {
        let mut task_rejected = rejected.remove(&bucket).unwrap_or_default();
        task_rejected.extend(anywhere_rejected.iter().cloned());
        let mut task_deleted = deleted.remove(&bucket).unwrap_or_default();
        task_deleted.extend(anywhere_deleted.iter().cloned());
        let task = BucketTask {
            run_id: run.clone(),
            bucket,
            buckets,
            base: base_files.get(&bucket).cloned(),
            changes: changes.remove(&bucket).unwrap_or_default(),
            deleted: task_deleted.into_iter().collect(),
            rejected: task_rejected.into_iter().collect(),
        };
        state::write_record(lake, &state::bucket_task_key(run, bucket), &task).await?;
    }
    remove_stale_files(lake, run, records, &base_files, &changed).await?;
    let items: Vec<BucketItem> = changed
        .iter()
        .map(|&bucket| BucketItem {
            run_id: run.clone(),
            bucket,
        })
        .collect();
    state::write_record(lake, &state::plan_items_key(run), &items).await?;

    let mut rejected_by_reason = BTreeMap::new();
    for r in records {
        for (reason, n) in &r.rejected_by_reason {
            *rejected_by_reason.entry(reason.clone()).or_insert(0) += n;
        }
    }
    let plan = Plan {
        run_id: run.clone(),
        base_sequence: base.sequence,
        buckets,
        changed: changed.into_iter().collect(),
        carry_base: snapshot.is_some(),
        full_pass,
        rows_in: records.iter().map(|r| r.rows_in).sum(),
        cleaned: records.iter().map(|r| r.cleaned).sum(),
        rejected: records.iter().map(|r| r.rejected).sum(),
        rejected_by_reason,
        rejects_keys: records.iter().map(|r| r.rejects_key.clone()).collect(),
        deleted: deletions.len() as u64,
        erased_buyers,
    };
    if plan.cleaned + plan.rejected != plan.rows_in {
        return Err(StageError::Internal(format!(
            "row accounting broken: {} in, {} cleaned + {} rejected",
            plan.rows_in, plan.cleaned, plan.rejected
        )));
    }
    state::write_record(lake, &state::plan_key(run), &plan).await?;
    Ok(plan)
}

/// An earlier attempt of the same run (other rows, another bucket count) must not leave
/// files behind that this attempt does not write: nothing reads them, but a listing should
/// not mislead.
async fn remove_stale_files(
    lake: &dyn Lake,
    run: &RunId,
    records: &[RouteRecord],
    base_files: &BTreeMap<u32, BaseFile>,
    changed: &BTreeSet<u32>,
) -> Result<(), StageError> {
    let mut keep: HashSet<String> = records
        .iter()
        .flat_map(|r| {
            r.changes
                .iter()
                .map(|c| c.key.clone())
                .chain([r.rejects_key.clone()])
        })
        .chain(base_files.values().map(|b| b.cleaned_key.clone()))
        .collect();
    for &b in changed {
        keep.insert(layout::cleaned_bucket_key(run, b));
        keep.insert(layout::curated_bucket_key(run, b));
        keep.insert(layout::directory_bucket_key(run, b));
    }
    for dataset in [layout::CLEANED, layout::CURATED, layout::REJECTS] {
        for key in lake.list(&layout::run_prefix(dataset, run)).await? {
            let data = key.ends_with(".parquet")
                || key.ends_with(".csv")
                || key.ends_with(".products.json");
            if data && !keep.contains(&key) {
                lake.delete(&key).await?;
            }
        }
    }
    Ok(())
}

/// The snapshot the run builds on (the pointer when the run first started).
pub(crate) async fn base_snapshot(
    lake: &dyn Lake,
    base: &RunBase,
) -> Result<Option<Manifest>, StageError> {
    if base.snapshot.is_some() || base.live_run.is_none() {
        return Ok(base.snapshot.clone());
    }
    // A base recorded before snapshots were kept in it: the live run's own manifest.
    let live = base.live_run.as_ref().expect("checked");
    let key = layout::run_manifest_key(live);
    match lake.get(&key).await {
        Ok(bytes) => Manifest::from_json(&bytes)
            .map(Some)
            .map_err(|e| StageError::Validation(format!("{key}: {e}"))),
        Err(LakeError::NotFound(_)) => Err(StageError::Validation(format!(
            "the base run {live} has no manifest ({key})"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Move the base snapshot's rows to `buckets` buckets (a snapshot from before buckets, or a
/// new bucket count): once, into this run's `cleaned/run=<id>/base/`. This reads the whole
/// base, as every run did before buckets; later runs read only their changed buckets.
async fn rebucket(
    lake: &dyn Lake,
    run: &RunId,
    base: &RunBase,
    snapshot: &Manifest,
    buckets: u32,
    progress: &dyn Progress,
) -> Result<BTreeMap<u32, BaseFile>, StageError> {
    let rows = carry::load_snapshot_rows(lake, base, snapshot).await?;
    progress.start("re-bucket the base", Some(rows.len() as u64));
    let mut by_bucket: BTreeMap<u32, Vec<Review>> = BTreeMap::new();
    for r in rows {
        by_bucket
            .entry(layout::bucket_of(&r.product_id, buckets))
            .or_default()
            .push(r);
    }
    let mut files = BTreeMap::new();
    for (bucket, rows) in by_bucket {
        let key = layout::rebased_key(run, bucket);
        let bytes = tokio::task::block_in_place(|| encode_cleaned(run, &key, &rows))?;
        lake.put(&key, bytes).await?;
        progress.advance(rows.len() as u64);
        files.insert(
            bucket,
            BaseFile {
                cleaned_key: key,
                curated_key: None,
                rows: rows.len() as u64,
            },
        );
    }
    progress.finish();
    Ok(files)
}

/// Encode each bucket's change file of a part on all cores (the buckets are independent);
/// in bucket order.
fn encode_changes(
    run: &RunId,
    part: usize,
    groups: Vec<(u32, Vec<&Review>)>,
) -> Result<Vec<(ChangeFile, bytes::Bytes)>, StageError> {
    use rayon::prelude::*;
    // Largest first, so that the last task to start is a small one.
    let mut groups = groups;
    groups.sort_by_key(|(_, rows)| std::cmp::Reverse(rows.len()));
    let mut files = groups
        .into_par_iter()
        .with_max_len(1)
        .map(|(bucket, rows)| {
            let key = layout::change_key(run, bucket, part);
            let bytes = encode_rows(Dataset::Change, run, &key, &rows)?;
            let file = ChangeFile {
                bucket,
                key,
                rows: rows.len() as u64,
            };
            Ok((file, bytes))
        })
        .collect::<Result<Vec<_>, StageError>>()?;
    files.sort_by_key(|(file, _)| file.bucket);
    Ok(files)
}

/// Encode cleaned rows as one Parquet file of the cleaned dataset.
pub(crate) fn encode_cleaned(
    run: &RunId,
    key: &str,
    rows: &[Review],
) -> Result<bytes::Bytes, StageError> {
    encode_rows(Dataset::Cleaned, run, key, rows)
}

/// Encode cleaned rows as one Parquet file of `dataset` (cleaned, or a run's change file).
fn encode_rows<R: std::borrow::Borrow<Review>>(
    dataset: Dataset,
    run: &RunId,
    key: &str,
    rows: &[R],
) -> Result<bytes::Bytes, StageError> {
    let mut buf = ParquetBuffer::new(dataset).map_err(StageError::parquet(key))?;
    for chunk in rows.chunks(ENCODE_ROWS) {
        let batch = reviews_to_batch(chunk).map_err(|e| StageError::Internal(e.to_string()))?;
        buf.write(&batch).map_err(StageError::parquet(key))?;
    }
    buf.finish(&[("reviews.run_id", run.to_string())])
        .map_err(StageError::parquet(key))
}

/// One checked slice of a raw batch: its valid rows, with what admission and routing need
/// computed on the worker, and its invalid rows.
struct CheckedChunk {
    valid: Vec<CheckedRow>,
    /// (row in the batch, rejection)
    invalid: Vec<(usize, Rejected)>,
}

struct CheckedRow {
    review: Review,
    id: IdKey,
    content: Option<u64>,
    bucket: u32,
    /// The row in its batch.
    row: usize,
    admitted: bool,
}

/// Rows per worker task: small enough to spread a batch over the cores, large enough that
/// a task outweighs its scheduling.
const CHECK_CHUNK: usize = 4096;

/// Read and check a raw batch on all cores: each raw row is decoded, checked, keyed and
/// dropped by one thread; only a rejected row keeps its raw fields.
fn check_batch(
    cleaner: &Cleaner,
    batch: &RecordBatch,
    buckets: u32,
) -> Result<Vec<CheckedChunk>, SchemaError> {
    use rayon::prelude::*;
    (0..batch.num_rows())
        .step_by(CHECK_CHUNK)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| {
            let slice = batch.slice(start, CHECK_CHUNK.min(batch.num_rows() - start));
            let mut chunk = CheckedChunk {
                valid: Vec::with_capacity(slice.num_rows()),
                invalid: Vec::new(),
            };
            for (i, raw) in batch_to_raw(&slice)?.iter().enumerate() {
                match cleaner.check(raw) {
                    Ok(review) => chunk.valid.push(CheckedRow {
                        id: IdKey::new(&review.review_id),
                        content: Cleaner::content_key(&review),
                        bucket: layout::bucket_of(&review.product_id, buckets),
                        review,
                        row: start + i,
                        admitted: false,
                    }),
                    Err(rejected) => chunk.invalid.push((start + i, *rejected)),
                }
            }
            Ok(chunk)
        })
        .collect()
}

/// Admit a checked batch in input order (duplicates: the first valid row wins); the
/// batch's rejections go to `rejected` in input order.
fn admit_batch(
    cleaner: &mut Cleaner,
    batch: &RecordBatch,
    chunks: &mut [CheckedChunk],
    rejected: &mut Vec<Rejected>,
) -> Result<(), SchemaError> {
    let mut batch_rejects = Vec::new();
    for chunk in chunks.iter_mut() {
        batch_rejects.append(&mut chunk.invalid);
        for row in &mut chunk.valid {
            match cleaner.admit_id(row.id, &row.review.review_id, row.content) {
                Ok(()) => row.admitted = true,
                Err((reason, detail)) => {
                    // A duplicate: rare, so its raw row is decoded again rather than kept.
                    let raw = batch_to_raw(&batch.slice(row.row, 1))?
                        .pop()
                        .expect("a one-row slice decodes to one row");
                    batch_rejects.push((
                        row.row,
                        Rejected {
                            raw,
                            reason,
                            detail,
                        },
                    ));
                }
            }
        }
    }
    batch_rejects.sort_by_key(|(row, _)| *row);
    rejected.extend(batch_rejects.into_iter().map(|(_, r)| r));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reviews_domain::CleanOutcome;
    use reviews_domain::schema::raw_to_batch;

    /// Checking on all cores and admitting in order gives what the one-row-at-a-time cleaner
    /// gives: the same rows kept, the same rejections with the same reasons, in input order,
    /// with duplicates (of ids and of content) across worker chunks.
    #[test]
    fn checked_in_parallel_as_cleaned_one_by_one() {
        let mut rows = reviews_testkit::synthetic(10_000, 7, "T");
        // Duplicates of rows from other chunks, and one before its first occurrence's chunk.
        for i in [3usize, 4_100, 9_000, 123] {
            let mut copy = rows[i].clone();
            if i == 123 {
                copy.text = Some("a different text under an id seen before".into());
            }
            rows.insert(8_200 + i % 7, copy);
        }
        let batch = raw_to_batch(&rows).expect("batch");
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);

        let mut one_by_one = Cleaner::new("r", at);
        let (mut want_kept, mut want_rejected) = (Vec::new(), Vec::new());
        for raw in &rows {
            match one_by_one.clean(raw) {
                CleanOutcome::Clean(r) => want_kept.push(r.review_id.clone()),
                CleanOutcome::Rejected(r) => {
                    want_rejected.push((r.raw.review_id.clone(), r.reason))
                }
            }
        }

        let mut cleaner = Cleaner::new("r", at);
        let mut chunks = check_batch(&cleaner, &batch, 8).expect("checked");
        let mut rejected = Vec::new();
        admit_batch(&mut cleaner, &batch, &mut chunks, &mut rejected).expect("admitted");
        let kept: Vec<String> = chunks
            .iter()
            .flat_map(|c| &c.valid)
            .filter(|r| r.admitted)
            .map(|r| r.review.review_id.clone())
            .collect();
        let rejected: Vec<_> = rejected
            .into_iter()
            .map(|r| (r.raw.review_id, r.reason))
            .collect();

        assert!(
            want_rejected.len() > 400,
            "the sample has invalid rows and duplicates"
        );
        assert_eq!(kept, want_kept);
        assert_eq!(rejected, want_rejected);
    }
}
