//! The stages chained on a local lake: row accounting, curated order, idempotent re-runs,
//! publish validation and rollback.

use std::collections::BTreeMap;
use std::sync::Arc;

use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::schema::{CuratedReview, batch_to_curated, curated_to_batch};
use reviews_domain::score::ScoreWeights;
use reviews_lake::parquet_io::{Dataset, read_parquet, write_parquet};
use reviews_lake::{Lake, RunId, layout};
use reviews_ports::Classified;
use reviews_sources::{SyntheticConfig, SyntheticReviews};
use reviews_stages::publish::{live_manifest, promote};
use reviews_stages::{
    NoProgress, PublishInput, RunOptions, Scorer, StageError, plan_items, publish, run_local,
};
use reviews_stores::LocalLake;
use sha2::{Digest, Sha256};

fn scorer() -> Arc<Scorer> {
    Arc::new(
        Scorer::new(
            Arc::new(KeywordClassifier::default()),
            ScoreWeights::default(),
        )
        .with_classifier_id("keywords"),
    )
}

fn synthetic(
    n: u64,
    seed: u64,
) -> impl Iterator<Item = Result<reviews_domain::RawReview, std::convert::Infallible>> + Send {
    SyntheticReviews::new(SyntheticConfig {
        reviews: n,
        seed,
        invalid_share: 0.03,
        ..Default::default()
    })
    .map(Ok)
}

fn options(run: &str, buckets: u32) -> RunOptions {
    RunOptions {
        run_id: RunId::parse(run).unwrap(),
        buckets: Some(buckets),
        workers: 2,
        merge_previous: false,
        lease_ttl: reviews_stages::DEFAULT_LEASE_TTL,
    }
}

async fn curated_rows(lake: &dyn Lake, keys: &[String]) -> Vec<CuratedReview> {
    let mut out = Vec::new();
    for k in keys {
        for b in read_parquet(Dataset::Curated, lake.get(k).await.unwrap()).unwrap() {
            out.extend(batch_to_curated(&b).unwrap());
        }
    }
    out
}

async fn digests(lake: &dyn Lake, prefix: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for k in lake.list(prefix).await.unwrap() {
        m.insert(
            k.clone(),
            hex::encode(Sha256::digest(lake.get(&k).await.unwrap())),
        );
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_accounts_for_every_row_and_sorts_curated() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    let s = run_local(
        lake.clone(),
        synthetic(3_000, 1),
        scorer(),
        &options("r1", 5),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert_eq!(s.rows_extracted, 3_000);
    assert_eq!(s.cleaned + s.rejected, 3_000);
    assert!(s.rejected > 0, "the generator plants invalid rows");
    assert_eq!(s.rejected_by_reason.values().sum::<u64>(), s.rejected);
    assert_eq!((s.buckets, s.buckets_written), (5, 5));
    assert!(s.accounted);

    let live = live_manifest(lake.as_ref()).await.unwrap().unwrap();
    assert_eq!(live.run_id.as_str(), "r1");
    assert_eq!(live.rows, s.cleaned);
    assert_eq!((live.buckets, live.bucket_files.len()), (5, 5));
    let rows = curated_rows(lake.as_ref(), &live.keys).await;
    assert_eq!(rows.len() as u64, s.cleaned);
    assert!(
        rows.iter()
            .all(|r| (0.0..=1.0).contains(&r.relevance) && !r.topics.is_empty())
    );
    // Each bucket file is in curated order and holds only its products, whole.
    let mut seen = std::collections::HashMap::new();
    for f in &live.bucket_files {
        let rows = curated_rows(lake.as_ref(), std::slice::from_ref(&f.curated_key)).await;
        assert_eq!(rows.len() as u64, f.rows);
        assert!(
            rows.windows(2)
                .all(|w| CuratedReview::sort_key_cmp(&w[0], &w[1]).is_lt())
        );
        for r in rows {
            assert_eq!(layout::bucket_of(&r.product_id, 5), f.bucket);
            assert_eq!(*seen.entry(r.product_id).or_insert(f.bucket), f.bucket);
        }
    }
    // Rejects file has one line per rejected row plus the header, each with a reason.
    let rejects = lake
        .get(&layout::part_rejects_key(&RunId::parse("r1").unwrap(), 0))
        .await
        .unwrap();
    let mut rd = csv::Reader::from_reader(&rejects[..]);
    let reasons: Vec<String> = rd.records().map(|r| r.unwrap()[16].to_owned()).collect();
    assert_eq!(reasons.len() as u64, s.rejected);
    assert!(
        reasons
            .iter()
            .all(|r| reviews_domain::RejectReason::from_code(r).is_some())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerunning_a_run_id_reproduces_the_same_objects() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    run_local(
        lake.clone(),
        synthetic(2_000, 2),
        scorer(),
        &options("same", 8),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    let first = digests(lake.as_ref(), "").await;
    run_local(
        lake.clone(),
        synthetic(2_000, 2),
        scorer(),
        &options("same", 8),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    let second = digests(lake.as_ref(), "").await;
    let data = |m: &BTreeMap<String, String>| {
        m.iter()
            .filter(|(k, _)| k.ends_with(".parquet") || k.ends_with(".csv"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        data(&first),
        data(&second),
        "same run id, same objects, byte for byte"
    );
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );

    // Fewer buckets on a re-run: the earlier attempt's extra files go away.
    run_local(
        lake.clone(),
        synthetic(2_000, 2),
        scorer(),
        &options("same", 1),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    let parts = lake.list("curated/run=same/").await.unwrap();
    assert_eq!(
        parts.iter().filter(|k| k.ends_with(".parquet")).count(),
        1,
        "{parts:?}"
    );
    let cleaned = lake.list("cleaned/run=same/").await.unwrap();
    assert_eq!(
        cleaned.iter().filter(|k| k.ends_with(".parquet")).count(),
        2,
        "one change file and one bucket: {cleaned:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_refuses_invalid_data_and_keeps_the_live_run() {
    use reviews_lake::state::{self, BucketRecord};
    use reviews_stages::{TransformInput, extract_rows, merge_buckets, transform};
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    run_local(
        lake.clone(),
        synthetic(500, 3),
        scorer(),
        &options("good", 2),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    let live_before = lake.get(layout::LATEST_MANIFEST).await.unwrap();
    let good = live_manifest(lake.as_ref()).await.unwrap().unwrap();

    let bad = RunId::parse("bad").unwrap();
    let try_publish = |expected| {
        let lake = lake.clone();
        async move {
            publish(
                lake,
                &PublishInput {
                    run_id: RunId::parse("bad").unwrap(),
                    expected_rows: expected,
                    watermark: None,
                },
            )
            .await
        }
    };
    // Without a complete transform of its own, a run is refused.
    let err = try_publish(None).await.unwrap_err();
    assert!(err.to_string().contains("no plan"), "{err}");

    // A run transformed and merged, then tampered with.
    let extracted = extract_rows(lake.clone(), &bad, synthetic(500, 9), &NoProgress, None)
        .await
        .unwrap();
    let t = transform(
        lake.clone(),
        &TransformInput {
            run_id: bad.clone(),
            raw_keys: extracted.raw_keys,
            merge_previous: false,
            deletions_key: None,
            buckets: Some(2),
            routed: false,
        },
        &NoProgress,
    )
    .await
    .unwrap();
    // Not merged yet: no bucket record.
    let err = try_publish(None).await.unwrap_err();
    assert!(err.to_string().contains("was not merged"), "{err}");
    let items = plan_items(lake.as_ref(), &t.run_id).await.unwrap();
    merge_buckets(lake.clone(), scorer(), &items, 2, Arc::new(NoProgress))
        .await
        .unwrap();
    let record_key = state::bucket_record_key(&bad, 0);
    let record: BucketRecord = state::read_required(lake.as_ref(), &record_key)
        .await
        .unwrap();
    let file = record.file.clone().unwrap();
    let original = lake.get(&file.curated_key).await.unwrap();
    let mut rows = curated_rows(lake.as_ref(), std::slice::from_ref(&file.curated_key)).await;

    // Not Parquet at all.
    lake.put(
        &file.curated_key,
        bytes::Bytes::from_static(b"PAR1 garbage"),
    )
    .await
    .unwrap();
    let err = try_publish(None).await.unwrap_err();
    assert!(matches!(err, StageError::Validation(_)), "{err}");
    // Out of order, with a record that vouches for it: the order check still refuses.
    rows.reverse();
    let meta = [(
        reviews_stages::score::TOPICS_METADATA_KEY,
        serde_json::to_string(&good.topics).unwrap(),
    )];
    let unsorted =
        write_parquet(Dataset::Curated, &[curated_to_batch(&rows).unwrap()], &meta).unwrap();
    let mut forged = record.clone();
    forged.file.as_mut().unwrap().checksum = hex::encode(Sha256::digest(&unsorted));
    lake.put(&file.curated_key, unsorted).await.unwrap();
    state::write_record(lake.as_ref(), &record_key, &forged)
        .await
        .unwrap();
    let err = try_publish(None).await.unwrap_err();
    assert!(err.to_string().contains("not"), "{err}");
    assert_eq!(err.error_type(), "FatalError");
    // The right file, but the wrong expected count.
    lake.put(&file.curated_key, original).await.unwrap();
    state::write_record(lake.as_ref(), &record_key, &record)
        .await
        .unwrap();
    assert!(try_publish(Some(1)).await.is_err());
    // The product directory the API lists products from: altered, or consistent with itself
    // (a record that vouches for it) but missing a product of the bucket.
    let dir_key = file.directory_key.clone().unwrap();
    let dir_original = lake.get(&dir_key).await.unwrap();
    lake.put(&dir_key, bytes::Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let err = try_publish(None).await.unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    let mut listing: reviews_lake::manifest::ProductDirectory =
        serde_json::from_slice(&dir_original).unwrap();
    listing.products.pop();
    let short = serde_json::to_vec(&listing).unwrap();
    let mut forged = record.clone();
    forged.file.as_mut().unwrap().directory_checksum = Some(hex::encode(Sha256::digest(&short)));
    lake.put(&dir_key, short.into()).await.unwrap();
    state::write_record(lake.as_ref(), &record_key, &forged)
        .await
        .unwrap();
    let err = try_publish(None).await.unwrap_err();
    assert!(err.to_string().contains("products"), "{err}");
    lake.put(&dir_key, dir_original).await.unwrap();
    state::write_record(lake.as_ref(), &record_key, &record)
        .await
        .unwrap();
    assert_eq!(
        lake.get(layout::LATEST_MANIFEST).await.unwrap(),
        live_before,
        "live run untouched"
    );
    // And the right one publishes: a full load replaces the dataset.
    let out = try_publish(None).await.unwrap();
    assert_eq!(out.rows, t.cleaned);
    assert_eq!(
        live_manifest(lake.as_ref()).await.unwrap().unwrap().run_id,
        bad
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_moves_the_pointer_and_checks_parts() {
    let dir = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(dir.path()));
    run_local(
        lake.clone(),
        synthetic(300, 4),
        scorer(),
        &options("old", 3),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    run_local(
        lake.clone(),
        synthetic(400, 5),
        scorer(),
        &options("new", 3),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert_eq!(
        live_manifest(lake.as_ref())
            .await
            .unwrap()
            .unwrap()
            .run_id
            .as_str(),
        "new"
    );
    let m = promote(lake.as_ref(), &RunId::parse("old").unwrap())
        .await
        .unwrap();
    assert_eq!(m.run_id.as_str(), "old");
    assert_eq!(
        live_manifest(lake.as_ref())
            .await
            .unwrap()
            .unwrap()
            .run_id
            .as_str(),
        "old"
    );
    assert!(
        promote(lake.as_ref(), &RunId::parse("never").unwrap())
            .await
            .is_err()
    );
    // A tampered part is refused.
    lake.put(
        &layout::curated_bucket_key(&RunId::parse("new").unwrap(), 0),
        bytes::Bytes::from_static(b"x"),
    )
    .await
    .unwrap();
    assert!(
        promote(lake.as_ref(), &RunId::parse("new").unwrap())
            .await
            .is_err()
    );
    assert_eq!(
        live_manifest(lake.as_ref())
            .await
            .unwrap()
            .unwrap()
            .run_id
            .as_str(),
        "old"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_parts_are_all_transformed_and_a_shorter_rerun_drops_stale_parts() {
    use reviews_stages::extract::extract_rows_in_parts;
    use reviews_stages::{TransformInput, transform};
    let tmp = tempfile::tempdir().unwrap();
    let lake: Arc<dyn Lake> = Arc::new(LocalLake::new(tmp.path()));
    let run = RunId::parse("parts").unwrap();
    let out = extract_rows_in_parts(
        lake.clone(),
        &run,
        synthetic(1_000, 3),
        &NoProgress,
        None,
        300,
    )
    .await
    .unwrap();
    assert_eq!(out.rows, 1_000);
    assert_eq!(out.raw_keys.len(), 4);
    let t = transform(
        lake.clone(),
        &TransformInput {
            run_id: run.clone(),
            raw_keys: out.raw_keys.clone(),
            merge_previous: false,
            deletions_key: None,
            buckets: None,
            routed: false,
        },
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(t.rows_in, 1_000);
    assert_eq!(t.cleaned + t.rejected, 1_000);

    // The same run again with fewer rows: two parts, the other two removed.
    let again = extract_rows_in_parts(
        lake.clone(),
        &run,
        synthetic(500, 3),
        &NoProgress,
        None,
        300,
    )
    .await
    .unwrap();
    assert_eq!(again.raw_keys.len(), 2);
    let left: Vec<String> = lake
        .list(&layout::run_prefix(layout::RAW, &run))
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.ends_with(".parquet"))
        .collect();
    assert_eq!(left, again.raw_keys);

    // An empty source still writes one (empty) part.
    let empty = RunId::parse("empty").unwrap();
    let out = extract_rows_in_parts(
        lake.clone(),
        &empty,
        std::iter::empty::<Result<reviews_domain::RawReview, std::convert::Infallible>>(),
        &NoProgress,
        None,
        300,
    )
    .await
    .unwrap();
    assert_eq!((out.rows, out.raw_keys.len()), (0, 1));

    // Keys of another run are refused before anything is read.
    let err = transform(
        lake.clone(),
        &TransformInput {
            run_id: run.clone(),
            raw_keys: vec!["raw/run=empty/part-00000.parquet".into()],
            merge_previous: false,
            deletions_key: None,
            buckets: None,
            routed: false,
        },
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StageError::Input(_)), "{err}");
}
