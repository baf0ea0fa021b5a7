//! The right to erasure, complete: several runs with the buyer present (a valid review carried
//! over from run to run, a new one later, one rejected for another reason, runs kept for
//! rollback), then the erasure, then every object of the lake is read (Parquet decoded, text
//! and JSON as they are) and none holds the buyer's id or review text. Rollback to every kept
//! run still validates; later runs never write the buyer again; two erasures at once both
//! land; an erasure that died half-way is finished by the next one. On the local lake and on
//! S3 (moto).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::{Array, RecordBatch, StringArray};
use async_trait::async_trait;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use reviews_domain::RawReview;
use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::score::ScoreWeights;
use reviews_lake::parquet_io::{Dataset, read_parquet};
use reviews_lake::{Lake, RunId, state};
use reviews_ports::{PortError, RawArchive, Upserted};
use reviews_stages::erase::{ArchiveStep, EraseOptions, erase};
use reviews_stages::publish::{live_manifest, promote};
use reviews_stages::{NoProgress, RunOptions, RunSummary, Scorer, StageError, run_local};
use reviews_stores::{LocalLake, S3Lake};
use reviews_testkit::{FaultyLake, Moto, synthetic};

/// Counts the calls; the real archive (MongoDB) is exercised by the CLI and Lambda tests.
#[derive(Default)]
struct CountingArchive(AtomicU64);

#[async_trait]
impl RawArchive for CountingArchive {
    async fn prepare(&self) -> Result<(), PortError> {
        Ok(())
    }

    async fn upsert(&self, _run: &str, _rows: &[RawReview]) -> Result<Upserted, PortError> {
        unreachable!("erasure never archives")
    }

    async fn erase_buyer(&self, _buyer: &str) -> Result<u64, PortError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(0)
    }
}

fn scorer() -> Arc<Scorer> {
    Arc::new(Scorer::new(
        Arc::new(KeywordClassifier::default()),
        ScoreWeights::default(),
    ))
}

/// A review of `buyer` with a text nobody else writes.
fn buyer_row(buyer: &str, id: &str, product: &str, rating: &str) -> RawReview {
    RawReview {
        review_id: Some(id.into()),
        product_id: Some(product.into()),
        product_title: Some("Kettle".into()),
        product_category: Some("Kitchen".into()),
        buyer_id: Some(buyer.into()),
        rating: Some(rating.into()),
        title: Some("Honest opinion".into()),
        text: Some(text_of(buyer, id)),
        helpful_votes: Some("1".into()),
        total_votes: Some("2".into()),
        verified_purchase: Some("Y".into()),
        review_date: Some("2024-03-05".into()),
        ..Default::default()
    }
}

fn text_of(buyer: &str, id: &str) -> String {
    format!("The kettle from {id} boils fast, says Zq{buyer}x, and the handle stays cool.")
}

async fn run(
    lake: &Arc<dyn Lake>,
    id: &str,
    rows: Vec<RawReview>,
    incremental: bool,
) -> RunSummary {
    let options = RunOptions {
        run_id: RunId::parse(id).unwrap(),
        buckets: Some(4),
        workers: 2,
        merge_previous: incremental,
        lease_ttl: reviews_stages::DEFAULT_LEASE_TTL,
    };
    let s = run_local(
        lake.clone(),
        rows.into_iter().map(Ok::<_, std::convert::Infallible>),
        scorer(),
        &options,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert!(s.accounted, "{s:?}");
    s
}

/// Every string cell of a batch.
fn strings(batch: &RecordBatch) -> Vec<String> {
    let mut out = Vec::new();
    for col in batch.columns() {
        if let Some(s) = col.as_any().downcast_ref::<StringArray>() {
            out.extend(
                (0..s.len())
                    .filter(|i| !s.is_null(*i))
                    .map(|i| s.value(i).to_owned()),
            );
        }
    }
    out
}

/// The text an object holds: every string cell of a Parquet file (decoded by its schema),
/// anything else as it is.
fn cells_of(key: &str, bytes: bytes::Bytes) -> Vec<String> {
    if key.ends_with(".parquet") {
        let batches = [Dataset::Raw, Dataset::Cleaned, Dataset::Curated]
            .into_iter()
            .find_map(|d| read_parquet(d, bytes.clone()).ok())
            .unwrap_or_else(|| panic!("{key}: not a Parquet file of the lake's schemas"));
        batches.iter().flat_map(strings).collect()
    } else {
        vec![String::from_utf8_lossy(&bytes).into_owned()]
    }
}

/// Every object of the lake that holds one of `needles` (Parquet decoded by its schema,
/// anything else read as text), except the erased list itself.
async fn objects_holding(lake: &dyn Lake, needles: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for key in lake.list("").await.unwrap() {
        if key == state::ERASED_BUYERS {
            continue;
        }
        let cells = cells_of(&key, lake.get(&key).await.unwrap());
        if cells
            .iter()
            .any(|c| needles.iter().any(|n| c.contains(n.as_str())))
        {
            found.push(key);
        }
    }
    found
}

fn needles(buyer: &str, ids: &[&str]) -> Vec<String> {
    let mut n = vec![buyer.to_owned()];
    n.extend(ids.iter().map(|id| text_of(buyer, id)));
    n.push(format!("Zq{buyer}x"));
    n
}

/// Every published run's manifest still validates (what rollback checks), and rolling back to
/// it serves no erased buyer.
async fn every_kept_run_rolls_back(lake: &dyn Lake, runs: &[&str], ids: &[&str]) {
    for r in runs {
        let m = promote(lake, &RunId::parse(r).unwrap()).await.unwrap();
        let mut served = BTreeSet::new();
        for key in &m.keys {
            for b in read_parquet(Dataset::Curated, lake.get(key).await.unwrap()).unwrap() {
                let col = b
                    .column_by_name("review_id")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone();
                served.extend((0..col.len()).map(|i| col.value(i).to_owned()));
            }
        }
        assert_eq!(served.len() as u64, m.rows, "run {r}");
        assert!(ids.iter().all(|id| !served.contains(*id)), "run {r}");
    }
}

/// Three runs with buyer `B`: run 1 (full) has two valid reviews and one rejected for its
/// rating; run 2 (incremental) adds one; run 3 changes other products only.
async fn three_runs(lake: &Arc<dyn Lake>, buyer: &str) -> (Vec<RawReview>, Vec<&'static str>) {
    let base = synthetic(400, 11, "S");
    let p0 = base[0].product_id.clone().unwrap();
    let p1 = base[7].product_id.clone().unwrap();
    let mut first = base.clone();
    first.push(buyer_row(buyer, "EB1", &p0, "5"));
    first.push(buyer_row(buyer, "EB2", &p1, "2"));
    first.push(buyer_row(buyer, "EB3", &p0, "9")); // rating_out_of_range
    let s1 = run(lake, "r1", first.clone(), false).await;
    assert!(s1.rejected_by_reason.get("rating_out_of_range") >= Some(&1));
    let mut second = synthetic(40, 12, "T");
    second.push(buyer_row(buyer, "EB4", &p1, "4"));
    run(lake, "r2", second.clone(), true).await;
    run(lake, "r3", synthetic(10, 13, "U"), true).await;
    let mut all = first;
    all.extend(second);
    (all, vec!["EB1", "EB2", "EB3", "EB4"])
}

async fn erase_scan_and_rerun(lake: Arc<dyn Lake>) -> &'static str {
    let buyer = "BUYERX42";
    let (source, ids) = three_runs(&lake, buyer).await;
    let needles = needles(buyer, &ids);
    let before = objects_holding(lake.as_ref(), &needles).await;
    for prefix in ["raw/", "rejects/", "cleaned/", "curated/"] {
        assert!(
            before.iter().any(|k| k.starts_with(prefix)),
            "the buyer is in {prefix} before the erasure: {before:?}"
        );
    }
    let live_before = live_manifest(lake.as_ref()).await.unwrap().unwrap();

    let archive = CountingArchive::default();
    let report = erase(
        lake.as_ref(),
        buyer,
        ArchiveStep::Erase(&archive),
        &EraseOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.complete && report.newly_recorded, "{report:?}");
    assert_eq!(archive.0.load(Ordering::SeqCst), 1);
    let s = &report.scrub;
    assert!(s.raw_rows_redacted >= 4, "{s:?}");
    assert_eq!(s.rejects_redacted, 1, "{s:?}");
    assert!(
        s.cleaned_rows_removed >= 3 && s.curated_rows_removed >= 3,
        "{s:?}"
    );
    assert!(
        s.references_updated > 0 && s.manifests_verified > 0,
        "{s:?}"
    );
    assert_eq!(
        objects_holding(lake.as_ref(), &needles).await,
        Vec::<String>::new()
    );
    // The live snapshot: the same run, three reviews fewer, its files valid.
    let live = live_manifest(lake.as_ref()).await.unwrap().unwrap();
    assert_eq!(live.run_id, live_before.run_id);
    assert_eq!(live.sequence, live_before.sequence);
    assert_eq!(live.rows, live_before.rows - 3);
    assert_eq!(report.live_rows_before, Some(live_before.rows));
    assert_eq!(report.live_rows_after, Some(live.rows));

    // The rejected row of run 1 keeps its review id and reason only.
    let csv = lake.get("rejects/run=r1/part-00000.csv").await.unwrap();
    let mut rd = csv::Reader::from_reader(&csv[..]);
    let header = rd.headers().unwrap().clone();
    let row = rd
        .records()
        .map(Result::unwrap)
        .find(|r| &r[0] == "EB3")
        .expect("the reject is still counted");
    let reason = header.iter().position(|h| h == "reason").unwrap();
    assert_eq!(&row[reason], "rating_out_of_range");
    for (i, name) in header.iter().enumerate() {
        if !["review_id", "reason", "source_position", "read_defect"].contains(&name) {
            assert!(row[i].is_empty(), "{name} = {:?}", &row[i]);
        }
    }

    // Erasing again changes nothing and still completes.
    let again = erase(
        lake.as_ref(),
        buyer,
        ArchiveStep::Erase(&archive),
        &EraseOptions::default(),
    )
    .await
    .unwrap();
    assert!(!again.newly_recorded && again.complete);
    assert_eq!(again.scrub.objects_rewritten, 0, "{again:?}");

    // Rollback to every kept run validates and serves none of the buyer's reviews.
    every_kept_run_rolls_back(lake.as_ref(), &["r1", "r2", "r3"], &ids).await;

    // A later run reads the whole source again, the buyer included: raw/ holds only their
    // review ids, rejects/ the ids and reason `erased_buyer`, nothing else.
    let s4 = run(&lake, "r4", source, false).await;
    assert_eq!(
        s4.rejected_by_reason.get("erased_buyer"),
        Some(&4),
        "{s4:?}"
    );
    assert_eq!(
        objects_holding(lake.as_ref(), &needles).await,
        Vec::<String>::new()
    );
    // An incremental run on top carries the rows over without them.
    run(&lake, "r5", synthetic(5, 14, "V"), true).await;
    assert_eq!(
        objects_holding(lake.as_ref(), &needles).await,
        Vec::<String>::new()
    );
    buyer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_no_trace_in_any_object_of_a_local_lake() {
    let dir = tempfile::tempdir().unwrap();
    erase_scan_and_rerun(Arc::new(LocalLake::new(dir.path()))).await;
    // The local lake keeps no earlier versions, and no temporary files either.
    let mut stray = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap().to_string_lossy().starts_with('.')
                && !p.to_string_lossy().ends_with(".lock")
            {
                stray.push(p);
            }
        }
    }
    assert!(stray.is_empty(), "{stray:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto (S3, Secrets Manager): scripts/test installs it"]
async fn erasure_leaves_no_trace_in_any_object_of_an_s3_lake() {
    let moto = Moto::start();
    let s3 = moto.bucket("reviews-erase").await;
    // As the Terraform lake bucket: versioned, so an overwrite keeps the earlier version.
    s3.put_bucket_versioning()
        .bucket("reviews-erase")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let lake: Arc<dyn Lake> = Arc::new(S3Lake::new(s3.clone(), "reviews-erase", "lake/"));
    let buyer = erase_scan_and_rerun(lake).await;
    // No version of any object, current or earlier, holds the buyer.
    let needles = needles(buyer, &["EB1", "EB2", "EB3", "EB4"]);
    let versions = s3
        .list_object_versions()
        .bucket("reviews-erase")
        .send()
        .await
        .unwrap();
    assert!(!versions.is_truncated().unwrap_or(false));
    let mut holding = Vec::new();
    for v in versions.versions() {
        let (key, id) = (v.key().unwrap(), v.version_id().unwrap());
        if key.ends_with("state/erased_buyers.json") {
            continue;
        }
        let body = s3
            .get_object()
            .bucket("reviews-erase")
            .key(key)
            .version_id(id)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        if cells_of(key, body)
            .iter()
            .any(|c| needles.iter().any(|n| c.contains(n.as_str())))
        {
            holding.push(format!("{key}@{id}"));
        }
    }
    assert_eq!(holding, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_erasures_at_once_both_land_and_both_complete() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    let base = synthetic(300, 21, "S");
    let p = base[3].product_id.clone().unwrap();
    let mut rows = base;
    rows.push(buyer_row("AAA1", "EA1", &p, "5"));
    rows.push(buyer_row("BBB2", "EC1", &p, "3"));
    run(&lake, "r1", rows, false).await;
    let archive = CountingArchive::default();
    let opts = EraseOptions::default();
    let (a, b) = tokio::join!(
        erase(lake.as_ref(), "AAA1", ArchiveStep::Erase(&archive), &opts),
        erase(lake.as_ref(), "BBB2", ArchiveStep::Erase(&archive), &opts),
    );
    assert!(a.unwrap().complete && b.unwrap().complete);
    let list = state::read_erased_buyers(lake.as_ref()).await.unwrap();
    assert_eq!(list, BTreeSet::from(["AAA1".to_owned(), "BBB2".to_owned()]));
    let mut n = needles("AAA1", &["EA1"]);
    n.extend(needles("BBB2", &["EC1"]));
    assert_eq!(
        objects_holding(lake.as_ref(), &n).await,
        Vec::<String>::new()
    );
    every_kept_run_rolls_back(lake.as_ref(), &["r1"], &["EA1", "EC1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_erasure_is_finished_by_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let plain: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    let buyer = "BUYERY7";
    let (_, ids) = three_runs(&plain, buyer).await;
    let archive = CountingArchive::default();
    // The first curated file the scrub rewrites fails: cleaned/ is done, curated/ is not.
    let faulty = FaultyLake::new(LocalLake::new(dir.path()), "curated/run=", 1);
    let err = erase(
        &faulty,
        buyer,
        ArchiveStep::Erase(&archive),
        &EraseOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(faulty.failed_key().is_some());
    // The buyer is on the list, the lease is free, the scrub is half done.
    assert!(
        state::read_erased_buyers(plain.as_ref())
            .await
            .unwrap()
            .contains(buyer)
    );
    let last = reviews_stages::erase::last_erasure(plain.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert!(!last.lake_scrubbed);
    let needles = needles(buyer, &ids);
    assert!(!objects_holding(plain.as_ref(), &needles).await.is_empty());

    let report = erase(
        plain.as_ref(),
        buyer,
        ArchiveStep::Erase(&archive),
        &EraseOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.scrub.resumed && report.complete, "{report:?}");
    assert_eq!(
        objects_holding(plain.as_ref(), &needles).await,
        Vec::<String>::new()
    );
    assert!(
        reviews_stages::erase::last_erasure(plain.as_ref())
            .await
            .unwrap()
            .unwrap()
            .lake_scrubbed
    );
    every_kept_run_rolls_back(plain.as_ref(), &["r1", "r2", "r3"], &ids).await;
    // The next run carries the scrubbed rows over.
    run(&plain, "r4", synthetic(5, 15, "W"), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_pipeline_keeps_the_scrub_out_but_not_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let now = chrono::Utc::now();
    state::acquire_lease(
        &lake,
        &RunId::parse("busy").unwrap(),
        chrono::Duration::hours(1),
        now,
    )
    .await
    .unwrap();
    let archive = CountingArchive::default();
    let err = erase(
        &lake,
        "C9",
        ArchiveStep::Erase(&archive),
        &EraseOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StageError::LeaseHeld { ref holder, .. } if holder.as_str() == "busy"));
    assert!(
        state::read_erased_buyers(&lake)
            .await
            .unwrap()
            .contains("C9")
    );
    // Nothing else was touched: the archive waits for the re-run.
    assert_eq!(archive.0.load(Ordering::SeqCst), 0);
    // Waived archive: the erasure is not complete.
    state::release_lease(&lake, &RunId::parse("busy").unwrap())
        .await
        .unwrap();
    let r = erase(&lake, "C9", ArchiveStep::Waived, &EraseOptions::default())
        .await
        .unwrap();
    assert!(r.archive_skipped && !r.complete);
}

/// A review id that was the erased buyer's in an earlier run but is another buyer's in the live
/// one (the source moved it): only the earlier run's row goes. The live dataset keeps the other
/// buyer's review, its counts stay consistent, and the next run builds on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_id_another_buyer_holds_now_keeps_that_buyers_row() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    let (erased, keeper) = ("ERASEDQ7", "KEEPERQ7");
    let mut first = synthetic(120, 31, "M");
    first.push(buyer_row(erased, "MOVED-1", "PMOVED", "5"));
    first.push(buyer_row(erased, "GONE-1", "PMOVED", "2"));
    run(&lake, "m1", first, false).await;
    // The next run reads MOVED-1 under another buyer.
    run(
        &lake,
        "m2",
        vec![buyer_row(keeper, "MOVED-1", "PMOVED", "4")],
        true,
    )
    .await;
    let live_before = live_manifest(lake.as_ref()).await.unwrap().unwrap();

    let report = erase(
        lake.as_ref(),
        erased,
        ArchiveStep::Erase(&CountingArchive::default()),
        &EraseOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.complete, "{report:?}");
    let live = live_manifest(lake.as_ref()).await.unwrap().unwrap();
    assert_eq!(
        live.rows,
        live_before.rows - 1,
        "only GONE-1 leaves the live dataset: {report:?}"
    );
    let holding = objects_holding(lake.as_ref(), &needles(erased, &[])).await;
    assert_eq!(holding, Vec::<String>::new());
    let keeper_text = text_of(keeper, "MOVED-1");
    let live_curated: Vec<String> = live.keys.clone();
    let mut found = false;
    for key in &live_curated {
        let bytes = lake.get(key).await.unwrap();
        found |= cells_of(key, bytes).iter().any(|c| c == &keeper_text);
    }
    assert!(found, "the other buyer's review stays live");
    // The counts the scrub recorded match the files: the next run carries them over.
    let s = run(&lake, "m3", synthetic(5, 32, "N"), true).await;
    assert!(s.accounted, "{s:?}");
}
