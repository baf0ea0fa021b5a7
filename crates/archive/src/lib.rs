//! The MongoDB archive of raw rows (docs/ARCHITECTURE.md section 2.2: the archive branch).
//!
//! Every raw row a run extracted is kept, as read, in one collection (default
//! `reviews_archive.raw_reviews`), one document per review: `_id` is the review id (trimmed), so
//! archiving the same rows again (a re-run, an updated review in a later run) replaces the
//! document instead of adding one. A unique index on `review_id` makes the key explicit.
//! Rows without a review id are archived too, keyed by where they came from:
//! `_id: {run_id, source_position}` (and no `review_id` field, which the sparse unique index
//! skips).
//!
//! This crate is the adapter of the archive port ([`reviews_ports::RawArchive`]): it writes
//! and deletes documents. What to archive, the backlog and the markers in the lake are the
//! archive stage's (`reviews_stages::archive`). MongoDB being down must not stop the
//! pipeline: [`ArchiveError`] is classified retryable then, and the state machine catches it.
//!
//! [`Archive::erase_buyer`] deletes a buyer's archived documents (right to erasure).

use std::fmt;
use std::time::Duration;

use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use reviews_domain::RawReview;
use reviews_domain::record::RAW_FIELDS;
use reviews_ports::{Classified, ErrorClass, PortError, RawArchive, Upserted};
use thiserror::Error;

/// Where the archive is and how long to wait for it. The URI holds a secret: [`fmt::Debug`]
/// does not show it.
#[derive(Clone)]
pub struct ArchiveConfig {
    uri: String,
    pub database: String,
    pub collection: String,
    /// How long an operation waits for a usable server before failing (retryable).
    pub server_selection_timeout: Duration,
    pub connect_timeout: Duration,
    /// Documents per `update` command, and an approximate byte budget per command (MongoDB's
    /// limit is 16 MiB per command document).
    pub batch_docs: usize,
    pub batch_bytes: usize,
}

impl ArchiveConfig {
    /// The defaults: database `reviews_archive`, collection `raw_reviews`, 10 s server
    /// selection timeout, 1,000 documents or 8 MiB per write command.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            database: "reviews_archive".to_owned(),
            collection: "raw_reviews".to_owned(),
            server_selection_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            batch_docs: 1_000,
            batch_bytes: 8 << 20,
        }
    }
}

impl fmt::Debug for ArchiveConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchiveConfig")
            .field("database", &self.database)
            .field("collection", &self.collection)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error("archive configuration: {0}")]
    Config(String),
    #[error("MongoDB {operation}: {source}")]
    Mongo {
        operation: &'static str,
        #[source]
        source: mongodb::error::Error,
    },
    /// The server refused some documents (e.g. a duplicate key).
    #[error("MongoDB refused {count} document(s) of run {run}: {first}")]
    Write {
        run: String,
        count: usize,
        first: String,
    },
}

/// MongoDB error codes worth retrying (the driver's retryable read/write codes: network,
/// primary stepping down, shutting down, exceeded time limit, ...).
const TRANSIENT_CODES: [i32; 15] = [
    6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 50, 64,
];

impl ArchiveError {
    fn mongo(operation: &'static str) -> impl FnOnce(mongodb::error::Error) -> ArchiveError {
        move |source| ArchiveError::Mongo { operation, source }
    }

    /// Whether trying again later may succeed: MongoDB unreachable, timing out, restarting.
    /// Authentication, authorisation and data errors are fatal.
    pub fn is_retryable(&self) -> bool {
        match self {
            ArchiveError::Mongo { source, .. } => is_transient(source),
            ArchiveError::Config(_) | ArchiveError::Write { .. } => false,
        }
    }

    /// Whether MongoDB refused the credentials (code 18, AuthenticationFailed): with a
    /// rotated secret, the cached URI is stale and a fresh read may succeed.
    pub fn is_auth_failure(&self) -> bool {
        match self {
            ArchiveError::Mongo { source, .. } => match source.kind.as_ref() {
                ErrorKind::Authentication { .. } => true,
                ErrorKind::Command(c) => c.code == 18,
                _ => false,
            },
            _ => false,
        }
    }
}

/// Whether a driver error is a transient fault (server down or unreachable, network, a
/// retryable server code).
pub fn is_transient(e: &mongodb::error::Error) -> bool {
    if e.contains_label("RetryableWriteError") || e.contains_label("TransientTransactionError") {
        return true;
    }
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => true,
        ErrorKind::Command(c) => TRANSIENT_CODES.contains(&c.code),
        _ => false,
    }
}

impl Classified for ArchiveError {
    fn class(&self) -> ErrorClass {
        ErrorClass::of(ArchiveError::is_retryable(self))
    }
}

/// A client of the archive collection. Create it once (per cold start); it connects lazily.
#[derive(Clone)]
pub struct Archive {
    db: Database,
    coll: Collection<Document>,
    cfg: ArchiveConfig,
}

impl Archive {
    /// Parse the URI and build the client. Only resolves `mongodb+srv` names: no operation
    /// reaches the server until the first call.
    pub async fn connect(cfg: ArchiveConfig) -> Result<Self, ArchiveError> {
        let mut opts = ClientOptions::parse(&cfg.uri)
            .await
            .map_err(|e| ArchiveError::Config(format!("invalid MongoDB URI: {}", e.kind)))?;
        opts.server_selection_timeout = Some(cfg.server_selection_timeout);
        opts.connect_timeout = Some(cfg.connect_timeout);
        opts.app_name = Some("reviews-pipeline".to_owned());
        let client = Client::with_options(opts).map_err(ArchiveError::mongo("client"))?;
        let db = client.database(&cfg.database);
        let coll = db.collection::<Document>(&cfg.collection);
        Ok(Self { db, coll, cfg })
    }

    pub fn collection(&self) -> &Collection<Document> {
        &self.coll
    }

    /// Create the indexes if missing (idempotent): the unique key on `review_id` (sparse: rows
    /// without a review id are keyed by run and position), and `buyer_key` for erasure.
    pub async fn ensure_indexes(&self) -> Result<(), ArchiveError> {
        let unique = IndexModel::builder()
            .keys(doc! { "review_id": 1 })
            .options(
                IndexOptions::builder()
                    .name("review_id_unique".to_owned())
                    .unique(true)
                    .sparse(true)
                    .build(),
            )
            .build();
        let buyer = IndexModel::builder()
            .keys(doc! { "buyer_key": 1 })
            .options(IndexOptions::builder().name("buyer_key".to_owned()).build())
            .build();
        self.coll
            .create_indexes([unique, buyer])
            .await
            .map_err(ArchiveError::mongo("createIndexes"))?;
        Ok(())
    }

    /// Upsert rows of run `run` (one `update` command per batch, unordered). Returns
    /// (inserted, replaced).
    pub async fn upsert_rows(
        &self,
        run: &str,
        rows: &[RawReview],
    ) -> Result<(u64, u64), ArchiveError> {
        let archived_at = mongodb::bson::DateTime::now();
        let (mut inserted, mut replaced) = (0, 0);
        let mut updates: Vec<Document> = Vec::new();
        let mut bytes = 0usize;
        for row in rows {
            let (id, document, size) = to_document(run, row, archived_at);
            updates.push(doc! { "q": { "_id": id }, "u": document, "upsert": true });
            bytes += size;
            if updates.len() >= self.cfg.batch_docs.max(1) || bytes >= self.cfg.batch_bytes {
                let (i, r) = self.send(run, std::mem::take(&mut updates)).await?;
                inserted += i;
                replaced += r;
                bytes = 0;
            }
        }
        if !updates.is_empty() {
            let (i, r) = self.send(run, updates).await?;
            inserted += i;
            replaced += r;
        }
        Ok((inserted, replaced))
    }

    async fn send(&self, run: &str, updates: Vec<Document>) -> Result<(u64, u64), ArchiveError> {
        let n = updates.len() as u64;
        let reply = self
            .db
            .run_command(doc! {
                "update": self.coll.name(),
                "updates": updates,
                "ordered": false,
            })
            .await
            .map_err(ArchiveError::mongo("update"))?;
        if let Ok(errors) = reply.get_array("writeErrors")
            && !errors.is_empty()
        {
            let first = errors
                .first()
                .and_then(Bson::as_document)
                .and_then(|d| d.get_str("errmsg").ok())
                .unwrap_or("unknown")
                .to_owned();
            return Err(ArchiveError::Write {
                run: run.to_string(),
                count: errors.len(),
                first,
            });
        }
        let upserted = reply.get_array("upserted").map(|a| a.len()).unwrap_or(0) as u64;
        Ok((upserted, n - upserted))
    }

    /// Right to erasure: delete every archived document of a buyer (matched on the trimmed
    /// buyer id). Returns how many were deleted. Nothing brings them back: the archive stage
    /// skips the rows of every buyer on the lake's erased list (and extract writes such rows
    /// redacted). The whole erasure is `reviews_stages::erase::erase`.
    pub async fn erase_buyer(&self, buyer_id: &str) -> Result<u64, ArchiveError> {
        let key = buyer_id.trim();
        if key.is_empty() {
            return Err(ArchiveError::Config("empty buyer id".into()));
        }
        let result = self
            .coll
            .delete_many(doc! { "buyer_key": key })
            .await
            .map_err(ArchiveError::mongo("delete"))?;
        tracing::info!(
            deleted = result.deleted_count,
            "buyer erased from the archive"
        );
        Ok(result.deleted_count)
    }
}

/// The archive port, on MongoDB.
#[async_trait::async_trait]
impl RawArchive for Archive {
    async fn prepare(&self) -> Result<(), PortError> {
        self.ensure_indexes().await.map_err(PortError::new)
    }

    async fn upsert(&self, run_id: &str, rows: &[RawReview]) -> Result<Upserted, PortError> {
        let (inserted, replaced) = self
            .upsert_rows(run_id, rows)
            .await
            .map_err(PortError::new)?;
        Ok(Upserted { inserted, replaced })
    }

    async fn erase_buyer(&self, buyer_key: &str) -> Result<u64, PortError> {
        Archive::erase_buyer(self, buyer_key)
            .await
            .map_err(PortError::new)
    }
}

/// The document of one raw row, its `_id`, and its approximate size in bytes.
fn to_document(
    run: &str,
    row: &RawReview,
    archived_at: mongodb::bson::DateTime,
) -> (Bson, Document, usize) {
    let key = row
        .review_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let id = match key {
        Some(k) => Bson::String(k.to_owned()),
        None => Bson::Document(doc! {
            "run_id": run,
            "source_position": row.source_position.map(|p| p as i64),
        }),
    };
    let mut d = Document::new();
    d.insert("_id", id.clone());
    let mut size = 64;
    let values = row.field_values();
    let present = [
        row.review_id.is_some(),
        row.product_id.is_some(),
        row.product_title.is_some(),
        row.product_category.is_some(),
        row.buyer_id.is_some(),
        row.rating.is_some(),
        row.title.is_some(),
        row.text.is_some(),
        row.helpful_votes.is_some(),
        row.total_votes.is_some(),
        row.verified_purchase.is_some(),
        row.review_date.is_some(),
        row.language.is_some(),
        row.marketplace.is_some(),
    ];
    for ((name, value), present) in RAW_FIELDS.iter().zip(values).zip(present) {
        if *name == "review_id" && key.is_none() {
            continue; // keyless: no review_id field (the sparse unique index skips it)
        }
        size += name.len() + value.len() + 8;
        d.insert(
            *name,
            if present {
                Bson::String(value)
            } else {
                Bson::Null
            },
        );
    }
    d.insert(
        "source_position",
        row.source_position
            .map(|p| Bson::Int64(p as i64))
            .unwrap_or(Bson::Null),
    );
    d.insert(
        "read_defect",
        row.read_defect
            .clone()
            .map(Bson::String)
            .unwrap_or(Bson::Null),
    );
    if let Some(buyer) = row
        .buyer_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        d.insert("buyer_key", buyer);
    }
    d.insert("run_id", run);
    d.insert("archived_at", archived_at);
    (id, d, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_raw_fields_and_key_by_review_id() {
        let run = "r1";
        let row = RawReview {
            review_id: Some(" R1 ".into()),
            buyer_id: Some(" C1".into()),
            rating: Some("five".into()),
            text: Some(String::new()),
            source_position: Some(7),
            ..Default::default()
        };
        let (id, d, _) = to_document(run, &row, mongodb::bson::DateTime::now());
        assert_eq!(id, Bson::String("R1".into()));
        assert_eq!(d.get_str("review_id").unwrap(), " R1 ");
        assert_eq!(d.get_str("rating").unwrap(), "five");
        assert_eq!(d.get_str("text").unwrap(), "");
        assert_eq!(d.get("title"), Some(&Bson::Null));
        assert_eq!(d.get_str("buyer_key").unwrap(), "C1");
        assert_eq!(d.get_i64("source_position").unwrap(), 7);
        assert_eq!(d.get_str("run_id").unwrap(), "r1");
        assert!(d.get_datetime("archived_at").is_ok());

        let keyless = RawReview {
            review_id: Some("  ".into()),
            source_position: Some(9),
            ..Default::default()
        };
        let (id, d, _) = to_document(run, &keyless, mongodb::bson::DateTime::now());
        assert_eq!(
            id,
            Bson::Document(doc! { "run_id": "r1", "source_position": 9_i64 })
        );
        assert!(d.get("review_id").is_none());
        assert!(d.get("buyer_key").is_none());
    }

    #[test]
    fn debug_hides_the_uri() {
        let c = ArchiveConfig::new("mongodb://u:s3cret@127.0.0.1:1/");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
