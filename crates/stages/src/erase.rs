//! The right to erasure, complete: one workflow that the CLI (`reviews erase`) and the erase
//! Lambda (`functions/erase`) both run.
//!
//! 1. The buyer goes on `state/erased_buyers.json` first, by compare-and-swap
//!    ([`state::add_erased_buyer`]): from then on extract writes their rows redacted, no
//!    transform admits them, the archive stage skips them, and no publish of a run planned
//!    before the erasure goes through.
//! 2. The erasure takes the run lease, so that no pipeline run writes while it scrubs (another
//!    erasure holding it is waited for; a pipeline run holding it is a [`StageError::LeaseHeld`]:
//!    nothing is lost, erase again once the run is done).
//! 3. The archive's documents of the buyer are deleted (required: the caller must explicitly
//!    waive it, and the report then says the erasure is incomplete).
//! 4. Every object of the lake is scrubbed of every erased buyer ([`scrub`]): raw/ rows are
//!    redacted to their review id, rejects/ rows keep the review id and reason only, cleaned/
//!    and curated/ rows are removed (curated rows have no buyer column: they go by the review
//!    ids of the cleaned rows removed), bucket product directories are rebuilt; then every
//!    document that records a rewritten file's checksum or row count (the live pointer, each
//!    run's `_manifest.json` kept for rollback, the runs' base snapshots and records) is
//!    updated to match, and the live pointer and every updated manifest are verified.
//! 5. `state/last_erasure.json` records when, and whether the lake was scrubbed: rollback to
//!    an earlier run is refused only while a scrub is unfinished.
//!
//! A process that dies mid-way leaves the buyer on the list, and a journal
//! (`state/erasure/pending.json`: review ids and object keys, never a buyer id) of what it was
//! rewriting: erasing again (the same buyer, or any other) finishes the job, because the scrub
//! always covers every buyer on the list and first replays the journal.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use arrow_array::{Array, BooleanArray, RecordBatch, StringArray};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use reviews_domain::clean::is_plausible_id;
use reviews_domain::schema::{SCHEMA_METADATA_KEY, batch_to_curated, batch_to_raw, raw_to_batch};
use reviews_lake::manifest::{BucketFile, Manifest, ProductDirectory};
use reviews_lake::parquet_io::{Dataset, ParquetBuffer, parquet_info, read_columns, read_parquet};
use reviews_lake::state::{
    self, BucketRecord, BucketTask, CleanedRecord, LeaseOutcome, RouteRecord, RunBase,
};
use reviews_lake::{Lake, LakeError, PutCondition, RunId, layout};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use reviews_ports::RawArchive;

use crate::error::StageError;

pub use state::{ERASURE_JOURNAL as JOURNAL_KEY, LAST_ERASURE as LAST_ERASURE_KEY, LastErasure};
/// How long an erasure holds the run lease: longer than a scrub (and than the Lambda's
/// 15-minute limit), short enough that a dead erasure does not keep the schedule out long.
pub const DEFAULT_ERASE_LEASE_TTL: Duration = Duration::from_secs(30 * 60);
/// How long an erasure waits for another erasure's lease before giving up.
pub const DEFAULT_LEASE_WAIT: Duration = Duration::from_secs(120);
/// Lease holders whose id starts with this are erasures (waited for, not refused).
const ERASURE_LEASE_PREFIX: &str = "erasure-";

/// The last erasure, if any.
pub async fn last_erasure(lake: &dyn Lake) -> Result<Option<LastErasure>, StageError> {
    Ok(state::read::<LastErasure>(lake, LAST_ERASURE_KEY)
        .await?
        .map(|(d, _)| d))
}

/// What to do about the archive: erase from it, or (explicitly) not.
#[derive(Clone, Copy)]
pub enum ArchiveStep<'a> {
    /// Delete the buyer's documents from the archive port (MongoDB: `reviews_archive::Archive`).
    Erase(&'a dyn RawArchive),
    /// The caller waived the archive: the report says the erasure is incomplete.
    Waived,
}

#[derive(Debug, Clone)]
pub struct EraseOptions {
    pub lease_ttl: Duration,
    /// How long to wait while another erasure holds the lease.
    pub lease_wait: Duration,
}

impl Default for EraseOptions {
    fn default() -> Self {
        Self {
            lease_ttl: DEFAULT_ERASE_LEASE_TTL,
            lease_wait: DEFAULT_LEASE_WAIT,
        }
    }
}

/// What one scrub of the lake did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubReport {
    /// Buyers on the erased list, all scrubbed.
    pub erased_buyers: u64,
    pub objects_scanned: u64,
    pub objects_rewritten: u64,
    pub objects_deleted: u64,
    /// raw/ rows reduced to their review id.
    pub raw_rows_redacted: u64,
    /// rejects/ rows reduced to their review id and reason.
    pub rejects_redacted: u64,
    pub cleaned_rows_removed: u64,
    pub curated_rows_removed: u64,
    /// Manifests and run records updated to the rewritten files' checksums and counts.
    pub references_updated: u64,
    /// Manifests checked against their files after the scrub (the live one included).
    pub manifests_verified: u64,
    /// Earlier versions of rewritten objects removed (S3 with versioning keeps them).
    pub versions_deleted: u64,
    /// An unfinished earlier scrub was found and finished.
    pub resumed: bool,
}

/// What [`erase`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseReport {
    pub buyer: String,
    /// False when the buyer was already on the list (an erasure run again).
    pub newly_recorded: bool,
    /// Archive documents deleted; `None` when the archive step was waived.
    pub archive_documents_deleted: Option<u64>,
    pub archive_skipped: bool,
    pub scrub: ScrubReport,
    /// The live snapshot after the erasure (the same run, its files scrubbed).
    pub live_run: Option<RunId>,
    pub live_rows_before: Option<u64>,
    pub live_rows_after: Option<u64>,
    /// The buyer is gone from the lake and the archive.
    pub complete: bool,
}

/// A buyer id as given: trimmed, 1 to 128 printable characters.
pub fn validate_buyer(buyer: &str) -> Result<String, StageError> {
    let buyer = buyer.trim();
    if buyer.is_empty() || buyer.len() > 128 || buyer.chars().any(char::is_control) {
        return Err(StageError::Input(
            "buyer_id: give the buyer id (1-128 printable characters)".into(),
        ));
    }
    Ok(buyer.to_owned())
}

/// Erase a buyer from the lake (every object, every run) and the archive. See the module
/// documentation for the steps and what a re-run after a failure does.
pub async fn erase(
    lake: &dyn Lake,
    buyer: &str,
    archive: ArchiveStep<'_>,
    options: &EraseOptions,
) -> Result<EraseReport, StageError> {
    let buyer = validate_buyer(buyer)?;
    // The list first: from now on nothing admits the buyer, whatever happens next.
    let newly_recorded = state::add_erased_buyer(lake, &buyer).await?;
    let at = Utc::now();
    state::write_record(
        lake,
        LAST_ERASURE_KEY,
        &LastErasure {
            at,
            lake_scrubbed: false,
        },
    )
    .await?;
    // Unique per call, so that two erasures never share the lease.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let holder = RunId::parse(&format!(
        "{ERASURE_LEASE_PREFIX}{}-{}-{call}",
        at.format("%Y%m%dT%H%M%S%.6f"),
        std::process::id()
    ))
    .map_err(StageError::Internal)?;
    take_lease(lake, &holder, options).await?;
    let result = erase_holding_lease(lake, &buyer, newly_recorded, archive, at).await;
    let released = state::release_lease(lake, &holder).await;
    let report = result?;
    released?;
    Ok(report)
}

async fn take_lease(
    lake: &dyn Lake,
    holder: &RunId,
    options: &EraseOptions,
) -> Result<(), StageError> {
    let ttl = chrono::Duration::from_std(options.lease_ttl)
        .map_err(|e| StageError::Input(format!("lease duration: {e}")))?;
    let deadline = std::time::Instant::now() + options.lease_wait;
    loop {
        match state::acquire_lease(lake, holder, ttl, Utc::now()).await? {
            LeaseOutcome::Acquired(_) => return Ok(()),
            LeaseOutcome::Held(lease)
                if lease.run_id.as_str().starts_with(ERASURE_LEASE_PREFIX)
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            LeaseOutcome::Held(lease) => {
                return Err(StageError::LeaseHeld {
                    holder: lease.run_id,
                    expires_at: lease.expires_at,
                });
            }
        }
    }
}

async fn erase_holding_lease(
    lake: &dyn Lake,
    buyer: &str,
    newly_recorded: bool,
    archive: ArchiveStep<'_>,
    at: DateTime<Utc>,
) -> Result<EraseReport, StageError> {
    let archive_documents_deleted = match archive {
        ArchiveStep::Erase(a) => Some(a.erase_buyer(buyer).await?),
        ArchiveStep::Waived => None,
    };
    let live_rows_before = state::read_pointer(lake).await?.map(|(m, _)| m.rows);
    let erased = state::read_erased_buyers(lake).await?;
    let scrub = scrub(lake, &erased).await?;
    let live = state::read_pointer(lake).await?.map(|(m, _)| m);
    // Scrubbed: unless a later erasure started meanwhile (it will record its own end).
    if let Some((doc, version)) = state::read::<LastErasure>(lake, LAST_ERASURE_KEY).await?
        && doc.at == at
    {
        let done = LastErasure {
            at,
            lake_scrubbed: true,
        };
        match state::write_if(
            lake,
            LAST_ERASURE_KEY,
            &done,
            &PutCondition::Matches(version),
        )
        .await
        {
            Ok(_) | Err(LakeError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(
        erased_buyers = scrub.erased_buyers, rewritten = scrub.objects_rewritten,
        references = scrub.references_updated, archive = ?archive_documents_deleted,
        "erasure done"
    );
    Ok(EraseReport {
        buyer: buyer.to_owned(),
        newly_recorded,
        archive_skipped: archive_documents_deleted.is_none(),
        complete: archive_documents_deleted.is_some(),
        archive_documents_deleted,
        scrub,
        live_run: live.as_ref().map(|m| m.run_id.clone()),
        live_rows_before,
        live_rows_after: live.map(|m| m.rows),
    })
}

// ---------------------------------------------------------------------------------------------
// the scrub

/// `state/erasure/pending.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Journal {
    /// Review ids of cleaned rows of erased buyers, by the run whose cleaned/ held them: the
    /// curated rows of that run with those ids go too. Per run, because a review id is only
    /// known to be the erased buyer's in the run that read it so (a later run may hold the id
    /// under another buyer, whose row stays). `""`: a cleaned key outside any run.
    #[serde(default)]
    review_ids_by_run: BTreeMap<String, BTreeSet<String>>,
    /// Journals written before ids were kept per run: these apply to every run.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    review_ids: BTreeSet<String>,
    /// Objects rewritten or deleted whose references may not be updated yet.
    rewritten: BTreeSet<String>,
    /// Rows removed from each curated file (for snapshots from before buckets, whose
    /// manifests record no count per file).
    #[serde(default)]
    removed_rows: BTreeMap<String, u64>,
}

struct Scrubber<'a> {
    lake: &'a dyn Lake,
    erased: &'a BTreeSet<String>,
    journal: Journal,
    report: ScrubReport,
}

impl Scrubber<'_> {
    fn is_erased(&self, buyer: &str) -> bool {
        let b = buyer.trim();
        !b.is_empty() && self.erased.contains(b)
    }

    /// Note what is about to be rewritten, before rewriting it.
    async fn note(
        &mut self,
        key: &str,
        review_ids: impl IntoIterator<Item = String>,
    ) -> Result<(), StageError> {
        let before = self.journal.clone();
        let mut review_ids = review_ids.into_iter().peekable();
        if review_ids.peek().is_some() {
            let run = layout::run_of_key(key).map(|r| r.as_str().to_owned());
            self.journal
                .review_ids_by_run
                .entry(run.unwrap_or_default())
                .or_default()
                .extend(review_ids);
        }
        self.journal.rewritten.insert(key.to_owned());
        if self.journal != before {
            state::write_record(self.lake, JOURNAL_KEY, &self.journal).await?;
        }
        Ok(())
    }

    /// Whether the curated row `review_id` of the file `key` was derived from a removed
    /// cleaned row (of the same run).
    fn curated_row_erased(&self, key: &str, review_id: &str) -> bool {
        let j = &self.journal;
        let run = layout::run_of_key(key);
        j.review_ids.contains(review_id)
            || j.review_ids_by_run
                .get("")
                .is_some_and(|ids| ids.contains(review_id))
            || run.is_some_and(|r| {
                j.review_ids_by_run
                    .get(r.as_str())
                    .is_some_and(|ids| ids.contains(review_id))
            })
    }

    fn any_curated_row_erased(&self) -> bool {
        !self.journal.review_ids.is_empty()
            || self
                .journal
                .review_ids_by_run
                .values()
                .any(|v| !v.is_empty())
    }
}

/// Remove every buyer of `erased` from every object of the lake, keeping every reference to
/// a rewritten file consistent. Idempotent: objects that hold no erased buyer are left as
/// they are, and an earlier unfinished scrub is finished first.
pub async fn scrub(lake: &dyn Lake, erased: &BTreeSet<String>) -> Result<ScrubReport, StageError> {
    let journal = state::read::<Journal>(lake, JOURNAL_KEY)
        .await?
        .map(|(j, _)| j)
        .unwrap_or_default();
    let mut s = Scrubber {
        lake,
        erased,
        report: ScrubReport {
            erased_buyers: erased.len() as u64,
            resumed: journal != Journal::default(),
            ..Default::default()
        },
        journal,
    };
    if erased.is_empty() && !s.report.resumed {
        return Ok(s.report);
    }
    let skip = [state::ERASED_BUYERS, JOURNAL_KEY];
    let keys: Vec<String> = lake
        .list("")
        .await?
        .into_iter()
        .filter(|k| !skip.contains(&k.as_str()))
        .collect();
    // Everything but curated/ first: the cleaned rows removed name the curated rows to remove.
    let mut curated = Vec::new();
    let mut unhandled = Vec::new();
    for key in &keys {
        let bytes = match lake.get(key).await {
            Ok(b) => b,
            Err(LakeError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        s.report.objects_scanned += 1;
        if key.ends_with(".parquet") {
            match parquet_dataset(&bytes) {
                Some(Dataset::Raw) => scrub_raw(&mut s, key, bytes).await?,
                // A run's change files share the cleaned schema (and are found as cleaned).
                Some(Dataset::Cleaned | Dataset::Change) => {
                    scrub_cleaned(&mut s, key, bytes).await?
                }
                Some(Dataset::Curated) => curated.push(key.clone()),
                None => unhandled.push(key.clone()),
            }
        } else if key.ends_with(".csv") && is_rejects_csv(&bytes) {
            scrub_rejects(&mut s, key, &bytes).await?;
        } else if names_a_buyer(&bytes, erased) {
            unhandled.push(key.clone());
        }
    }
    for key in &curated {
        scrub_curated(&mut s, key).await?;
    }
    if !unhandled.is_empty() {
        // Nothing is left half-done: the journal stays, and the error names the objects.
        return Err(StageError::Validation(format!(
            "{} object(s) may hold an erased buyer in a format the erasure cannot rewrite: {}",
            unhandled.len(),
            unhandled.join(", ")
        )));
    }
    update_references(&mut s).await?;
    // Last, from the journal (so that a re-run after a failure still does it): the versions
    // a versioned bucket keeps of what was rewritten.
    for key in &s.journal.rewritten {
        s.report.versions_deleted += lake.delete_earlier_versions(key).await?;
    }
    lake.delete(JOURNAL_KEY).await?;
    Ok(s.report)
}

/// The dataset whose schema a Parquet file has, if any of the three.
fn parquet_dataset(bytes: &Bytes) -> Option<Dataset> {
    [Dataset::Raw, Dataset::Cleaned, Dataset::Curated]
        .into_iter()
        .find(|d| parquet_info(*d, bytes.clone()).is_ok())
}

/// The footer metadata to write again (the writer adds the schema id itself).
fn footer(dataset: Dataset, key: &str, bytes: &Bytes) -> Result<Vec<(String, String)>, StageError> {
    Ok(parquet_info(dataset, bytes.clone())
        .map_err(StageError::parquet(key))?
        .metadata
        .into_iter()
        .filter(|(k, _)| k != SCHEMA_METADATA_KEY)
        .collect())
}

fn encode(
    dataset: Dataset,
    key: &str,
    batches: &[RecordBatch],
    metadata: &[(String, String)],
) -> Result<Bytes, StageError> {
    let mut buf = ParquetBuffer::new(dataset).map_err(StageError::parquet(key))?;
    for b in batches.iter().filter(|b| b.num_rows() > 0) {
        buf.write(b).map_err(StageError::parquet(key))?;
    }
    let meta: Vec<(&str, String)> = metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    buf.finish(&meta).map_err(StageError::parquet(key))
}

fn string_column<'b>(
    batch: &'b RecordBatch,
    key: &str,
    name: &str,
) -> Result<&'b StringArray, StageError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| StageError::Validation(format!("{key}: no {name} column")))
}

/// raw/: the rows of erased buyers keep their review id and position only.
async fn scrub_raw(s: &mut Scrubber<'_>, key: &str, bytes: Bytes) -> Result<(), StageError> {
    let metadata = footer(Dataset::Raw, key, &bytes)?;
    let (batches, redacted) = tokio::task::block_in_place(|| {
        let mut redacted = 0u64;
        let mut out = Vec::new();
        for batch in read_parquet(Dataset::Raw, bytes).map_err(StageError::parquet(key))? {
            let mut rows = batch_to_raw(&batch).map_err(|e| StageError::Parquet {
                key: key.to_owned(),
                source: e.into(),
            })?;
            for row in &mut rows {
                if row.buyer_id.as_deref().is_some_and(|b| s.is_erased(b)) {
                    *row = row.redacted();
                    redacted += 1;
                }
            }
            out.push(raw_to_batch(&rows).map_err(|e| StageError::Internal(e.to_string()))?);
        }
        Ok::<_, StageError>((out, redacted))
    })?;
    if redacted == 0 {
        return Ok(());
    }
    s.note(key, []).await?;
    let body = encode(Dataset::Raw, key, &batches, &metadata)?;
    s.lake.put(key, body).await?;
    s.report.objects_rewritten += 1;
    s.report.raw_rows_redacted += redacted;
    Ok(())
}

/// cleaned/: the rows of erased buyers are removed (their review ids noted for curated/).
async fn scrub_cleaned(s: &mut Scrubber<'_>, key: &str, bytes: Bytes) -> Result<(), StageError> {
    let hit = tokio::task::block_in_place(|| {
        let cols = read_columns(Dataset::Cleaned, bytes.clone(), &["buyer_id"])
            .map_err(StageError::parquet(key))?;
        for b in &cols {
            let buyers = string_column(b, key, "buyer_id")?;
            if (0..b.num_rows()).any(|i| !buyers.is_null(i) && s.is_erased(buyers.value(i))) {
                return Ok(true);
            }
        }
        Ok::<_, StageError>(false)
    })?;
    if !hit {
        return Ok(());
    }
    let metadata = footer(Dataset::Cleaned, key, &bytes)?;
    let (kept, removed_ids) = tokio::task::block_in_place(|| {
        let mut kept = Vec::new();
        let mut removed = Vec::new();
        for batch in read_parquet(Dataset::Cleaned, bytes).map_err(StageError::parquet(key))? {
            let buyers = string_column(&batch, key, "buyer_id")?;
            let ids = string_column(&batch, key, "review_id")?;
            let keep: BooleanArray = (0..batch.num_rows())
                .map(|i| {
                    let erased = !buyers.is_null(i) && s.is_erased(buyers.value(i));
                    if erased {
                        removed.push(ids.value(i).to_owned());
                    }
                    Some(!erased)
                })
                .collect();
            kept.push(
                arrow_select::filter::filter_record_batch(&batch, &keep)
                    .map_err(|e| StageError::Internal(e.to_string()))?,
            );
        }
        Ok::<_, StageError>((kept, removed))
    })?;
    let removed = removed_ids.len() as u64;
    s.note(key, removed_ids).await?;
    let body = encode(Dataset::Cleaned, key, &kept, &metadata)?;
    s.lake.put(key, body).await?;
    s.report.objects_rewritten += 1;
    s.report.cleaned_rows_removed += removed;
    Ok(())
}

/// curated/: rows whose review id was an erased buyer's are removed; the bucket's product
/// directory is rebuilt from the rows left; a bucket left empty is deleted.
async fn scrub_curated(s: &mut Scrubber<'_>, key: &str) -> Result<(), StageError> {
    if !s.any_curated_row_erased() {
        return Ok(());
    }
    let bytes = match s.lake.get(key).await {
        Ok(b) => b,
        Err(LakeError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let ids_of = |batch: &RecordBatch| -> Result<Vec<bool>, StageError> {
        let ids = string_column(batch, key, "review_id")?;
        Ok((0..batch.num_rows())
            .map(|i| s.curated_row_erased(key, ids.value(i)))
            .collect())
    };
    let hit = tokio::task::block_in_place(|| {
        let cols = read_columns(Dataset::Curated, bytes.clone(), &["review_id"])
            .map_err(StageError::parquet(key))?;
        for b in &cols {
            if ids_of(b)?.into_iter().any(|x| x) {
                return Ok(true);
            }
        }
        Ok::<_, StageError>(false)
    })?;
    if !hit {
        return Ok(());
    }
    let metadata = footer(Dataset::Curated, key, &bytes)?;
    let (kept, removed) = tokio::task::block_in_place(|| {
        let mut kept = Vec::new();
        let mut removed = 0u64;
        for batch in read_parquet(Dataset::Curated, bytes).map_err(StageError::parquet(key))? {
            let gone = ids_of(&batch)?;
            removed += gone.iter().filter(|g| **g).count() as u64;
            let keep: BooleanArray = gone.into_iter().map(|g| Some(!g)).collect();
            kept.push(
                arrow_select::filter::filter_record_batch(&batch, &keep)
                    .map_err(|e| StageError::Internal(e.to_string()))?,
            );
        }
        Ok::<_, StageError>((kept, removed))
    })?;
    let directory_key = key
        .strip_suffix(".parquet")
        .map(|k| format!("{k}.products.json"));
    let directory: Option<ProductDirectory> = match &directory_key {
        Some(d) => match s.lake.get(d).await {
            Ok(b) => Some(
                serde_json::from_slice(&b)
                    .map_err(|e| StageError::Validation(format!("{d}: {e}")))?,
            ),
            Err(LakeError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    *s.journal.removed_rows.entry(key.to_owned()).or_default() += removed;
    s.note(key, []).await?;
    if let Some(d) = &directory_key
        && directory.is_some()
    {
        s.note(d, []).await?;
    }
    s.report.curated_rows_removed += removed;
    let rows_left: usize = kept.iter().map(RecordBatch::num_rows).sum();
    if rows_left == 0 {
        s.lake.delete(key).await?;
        s.report.objects_deleted += 1;
        if let (Some(d), Some(_)) = (&directory_key, &directory) {
            s.lake.delete(d).await?;
            s.report.objects_deleted += 1;
        }
        return Ok(());
    }
    let body = encode(Dataset::Curated, key, &kept, &metadata)?;
    if let (Some(d), Some(dir)) = (&directory_key, &directory) {
        let mut rows = Vec::with_capacity(rows_left);
        for b in &kept {
            rows.extend(batch_to_curated(b).map_err(|e| StageError::Parquet {
                key: key.to_owned(),
                source: e.into(),
            })?);
        }
        let rebuilt = crate::bucket::product_directory(dir.bucket, &rows);
        s.lake
            .put(d, serde_json::to_vec(&rebuilt).expect("serialises").into())
            .await?;
        s.report.objects_rewritten += 1;
    }
    s.lake.put(key, body).await?;
    s.report.objects_rewritten += 1;
    Ok(())
}

fn is_rejects_csv(bytes: &[u8]) -> bool {
    let mut rd = csv::ReaderBuilder::new().from_reader(bytes);
    rd.headers()
        .is_ok_and(|h| h.iter().eq(crate::rejects::header()))
}

/// A rejects cell as written (a leading `'` defuses a formula).
fn cell_value(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

/// rejects/: the rows of erased buyers keep the review id, the source position and the
/// reason only (the reason as it was: the run's counts by reason stay true).
async fn scrub_rejects(s: &mut Scrubber<'_>, key: &str, bytes: &[u8]) -> Result<(), StageError> {
    let header = crate::rejects::header();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .expect("known column")
    };
    let (buyer, position, defect, reason) = (
        col("buyer_id"),
        col("source_position"),
        col("read_defect"),
        col("reason"),
    );
    let bad = |e: csv::Error| StageError::Validation(format!("{key}: {e}"));
    let mut rd = csv::ReaderBuilder::new().from_reader(bytes);
    let mut records = Vec::new();
    let mut redacted = 0u64;
    for rec in rd.records() {
        let rec = rec.map_err(bad)?;
        if rec.get(buyer).is_some_and(|b| s.is_erased(cell_value(b))) {
            let mut out = vec![String::new(); header.len()];
            out[0] = rec.get(0).unwrap_or_default().to_owned();
            out[position] = rec.get(position).unwrap_or_default().to_owned();
            out[defect] = reviews_domain::record::ERASED_DEFECT.to_owned();
            out[reason] = rec.get(reason).unwrap_or_default().to_owned();
            records.push(csv::StringRecord::from(out));
            redacted += 1;
        } else {
            records.push(rec);
        }
    }
    if redacted == 0 {
        return Ok(());
    }
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record(&header).map_err(bad)?;
    for r in &records {
        w.write_record(r).map_err(bad)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| StageError::Internal(e.to_string()))?;
    s.note(key, []).await?;
    s.lake.put(key, body.into()).await?;
    s.report.objects_rewritten += 1;
    s.report.rejects_redacted += redacted;
    Ok(())
}

/// Whether a text object names an erased buyer (as a whole identifier, so that a short id
/// does not match inside a checksum or a count).
pub fn names_a_buyer(bytes: &[u8], erased: &BTreeSet<String>) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let tokens: HashSet<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .filter(|t| !t.is_empty())
        .collect();
    erased.iter().any(|b| {
        if is_plausible_id(b) {
            tokens.contains(b.as_str())
        } else {
            text.contains(b.as_str())
        }
    })
}

// ---------------------------------------------------------------------------------------------
// references to rewritten files

/// A curated bucket file as it is now (`None`: deleted, its bucket is empty).
#[derive(Debug, Clone, PartialEq)]
struct CuratedNow {
    rows: u64,
    products: u64,
    checksum: String,
    directory_checksum: Option<String>,
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn get_optional(lake: &dyn Lake, key: &str) -> Result<Option<Bytes>, StageError> {
    match lake.get(key).await {
        Ok(b) => Ok(Some(b)),
        Err(LakeError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Update every manifest and run record that names a file of the journal, then verify the
/// manifests touched and the live one.
async fn update_references(s: &mut Scrubber<'_>) -> Result<(), StageError> {
    let lake = s.lake;
    let mut curated: BTreeMap<String, Option<CuratedNow>> = BTreeMap::new();
    let mut cleaned: BTreeMap<String, u64> = BTreeMap::new();
    for key in &s.journal.rewritten {
        if key.ends_with(".products.json") {
            continue; // with its curated file
        }
        let Some(bytes) = get_optional(lake, key).await? else {
            curated.insert(key.clone(), None);
            continue;
        };
        match parquet_dataset(&bytes) {
            Some(Dataset::Curated) => {
                let info = parquet_info(Dataset::Curated, bytes.clone())
                    .map_err(StageError::parquet(key))?;
                let dir_key = key
                    .strip_suffix(".parquet")
                    .map(|k| format!("{k}.products.json"));
                let dir = match &dir_key {
                    Some(d) => get_optional(lake, d).await?,
                    None => None,
                };
                let products = match &dir {
                    Some(d) => serde_json::from_slice::<ProductDirectory>(d)
                        .map_err(|e| StageError::Validation(format!("{key}: directory: {e}")))?
                        .products
                        .len() as u64,
                    None => distinct_products(key, &bytes)?,
                };
                curated.insert(
                    key.clone(),
                    Some(CuratedNow {
                        rows: info.rows,
                        products,
                        checksum: sha(&bytes),
                        directory_checksum: dir.as_deref().map(sha),
                    }),
                );
            }
            Some(Dataset::Cleaned) => {
                let info = parquet_info(Dataset::Cleaned, bytes.clone())
                    .map_err(StageError::parquet(key))?;
                cleaned.insert(key.clone(), info.rows);
            }
            _ => {} // raw/ and rejects/: row counts unchanged, nothing records a checksum
        }
    }
    let removed_rows = s.journal.removed_rows.clone();
    let patch_curated = |m: &mut Manifest| patch_manifest(m, &curated, &removed_rows);
    let mut touched: Vec<Manifest> = Vec::new();

    // Each run's manifest, kept for rollback.
    for key in lake.list("curated/").await? {
        if !key.ends_with("/_manifest.json") {
            continue;
        }
        if let Some(m) = patch_doc::<Manifest>(lake, &key, patch_curated).await? {
            touched.push(m);
            s.report.references_updated += 1;
        }
    }
    // The runs' own records.
    for key in lake.list(state::RUNS_PREFIX).await? {
        let name = key.rsplit('/').next().unwrap_or_default();
        let updated = if name == "base.json" {
            patch_doc::<RunBase>(lake, &key, |b| {
                let Some(m) = &mut b.snapshot else {
                    return false;
                };
                if !patch_manifest(m, &curated, &removed_rows) {
                    return false;
                }
                b.rows = m.rows;
                true
            })
            .await?
            .is_some()
        } else if name == "cleaned.json" {
            patch_doc::<CleanedRecord>(lake, &key, |r| {
                let mut changed = false;
                for p in &mut r.parts {
                    changed |= set_rows(&mut p.rows, cleaned.get(&p.key));
                }
                changed
            })
            .await?
            .is_some()
        } else if name.starts_with("bucket-") {
            patch_doc::<BucketRecord>(lake, &key, |r| {
                let now = match &r.file {
                    Some(f) => curated.get(&f.curated_key),
                    None => None,
                };
                match (now, &mut r.file) {
                    (Some(Some(now)), Some(f)) => patch_bucket_file(f, now),
                    (Some(None), _) => {
                        r.file = None;
                        true
                    }
                    _ => false,
                }
            })
            .await?
            .is_some()
        } else if name.starts_with("route-") {
            patch_doc::<RouteRecord>(lake, &key, |r| {
                let mut changed = false;
                for c in &mut r.changes {
                    changed |= set_rows(&mut c.rows, cleaned.get(&c.key));
                }
                changed
            })
            .await?
            .is_some()
        } else if key.contains("/tasks/bucket=") {
            patch_doc::<BucketTask>(lake, &key, |t| {
                let mut changed = false;
                if let Some(b) = &mut t.base {
                    changed |= set_rows(&mut b.rows, cleaned.get(&b.cleaned_key));
                }
                for c in &mut t.changes {
                    changed |= set_rows(&mut c.rows, cleaned.get(&c.key));
                }
                changed
            })
            .await?
            .is_some()
        } else {
            false
        };
        if updated {
            s.report.references_updated += 1;
        }
    }
    // The live pointer: the same commit, its files scrubbed (compare-and-swap).
    loop {
        let Some((mut live, version)) = state::read_pointer(lake).await? else {
            break;
        };
        if !patch_manifest(&mut live, &curated, &removed_rows) {
            break;
        }
        match state::write_if(lake, state::POINTER, &live, &PutCondition::Matches(version)).await {
            Ok(_) => {
                s.report.references_updated += 1;
                crate::athena::write_symlink_listing(lake).await?;
                break;
            }
            Err(LakeError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some((live, _)) = state::read_pointer(lake).await? {
        touched.push(live);
    }
    for m in &touched {
        verify_manifest(lake, m).await?;
        s.report.manifests_verified += 1;
    }
    Ok(())
}

fn set_rows(rows: &mut u64, now: Option<&u64>) -> bool {
    match now {
        Some(n) if *n != *rows => {
            *rows = *n;
            true
        }
        _ => false,
    }
}

fn distinct_products(key: &str, bytes: &Bytes) -> Result<u64, StageError> {
    let cols = read_columns(Dataset::Curated, bytes.clone(), &["product_id"])
        .map_err(StageError::parquet(key))?;
    let mut seen = BTreeSet::new();
    for b in &cols {
        let p = string_column(b, key, "product_id")?;
        for i in 0..b.num_rows() {
            seen.insert(p.value(i).to_owned());
        }
    }
    Ok(seen.len() as u64)
}

/// Read a JSON document, let `f` change it, write it back if it did (conditional on the
/// version read). Returns the document written.
async fn patch_doc<T: Serialize + DeserializeOwned>(
    lake: &dyn Lake,
    key: &str,
    f: impl FnOnce(&mut T) -> bool,
) -> Result<Option<T>, StageError> {
    let Some((mut doc, version)) = state::read::<T>(lake, key).await? else {
        return Ok(None);
    };
    if !f(&mut doc) {
        return Ok(None);
    }
    state::write_if(lake, key, &doc, &PutCondition::Matches(version)).await?;
    Ok(Some(doc))
}

fn patch_bucket_file(f: &mut BucketFile, now: &CuratedNow) -> bool {
    let before = f.clone();
    f.rows = now.rows;
    f.products = now.products;
    f.checksum = now.checksum.clone();
    if f.directory_key.is_some() {
        f.directory_checksum = now.directory_checksum.clone();
    }
    *f != before
}

/// Bring a manifest's files, counts and checksums in line with the scrubbed files.
fn patch_manifest(
    m: &mut Manifest,
    curated: &BTreeMap<String, Option<CuratedNow>>,
    removed_rows: &BTreeMap<String, u64>,
) -> bool {
    let mut changed = false;
    if !m.bucket_files.is_empty() {
        m.bucket_files
            .retain_mut(|f| match curated.get(&f.curated_key) {
                None => true,
                Some(None) => {
                    changed = true;
                    false
                }
                Some(Some(now)) => {
                    changed |= patch_bucket_file(f, now);
                    true
                }
            });
        if changed {
            m.keys = m
                .bucket_files
                .iter()
                .map(|f| f.curated_key.clone())
                .collect();
            m.part_checksums = m.bucket_files.iter().map(|f| f.checksum.clone()).collect();
            m.rows = m.bucket_files.iter().map(|f| f.rows).sum();
            m.products = m.bucket_files.iter().map(|f| f.products).sum();
        }
    } else {
        // A snapshot from before buckets: parts by position, rows by what was removed from
        // each part (once: a part already patched has its new checksum).
        let mut keys = Vec::new();
        let mut sums = Vec::new();
        for (key, sum) in m.keys.iter().zip(&m.part_checksums) {
            match curated.get(key) {
                None => {
                    keys.push(key.clone());
                    sums.push(sum.clone());
                }
                Some(now) if now.as_ref().is_some_and(|n| n.checksum == *sum) => {
                    keys.push(key.clone());
                    sums.push(sum.clone());
                }
                Some(now) => {
                    changed = true;
                    m.rows = m
                        .rows
                        .saturating_sub(removed_rows.get(key).copied().unwrap_or(0));
                    if let Some(now) = now {
                        keys.push(key.clone());
                        sums.push(now.checksum.clone());
                    }
                }
            }
        }
        if changed {
            m.keys = keys;
            m.part_checksums = sums;
        }
    }
    if changed {
        let mut all = Sha256::new();
        for c in &m.part_checksums {
            all.update(c.as_bytes());
        }
        m.checksum = hex::encode(all.finalize());
    }
    changed
}

/// Every file a manifest names must be there with the checksum it records (what rollback
/// and the API check).
async fn verify_manifest(lake: &dyn Lake, m: &Manifest) -> Result<(), StageError> {
    for (key, expected) in m.keys.iter().zip(&m.part_checksums) {
        let data = lake.get(key).await?;
        if sha(&data) != *expected {
            return Err(StageError::Validation(format!(
                "after the erasure, {key} differs from the checksum run {}'s manifest records",
                m.run_id
            )));
        }
    }
    let mut rows = 0u64;
    for f in &m.bucket_files {
        rows += f.rows;
        if let (Some(d), Some(c)) = (&f.directory_key, &f.directory_checksum) {
            let data = lake.get(d).await?;
            if sha(&data) != *c {
                return Err(StageError::Validation(format!(
                    "after the erasure, {d} differs from its checksum in run {}'s manifest",
                    m.run_id
                )));
            }
        }
    }
    if !m.bucket_files.is_empty() && rows != m.rows {
        return Err(StageError::Validation(format!(
            "run {}'s manifest counts {} rows, its buckets {rows}",
            m.run_id, m.rows
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buyers_are_found_as_whole_ids() {
        let erased = BTreeSet::from(["C1".to_owned()]);
        assert!(names_a_buyer(br#"{"buyer":"C1"}"#, &erased));
        assert!(!names_a_buyer(br#"{"checksum":"aC1b","n":"C10"}"#, &erased));
        let odd = BTreeSet::from(["a b".to_owned()]);
        assert!(names_a_buyer(b"x a b y", &odd));
    }

    #[test]
    fn buyer_ids_are_checked() {
        assert_eq!(validate_buyer("  C1 ").unwrap(), "C1");
        assert!(validate_buyer(" ").is_err());
        assert!(validate_buyer("a\nb").is_err());
        assert!(validate_buyer(&"x".repeat(129)).is_err());
    }
}
