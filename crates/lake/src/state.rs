//! Lake state: every state key and its typed document, and the conditional writes that move
//! them. Nothing here is a blind overwrite:
//!
//! - `curated/_latest.json` is the one commit point. It holds the live snapshot *and* the
//!   watermark the next extract starts from, so data and source position move together, and
//!   only through [`commit`] (compare-and-swap on the pointer's version).
//! - `state/lease.json` keeps a second execution from running the stages at the same time
//!   ([`acquire_lease`]); it expires, so a run that died does not block the schedule for ever.
//! - `state/runs/run=<id>/base.json` fixes, on a run's first attempt, the commit it builds on
//!   ([`run_base`]): a retry carries the same rows and starts from the same watermark.
//! - `state/runs/run=<id>/cleaned.json` is what transform wrote ([`CleanedRecord`]): publish
//!   and the next run's carry-over check the files against it.
//! - `state/erased_buyers.json` only grows, by compare-and-swap ([`add_erased_buyer`]).

use std::collections::BTreeSet;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::layout::{self, RunId};
use crate::manifest::Manifest;
use crate::{Lake, LakeError, PutCondition, Version};

/// The live snapshot and the watermark: the pipeline's one commit point.
pub const POINTER: &str = layout::LATEST_MANIFEST;
/// Who may run the stages now.
pub const LEASE: &str = "state/lease.json";
/// Buyers who asked for erasure: a JSON list of buyer ids.
pub const ERASED_BUYERS: &str = "state/erased_buyers.json";
/// When the last erasure started, and whether its scrub of the lake finished ([`LastErasure`]).
pub const LAST_ERASURE: &str = "state/last_erasure.json";
/// What an unfinished erasure scrub was rewriting (review ids and keys only).
pub const ERASURE_JOURNAL: &str = "state/erasure/pending.json";
/// The runs' own records: `state/runs/run=<id>/<name>.json` ([`run_record_key`]).
pub const RUNS_PREFIX: &str = "state/runs/";
/// One marker per run whose raw rows are all in the archive ([`archived_marker_key`]).
pub const ARCHIVED_PREFIX: &str = "state/archived/";

/// How often a conditional write is tried again after losing a race to another writer.
const CAS_ATTEMPTS: usize = 32;

/// A short, jittered pause after a lost race, so that racing writers spread out.
async fn backoff(attempt: usize) {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 7_000_000);
    let millis = (attempt as u64).min(10) * 3;
    tokio::time::sleep(
        std::time::Duration::from_millis(millis) + std::time::Duration::from_nanos(jitter.into()),
    )
    .await;
}

/// `state/runs/run=<id>/<name>.json`: one of a run's own records.
pub fn run_record_key(run: &RunId, name: &str) -> String {
    format!("{RUNS_PREFIX}run={run}/{name}.json")
}

/// `state/last_erasure.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastErasure {
    pub at: DateTime<Utc>,
    /// The lake was scrubbed of every erased buyer after `at` (a document from before scrubs
    /// existed has none: not scrubbed).
    #[serde(default)]
    pub lake_scrubbed: bool,
}

/// `state/runs/run=<id>/extract.json`: the range a run extracted, so that re-running the same
/// run id re-reads the same range (and does not overwrite its raw/ with an empty file). `W`
/// is the source's position (the PostgreSQL watermark).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractRange<W> {
    pub from: Option<W>,
    pub to: Option<W>,
    pub rows: u64,
    #[serde(default)]
    pub deleted: u64,
}

/// The run's recorded extract range, if it extracted before.
pub async fn read_extract_range<W: DeserializeOwned>(
    lake: &dyn Lake,
    run: &RunId,
) -> Result<Option<ExtractRange<W>>, LakeError> {
    Ok(read(lake, &run_record_key(run, "extract"))
        .await?
        .map(|(doc, _)| doc))
}

/// Record the range a run extracted (after its raw/ is written).
pub async fn write_extract_range<W: Serialize>(
    lake: &dyn Lake,
    run: &RunId,
    range: &ExtractRange<W>,
) -> Result<(), LakeError> {
    write_record(lake, &run_record_key(run, "extract"), range).await
}

/// `state/archived/run=<id>.json`: written once every raw row of the run is in the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedMarker {
    pub run_id: RunId,
    pub documents: u64,
    pub archived_at: DateTime<Utc>,
}

/// The key of a run's [`ArchivedMarker`].
pub fn archived_marker_key(run: &RunId) -> String {
    format!("{ARCHIVED_PREFIX}run={run}.json")
}

/// Mark a run archived.
pub async fn write_archived_marker(
    lake: &dyn Lake,
    marker: &ArchivedMarker,
) -> Result<(), LakeError> {
    write_record(lake, &archived_marker_key(&marker.run_id), marker).await
}

/// The runs that have an [`ArchivedMarker`].
pub async fn archived_runs(lake: &dyn Lake) -> Result<BTreeSet<RunId>, LakeError> {
    Ok(lake
        .list(ARCHIVED_PREFIX)
        .await?
        .iter()
        .filter_map(|k| {
            let name = k.strip_prefix(ARCHIVED_PREFIX)?.strip_suffix(".json")?;
            RunId::parse(name.strip_prefix("run=")?).ok()
        })
        .collect())
}

/// Read a state document with its version; `None` when it does not exist.
pub async fn read<T: DeserializeOwned>(
    lake: &dyn Lake,
    key: &str,
) -> Result<Option<(T, Version)>, LakeError> {
    match lake.get_versioned(key).await? {
        None => Ok(None),
        Some((bytes, version)) => serde_json::from_slice(&bytes)
            .map(|doc| Some((doc, version)))
            .map_err(|e| LakeError::Corrupt {
                key: key.to_owned(),
                message: e.to_string(),
            }),
    }
}

/// Write a state document if `condition` holds.
pub async fn write_if<T: Serialize>(
    lake: &dyn Lake,
    key: &str,
    doc: &T,
    condition: &PutCondition,
) -> Result<Version, LakeError> {
    let body = Bytes::from(serde_json::to_vec_pretty(doc).expect("state documents serialise"));
    lake.put_if(key, body, condition).await
}

fn condition(version: Option<Version>) -> PutCondition {
    version.map_or(PutCondition::Absent, PutCondition::Matches)
}

// ---------------------------------------------------------------------------------------------
// the run lease

/// `state/lease.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub run_id: RunId,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Set when the holder finished (published, or gave up cleanly).
    #[serde(default)]
    pub released: bool,
}

impl Lease {
    /// Whether this lease keeps `run` out at `now`.
    pub fn excludes(&self, run: &RunId, now: DateTime<Utc>) -> bool {
        self.run_id != *run && !self.released && self.expires_at > now
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum LeaseOutcome {
    /// `run` holds the lease until `expires_at` (a retry of the same run renews it).
    Acquired(Lease),
    /// Another run holds it: this execution must not run the stages.
    Held(Lease),
}

/// Take the lease for `run` for `ttl`, unless another run holds an unexpired one.
pub async fn acquire_lease(
    lake: &dyn Lake,
    run: &RunId,
    ttl: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<LeaseOutcome, LakeError> {
    for attempt in 0..CAS_ATTEMPTS {
        let current = read::<Lease>(lake, LEASE).await?;
        if let Some((lease, _)) = &current
            && lease.excludes(run, now)
        {
            return Ok(LeaseOutcome::Held(lease.clone()));
        }
        let lease = Lease {
            run_id: run.clone(),
            acquired_at: now,
            expires_at: now + ttl,
            released: false,
        };
        match write_if(lake, LEASE, &lease, &condition(current.map(|(_, v)| v))).await {
            Ok(_) => return Ok(LeaseOutcome::Acquired(lease)),
            Err(LakeError::Conflict { .. }) => backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(LakeError::Conflict {
        key: LEASE.to_owned(),
    })
}

/// The run that holds the lease now, when it is not `run` (a run that lost its lease after
/// it expired must stop writing state).
pub async fn lease_taken_by(lake: &dyn Lake, run: &RunId) -> Result<Option<RunId>, LakeError> {
    Ok(read::<Lease>(lake, LEASE)
        .await?
        .map(|(lease, _)| lease)
        .filter(|lease| lease.run_id != *run && !lease.released)
        .map(|lease| lease.run_id))
}

/// Give the lease back, if `run` still holds it.
pub async fn release_lease(lake: &dyn Lake, run: &RunId) -> Result<(), LakeError> {
    for attempt in 0..CAS_ATTEMPTS {
        let Some((mut lease, version)) = read::<Lease>(lake, LEASE).await? else {
            return Ok(());
        };
        if lease.run_id != *run || lease.released {
            return Ok(());
        }
        lease.released = true;
        match write_if(lake, LEASE, &lease, &PutCondition::Matches(version)).await {
            Ok(_) => return Ok(()),
            Err(LakeError::Conflict { .. }) => backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// the commit a run builds on

/// `state/runs/run=<id>/base.json`: the live commit when the run first started. Its rows are
/// the ones the run carries over; its watermark is where the run's extract starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunBase {
    pub run_id: RunId,
    /// The base commit's sequence (0: nothing was live).
    pub sequence: u64,
    /// The live run of the base commit, whose cleaned/ holds every row of that snapshot.
    pub live_run: Option<RunId>,
    /// Rows of the base snapshot.
    pub rows: u64,
    pub watermark: Option<String>,
    /// The run's logical start time (fixed on the first attempt).
    pub started_at: DateTime<Utc>,
    /// The base snapshot itself (its buckets and their files), when one was live.
    #[serde(default)]
    pub snapshot: Option<Manifest>,
}

/// The base of `run` if the run has started (read only; [`run_base`] fixes it).
pub async fn read_run_base(lake: &dyn Lake, run: &RunId) -> Result<Option<RunBase>, LakeError> {
    Ok(read::<RunBase>(lake, &run_record_key(run, "base"))
        .await?
        .map(|(b, _)| b))
}

/// The base of `run`: fixed on its first call, read back on every later one.
pub async fn run_base(
    lake: &dyn Lake,
    run: &RunId,
    now: DateTime<Utc>,
) -> Result<RunBase, LakeError> {
    let key = run_record_key(run, "base");
    if let Some((base, _)) = read::<RunBase>(lake, &key).await? {
        return Ok(base);
    }
    let live = read_pointer(lake).await?.map(|(m, _)| m);
    let base = RunBase {
        run_id: run.clone(),
        sequence: live.as_ref().map_or(0, |m| m.sequence),
        live_run: live.as_ref().map(|m| m.run_id.clone()),
        rows: live.as_ref().map_or(0, |m| m.rows),
        watermark: live.as_ref().and_then(|m| m.watermark.clone()),
        // Microsecond precision: what Parquet timestamps keep.
        started_at: DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now),
        snapshot: live,
    };
    match write_if(lake, &key, &base, &PutCondition::Absent).await {
        Ok(_) => Ok(base),
        // Another attempt of the same run recorded it first: use that one.
        Err(LakeError::Conflict { .. }) => read::<RunBase>(lake, &key)
            .await?
            .map(|(b, _)| b)
            .ok_or(LakeError::NotFound(key)),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// what transform wrote

/// One cleaned file and the rows it must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanedPart {
    pub key: String,
    pub rows: u64,
}

/// How the run changed the dataset. `total = previous + new - deleted - removed_by_reject -
/// erased`, and `carried = previous - updated - deleted - removed_by_reject - erased`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeCounts {
    /// Rows of the base snapshot.
    pub previous: u64,
    /// Valid rows of reviews the base did not hold.
    pub new: u64,
    /// Valid rows that replace a review the base held.
    pub updated: u64,
    /// Reviews of the base deleted at the source (tombstones).
    pub deleted: u64,
    /// Reviews of the base whose new version was rejected: the old text is no longer served.
    pub removed_by_reject: u64,
    /// Reviews of the base whose buyer asked for erasure since.
    pub erased: u64,
    /// Reviews of the base kept as they were.
    pub carried: u64,
    /// Rows of this run rejected (they are in rejects/).
    pub rejected: u64,
    /// Rows in this run's cleaned/: `new + updated + carried`.
    pub total: u64,
}

impl ChangeCounts {
    /// Add another bucket's counts to these.
    pub fn add(&mut self, other: &ChangeCounts) {
        self.previous += other.previous;
        self.new += other.new;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.removed_by_reject += other.removed_by_reject;
        self.erased += other.erased;
        self.carried += other.carried;
        self.rejected += other.rejected;
        self.total += other.total;
    }

    /// Whether the counts add up.
    pub fn balanced(&self) -> bool {
        let removed = self.deleted + self.removed_by_reject + self.erased;
        self.total == self.new + self.updated + self.carried
            && self.previous == self.carried + self.updated + removed
    }
}

/// `state/runs/run=<id>/cleaned.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanedRecord {
    pub run_id: RunId,
    pub base_sequence: u64,
    pub parts: Vec<CleanedPart>,
    pub counts: ChangeCounts,
    /// How many erased buyers the rows were filtered against.
    pub erased_buyers: u64,
}

pub async fn read_cleaned_record(
    lake: &dyn Lake,
    run: &RunId,
) -> Result<Option<CleanedRecord>, LakeError> {
    Ok(read(lake, &run_record_key(run, "cleaned"))
        .await?
        .map(|(r, _)| r))
}

/// Record what transform wrote (a re-run of the same run rewrites it).
pub async fn write_cleaned_record(
    lake: &dyn Lake,
    record: &CleanedRecord,
) -> Result<(), LakeError> {
    let key = run_record_key(&record.run_id, "cleaned");
    let body = serde_json::to_vec_pretty(record).expect("serialises");
    lake.put(&key, body.into()).await
}

// ---------------------------------------------------------------------------------------------
// the incremental steps: route (per raw part), plan, merge (per bucket)

/// Valid rows of one raw part in one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeFile {
    pub bucket: u32,
    pub key: String,
    pub rows: u64,
}

/// `state/runs/run=<id>/route-<part>.json`: what routing one raw part wrote. Written last by
/// the route step, so a part without one was not routed (or died on the way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRecord {
    pub run_id: RunId,
    pub part: usize,
    pub raw_key: String,
    pub buckets: u32,
    pub rows_in: u64,
    pub cleaned: u64,
    pub rejected: u64,
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
    pub rejects_key: String,
    pub changes: Vec<ChangeFile>,
    /// Review ids of rejected rows, by the bucket of their product (`None`: the row has no
    /// usable product id, so its earlier version may be in any bucket).
    pub rejected_ids: Vec<(Option<u32>, String)>,
    /// How many erased buyers the rows were filtered against.
    pub erased_buyers: u64,
}

pub fn route_record_key(run: &RunId, part: usize) -> String {
    run_record_key(run, &format!("route-{part:05}"))
}

/// Where one bucket's carried rows come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseFile {
    pub cleaned_key: String,
    /// The base's curated file of the bucket: topic scores are reused from it for reviews
    /// whose text did not change. `None` after a re-bucketing.
    pub curated_key: Option<String>,
    pub rows: u64,
}

/// `state/runs/run=<id>/tasks/bucket=<b>.json`: everything one bucket's merge needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketTask {
    pub run_id: RunId,
    pub bucket: u32,
    pub buckets: u32,
    /// The bucket's rows in the base snapshot (none: the bucket starts empty).
    pub base: Option<BaseFile>,
    /// The run's valid rows in this bucket, in part order.
    pub changes: Vec<ChangeFile>,
    /// Review ids deleted at the source that may be in this bucket.
    pub deleted: Vec<String>,
    /// Review ids whose new version was rejected, that may be in this bucket.
    pub rejected: Vec<String>,
}

pub fn bucket_task_key(run: &RunId, bucket: u32) -> String {
    format!("state/runs/run={run}/tasks/bucket={bucket:05}.json")
}

/// `state/runs/run=<id>/plan.json`: which buckets the run rewrites, and the totals of its
/// routed parts. Written last by the plan step; the ItemReader list of the bucket Map is
/// beside it ([`plan_items_key`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub run_id: RunId,
    pub base_sequence: u64,
    pub buckets: u32,
    /// Buckets the run rewrites, ascending; every other bucket is referenced from the base.
    pub changed: Vec<u32>,
    /// The run carries the base snapshot's rows: buckets it does not rewrite are referenced
    /// from the base. False for a full load, which replaces the dataset.
    pub carry_base: bool,
    /// Why every bucket is rewritten, when it is (a full load, a new bucket count, an
    /// erasure, a removal of unknown product).
    pub full_pass: Option<String>,
    pub rows_in: u64,
    pub cleaned: u64,
    pub rejected: u64,
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
    pub rejects_keys: Vec<String>,
    pub deleted: u64,
    pub erased_buyers: u64,
}

pub fn plan_key(run: &RunId) -> String {
    run_record_key(run, "plan")
}

/// The JSON array of `{run_id, bucket}` items the state machine's Distributed Map reads.
pub fn plan_items_key(run: &RunId) -> String {
    run_record_key(run, "plan-items")
}

/// `state/runs/run=<id>/bucket-<b>.json`: what the merge of one bucket wrote (written last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub run_id: RunId,
    pub bucket: u32,
    /// The bucket's files; `None` when no row is left in it.
    pub file: Option<crate::manifest::BucketFile>,
    /// The bucket's change counts (`rejected` stays 0: rejects are counted per part).
    pub counts: ChangeCounts,
    /// Reviews classified by the model in this run / reused from the base by unchanged text.
    pub encoded: u64,
    pub reused: u64,
}

pub fn bucket_record_key(run: &RunId, bucket: u32) -> String {
    run_record_key(run, &format!("bucket-{bucket:05}"))
}

/// Read a state document that must exist.
pub async fn read_required<T: DeserializeOwned>(
    lake: &dyn Lake,
    key: &str,
) -> Result<T, LakeError> {
    read::<T>(lake, key)
        .await?
        .map(|(doc, _)| doc)
        .ok_or_else(|| LakeError::NotFound(key.to_owned()))
}

/// Write a run's own record (a retry of the same step rewrites it).
pub async fn write_record<T: Serialize>(
    lake: &dyn Lake,
    key: &str,
    doc: &T,
) -> Result<(), LakeError> {
    let body = serde_json::to_vec_pretty(doc).expect("state documents serialise");
    lake.put(key, body.into()).await
}

// ---------------------------------------------------------------------------------------------
// the commit point

/// The live snapshot with its version, if anything was published.
pub async fn read_pointer(lake: &dyn Lake) -> Result<Option<(Manifest, Version)>, LakeError> {
    read(lake, POINTER).await
}

/// What [`commit`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum CommitOutcome {
    /// The snapshot is live now, at this sequence.
    Committed(Manifest),
    /// The same run with the same content already was live: nothing written (a re-run).
    AlreadyLive(Manifest),
    /// Refused: the live snapshot is not the one this run was built on (another run
    /// published since). Nothing written; the source rows are extracted again next run,
    /// because the watermark did not move.
    Stale { live: Box<Manifest> },
}

/// Make `snapshot` live if the live commit is still the one it was built on
/// (`snapshot.base_sequence`), or is an earlier publish of the same run on the same base.
/// The write is conditional on the pointer's version, so of two racing publishes one wins and
/// the other is [`CommitOutcome::Stale`].
pub async fn commit(lake: &dyn Lake, snapshot: &Manifest) -> Result<CommitOutcome, LakeError> {
    for attempt in 0..CAS_ATTEMPTS {
        let current = read_pointer(lake).await?;
        let next = match &current {
            None if snapshot.base_sequence == 0 => 1,
            None => {
                return Err(LakeError::Corrupt {
                    key: POINTER.to_owned(),
                    message: format!(
                        "run {} was built on commit {} but nothing is live",
                        snapshot.run_id, snapshot.base_sequence
                    ),
                });
            }
            Some((live, _)) => {
                if live.run_id == snapshot.run_id && live.checksum == snapshot.checksum {
                    return Ok(CommitOutcome::AlreadyLive(live.clone()));
                }
                let on_base = live.sequence == snapshot.base_sequence;
                let replaces_itself =
                    live.run_id == snapshot.run_id && live.base_sequence == snapshot.base_sequence;
                if !on_base && !replaces_itself {
                    return Ok(CommitOutcome::Stale {
                        live: Box::new(live.clone()),
                    });
                }
                live.sequence + 1
            }
        };
        let mut live = snapshot.clone();
        live.sequence = next;
        match write_if(lake, POINTER, &live, &condition(current.map(|(_, v)| v))).await {
            Ok(_) => return Ok(CommitOutcome::Committed(live)),
            Err(LakeError::Conflict { .. }) => backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(LakeError::Conflict {
        key: POINTER.to_owned(),
    })
}

/// Make an earlier snapshot live again (rollback): a new commit on top of the live one, with
/// the earlier snapshot's rows *and* watermark, so the next run extracts again what came
/// after it.
pub async fn commit_rollback(lake: &dyn Lake, earlier: &Manifest) -> Result<Manifest, LakeError> {
    for attempt in 0..CAS_ATTEMPTS {
        let current = read_pointer(lake).await?;
        let mut live = earlier.clone();
        let on = current.as_ref().map_or(0, |(m, _)| m.sequence);
        live.base_sequence = on;
        live.sequence = on + 1;
        match write_if(lake, POINTER, &live, &condition(current.map(|(_, v)| v))).await {
            Ok(_) => return Ok(live),
            Err(LakeError::Conflict { .. }) => backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(LakeError::Conflict {
        key: POINTER.to_owned(),
    })
}

// ---------------------------------------------------------------------------------------------
// erasure

/// The erased buyers (empty when nobody asked).
pub async fn read_erased_buyers(lake: &dyn Lake) -> Result<BTreeSet<String>, LakeError> {
    Ok(read::<BTreeSet<String>>(lake, ERASED_BUYERS)
        .await?
        .map(|(list, _)| list)
        .unwrap_or_default())
}

/// Add a buyer to the erased list; false when already there. Concurrent additions all land.
pub async fn add_erased_buyer(lake: &dyn Lake, buyer: &str) -> Result<bool, LakeError> {
    for attempt in 0..CAS_ATTEMPTS {
        let current = read::<BTreeSet<String>>(lake, ERASED_BUYERS).await?;
        let (mut list, version) = match current {
            Some((list, v)) => (list, Some(v)),
            None => (BTreeSet::new(), None),
        };
        if !list.insert(buyer.to_owned()) {
            return Ok(false);
        }
        match write_if(lake, ERASED_BUYERS, &list, &condition(version)).await {
            Ok(_) => return Ok(true),
            Err(LakeError::Conflict { .. }) => backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(LakeError::Conflict {
        key: ERASED_BUYERS.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reviews_stores::LocalLake;
    use std::sync::Arc;

    fn run(s: &str) -> RunId {
        RunId::parse(s).unwrap()
    }

    fn snapshot(r: &str, base_sequence: u64, checksum: &str) -> Manifest {
        Manifest {
            dataset: "curated".into(),
            schema_version: 1,
            run_id: run(r),
            keys: vec![],
            rows: 1,
            products: 1,
            checksum: checksum.into(),
            part_checksums: vec![],
            topics: vec![],
            created_at: Utc::now(),
            sequence: 0,
            base_sequence,
            watermark: Some(format!("after-{r}")),
            erased_buyers: 0,
            buckets: 0,
            bucket_files: vec![],
        }
    }

    #[tokio::test]
    async fn conditional_writes_on_the_local_lake() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LocalLake::new(dir.path());
        let v1 = lake
            .put_if("state/x.json", "1".into(), &PutCondition::Absent)
            .await
            .unwrap();
        assert!(matches!(
            lake.put_if("state/x.json", "2".into(), &PutCondition::Absent)
                .await,
            Err(LakeError::Conflict { .. })
        ));
        let v2 = lake
            .put_if(
                "state/x.json",
                "2".into(),
                &PutCondition::Matches(v1.clone()),
            )
            .await
            .unwrap();
        assert!(matches!(
            lake.put_if("state/x.json", "3".into(), &PutCondition::Matches(v1))
                .await,
            Err(LakeError::Conflict { .. })
        ));
        let (body, v) = lake.get_versioned("state/x.json").await.unwrap().unwrap();
        assert_eq!((&body[..], v), (&b"2"[..], v2));
        assert!(lake.get_versioned("state/none").await.unwrap().is_none());
        // Lock files are hidden from listings.
        assert_eq!(lake.list("state/").await.unwrap(), vec!["state/x.json"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_compare_and_swap_loses_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let lake = lake.clone();
            tasks.spawn(async move { add_erased_buyer(lake.as_ref(), &format!("B{i}")).await });
        }
        while let Some(r) = tasks.join_next().await {
            assert!(r.unwrap().unwrap());
        }
        assert_eq!(read_erased_buyers(lake.as_ref()).await.unwrap().len(), 16);
    }

    #[tokio::test]
    async fn commits_move_forward_only() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LocalLake::new(dir.path());
        let a = snapshot("a", 0, "ca");
        let CommitOutcome::Committed(live) = commit(&lake, &a).await.unwrap() else {
            panic!("first commit")
        };
        assert_eq!(live.sequence, 1);
        // The same run again: nothing written.
        assert!(matches!(
            commit(&lake, &a).await.unwrap(),
            CommitOutcome::AlreadyLive(_)
        ));
        // Two runs built on commit 1: the first wins, the second is stale.
        let b = snapshot("b", 1, "cb");
        let c = snapshot("c", 1, "cc");
        assert!(matches!(
            commit(&lake, &b).await.unwrap(),
            CommitOutcome::Committed(m) if m.sequence == 2
        ));
        assert!(matches!(
            commit(&lake, &c).await.unwrap(),
            CommitOutcome::Stale { live } if live.run_id == run("b")
        ));
        // b re-run on the same base with other content replaces itself.
        let b2 = snapshot("b", 1, "cb2");
        assert!(matches!(
            commit(&lake, &b2).await.unwrap(),
            CommitOutcome::Committed(m) if m.sequence == 3
        ));
        // Rollback to a: a new commit with a's watermark.
        let back = commit_rollback(&lake, &a).await.unwrap();
        assert_eq!((back.sequence, back.base_sequence), (4, 3));
        let (live, _) = read_pointer(&lake).await.unwrap().unwrap();
        assert_eq!(live.watermark.as_deref(), Some("after-a"));
    }

    #[tokio::test]
    async fn the_lease_keeps_a_second_run_out_until_released_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LocalLake::new(dir.path());
        let now = Utc::now();
        let hour = chrono::Duration::hours(1);
        assert!(matches!(
            acquire_lease(&lake, &run("a"), hour, now).await.unwrap(),
            LeaseOutcome::Acquired(_)
        ));
        // A retry of the same run renews it; another run is kept out.
        assert!(matches!(
            acquire_lease(&lake, &run("a"), hour, now).await.unwrap(),
            LeaseOutcome::Acquired(_)
        ));
        assert!(matches!(
            acquire_lease(&lake, &run("b"), hour, now).await.unwrap(),
            LeaseOutcome::Held(l) if l.run_id == run("a")
        ));
        // Expired: b takes over, and a learns it lost the lease.
        let later = now + chrono::Duration::hours(2);
        assert!(matches!(
            acquire_lease(&lake, &run("b"), hour, later).await.unwrap(),
            LeaseOutcome::Acquired(_)
        ));
        assert_eq!(
            lease_taken_by(&lake, &run("a")).await.unwrap(),
            Some(run("b"))
        );
        // Released: the next run goes at once.
        release_lease(&lake, &run("b")).await.unwrap();
        assert!(matches!(
            acquire_lease(&lake, &run("c"), hour, later).await.unwrap(),
            LeaseOutcome::Acquired(_)
        ));
    }

    #[tokio::test]
    async fn a_run_base_is_fixed_on_the_first_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LocalLake::new(dir.path());
        let first = run_base(&lake, &run("r"), Utc::now()).await.unwrap();
        assert_eq!((first.sequence, first.live_run.clone()), (0, None));
        commit(&lake, &snapshot("a", 0, "x")).await.unwrap();
        let again = run_base(&lake, &run("r"), Utc::now()).await.unwrap();
        assert_eq!(again, first);
        let other = run_base(&lake, &run("s"), Utc::now()).await.unwrap();
        assert_eq!(other.live_run, Some(run("a")));
        assert_eq!(other.watermark.as_deref(), Some("after-a"));
    }

    #[test]
    fn change_counts_balance() {
        let c = ChangeCounts {
            previous: 10,
            new: 3,
            updated: 2,
            deleted: 1,
            removed_by_reject: 1,
            erased: 1,
            carried: 5,
            rejected: 4,
            total: 10,
        };
        assert!(c.balanced());
        assert!(!ChangeCounts { carried: 6, ..c }.balanced());
    }
}
