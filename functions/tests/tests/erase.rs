//! The erase Lambda's handler with the payload the administrator sends, against moto (S3 with
//! versioning off, Secrets Manager holding the archive writer's URI) and the MongoDB wire
//! server: after it, no object of the lake and no archive document holds the buyer's id or
//! review text, and the archive stage does not bring them back.

use std::sync::Arc;

use mongodb::bson::{Document, doc};
use reviews_archive::{Archive, ArchiveConfig};
use reviews_archive_function::ArchiveFunction;
use reviews_domain::RawReview;
use reviews_domain::lexicon::KeywordClassifier;
use reviews_domain::schema::{batch_to_curated, batch_to_raw, batch_to_reviews};
use reviews_domain::score::ScoreWeights;
use reviews_erase_function::EraseFunction;
use reviews_lake::parquet_io::{Dataset, read_parquet};
use reviews_lake::{Lake, RunId, state};
use reviews_lambda::{Secret, SecretKind, SecretsClient};
use reviews_stages::{NoProgress, RunOptions, Scorer, run_local};
use reviews_stores::S3Lake;
use reviews_testkit::{Moto, mongo_writer_uri, synthetic};
use serde_json::json;

fn buyer_row(buyer: &str, id: &str, product: &str) -> RawReview {
    RawReview {
        review_id: Some(id.into()),
        product_id: Some(product.into()),
        product_title: Some("Lamp".into()),
        product_category: Some("Home".into()),
        buyer_id: Some(buyer.into()),
        rating: Some("4".into()),
        title: Some("Bright".into()),
        text: Some(format!(
            "Words of {buyer} about the lamp {id}, bright and warm."
        )),
        helpful_votes: Some("0".into()),
        total_votes: Some("0".into()),
        review_date: Some("2025-06-01".into()),
        ..Default::default()
    }
}

/// Every text an object holds: Parquet decoded by its schema, anything else as it is.
fn texts(key: &str, bytes: bytes::Bytes) -> Vec<String> {
    if !key.ends_with(".parquet") {
        return vec![String::from_utf8_lossy(&bytes).into_owned()];
    }
    let mut out = Vec::new();
    if let Ok(batches) = read_parquet(Dataset::Raw, bytes.clone()) {
        for b in &batches {
            for r in batch_to_raw(b).unwrap() {
                out.extend([r.buyer_id, r.text, r.title].into_iter().flatten());
            }
        }
    } else if let Ok(batches) = read_parquet(Dataset::Cleaned, bytes.clone()) {
        for b in &batches {
            for r in batch_to_reviews(b).unwrap() {
                out.extend(r.buyer_id);
                out.push(r.text);
            }
        }
    } else {
        for b in &read_parquet(Dataset::Curated, bytes).unwrap() {
            for r in batch_to_curated(b).unwrap() {
                out.push(r.text);
            }
        }
    }
    out
}

async fn lake_objects_naming(lake: &dyn Lake, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for key in lake.list("").await.unwrap() {
        if key == state::ERASED_BUYERS {
            continue;
        }
        let bytes = lake.get(&key).await.unwrap();
        if texts(&key, bytes).iter().any(|t| t.contains(needle)) {
            found.push(key);
        }
    }
    found
}

async fn archive_documents_naming(archive: &Archive, needle: &str) -> usize {
    use futures::TryStreamExt;
    let docs: Vec<Document> = archive
        .collection()
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    docs.iter()
        .filter(|d| format!("{d}").contains(needle))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto and MongoDB: scripts/test provides them"]
async fn the_erase_handler_removes_the_buyer_from_the_lake_and_the_archive() {
    let tag = std::process::id();
    let (buyer, pending) = (format!("EFN{tag}"), format!("EFP{tag}"));
    let moto = Moto::start();
    let s3 = moto.bucket("reviews-erase-fn").await;
    let lake: Arc<dyn Lake> = Arc::new(S3Lake::new(s3, "reviews-erase-fn", ""));
    moto.secret("reviews/test/erase-mongodb", &mongo_writer_uri())
        .await;
    let secrets = SecretsClient::new(moto.secrets_manager());
    let secret = || {
        Arc::new(Secret::from_manager(
            "mongo",
            SecretKind::Mongo,
            secrets.clone(),
            "reviews/test/erase-mongodb",
        ))
    };

    let mut rows = synthetic(300, 31, &format!("E{tag}-"));
    let product = rows[2].product_id.clone().unwrap();
    rows.push(buyer_row(&buyer, &format!("E{tag}-B1"), &product));
    rows.push(buyer_row(&buyer, &format!("E{tag}-B2"), &product));
    rows.push(buyer_row(&pending, &format!("E{tag}-P1"), &product));
    let run = RunId::parse("2026-12-01-r1").unwrap();
    let scorer = Arc::new(Scorer::new(
        Arc::new(KeywordClassifier::default()),
        ScoreWeights::default(),
    ));
    let options = RunOptions {
        run_id: run.clone(),
        buckets: Some(4),
        workers: 2,
        merge_previous: false,
        lease_ttl: reviews_stages::DEFAULT_LEASE_TTL,
    };
    run_local(
        lake.clone(),
        rows.into_iter().map(Ok::<_, std::convert::Infallible>),
        scorer,
        &options,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();

    // Another buyer is on the erased list but not scrubbed yet (an erasure under way): the
    // archive stage must not archive their rows from raw/.
    state::add_erased_buyer(lake.as_ref(), &pending)
        .await
        .unwrap();
    let archived = ArchiveFunction::new(lake.clone(), secret())
        .handle(json!({"run_id": run.as_str()}))
        .await
        .unwrap();
    assert_eq!(archived.archived_runs, vec![run.clone()]);
    let archive = Archive::connect(ArchiveConfig::new(mongo_writer_uri()))
        .await
        .unwrap();
    assert_eq!(archive_documents_naming(&archive, &buyer).await, 2);
    assert_eq!(archive_documents_naming(&archive, &pending).await, 0);
    assert!(!lake_objects_naming(lake.as_ref(), &buyer).await.is_empty());

    // Errors carry the state machine's types: a bad payload is fatal, a running pipeline
    // retryable (and the buyer is on the list already).
    let function = EraseFunction::new(lake.clone(), secret());
    let err = function
        .handle(json!({"buyer": buyer.as_str()}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "FatalError");
    assert!(err.to_string().contains("buyer_id"), "{err}");
    let err = function
        .handle(json!({"buyer_id": "  "}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "FatalError");
    let busy = RunId::parse("busy").unwrap();
    state::acquire_lease(
        lake.as_ref(),
        &busy,
        chrono::Duration::minutes(10),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let err = function
        .handle(json!({"buyer_id": buyer.as_str()}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "RetryableError", "{err}");
    state::release_lease(lake.as_ref(), &busy).await.unwrap();

    // The erasure itself.
    let report = function
        .handle(json!({"buyer_id": buyer.as_str()}))
        .await
        .unwrap();
    let report = serde_json::to_value(&report).unwrap();
    assert_eq!(report["archive_documents_deleted"], 2, "{report}");
    assert_eq!(report["complete"], true);
    assert_eq!(report["scrub"]["erased_buyers"], 2);
    for needle in [buyer.as_str(), pending.as_str(), "Words of EF"] {
        assert_eq!(
            lake_objects_naming(lake.as_ref(), needle).await,
            Vec::<String>::new(),
            "{needle}"
        );
        assert_eq!(
            archive_documents_naming(&archive, needle).await,
            0,
            "{needle}"
        );
    }
    // The live snapshot still validates (rollback's check) and serves the others.
    let live = reviews_stages::publish::promote(lake.as_ref(), &run)
        .await
        .unwrap();
    assert!(live.rows > 250);

    // The archive stage again (the backlog, the same run): the buyers stay out.
    lake.delete(&reviews_lake::state::archived_marker_key(&run))
        .await
        .unwrap();
    ArchiveFunction::new(lake.clone(), secret())
        .handle(json!({"run_id": run.as_str()}))
        .await
        .unwrap();
    assert_eq!(archive_documents_naming(&archive, &buyer).await, 0);
    assert_eq!(archive_documents_naming(&archive, &pending).await, 0);
}
