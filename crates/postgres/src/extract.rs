//! The change feed port on PostgreSQL ([`PgFeed`]), read as the read-only role: validate the
//! source schema, then, in one REPEATABLE READ snapshot, list the reviews deleted since the
//! watermark and stream the rows changed since it, in `(updated_at, review_id)` order,
//! through a server-side cursor (never the whole table in memory). Where the range starts and
//! what becomes of the rows is the extract stage's (`reviews_stages::extract_changes`): this
//! module only reads.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reviews_domain::RawReview;
use reviews_ports::{ChangeFeed, ChangeRead, Deletion, PortError, RawSource, ReadEnd, ReadRange};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel, Row};

use crate::config::{PgConfig, check_identifier, ident};
use crate::error::PgError;

/// Where an incremental extract resumes: the last row it wrote, in extract order. Rows are
/// read with `(updated_at, review_id) > (watermark.updated_at, watermark.review_id)`, so rows
/// sharing a timestamp are neither skipped nor read twice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Watermark {
    pub updated_at: DateTime<Utc>,
    pub review_id: String,
    /// The last deletion listed, in `(deleted_at, review_id)` order: the next extract lists
    /// the deletions after it. `None` when none was seen yet, and in watermarks written before
    /// deletions were tracked (which then list every deletion the source holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<DeletionMark>,
}

/// A position in the source's `review_deletion` table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeletionMark {
    pub deleted_at: DateTime<Utc>,
    pub review_id: String,
}

impl Watermark {
    /// The compact JSON form: the feed's position ([`ReadEnd::position`]), which the lake
    /// stores in the run's range and the live commit.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a watermark serialises")
    }

    pub fn from_json(s: &str) -> Result<Self, PgError> {
        serde_json::from_str(s).map_err(|e| PgError::Watermark(format!("{s:?}: {e}")))
    }
}

// ---------------------------------------------------------------------------------------------
// schema validation

/// The kinds of column type the extract can turn into text faithfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    Boolean,
    Date,
    Timestamp,
    TimestampTz,
}

impl Kind {
    fn of(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "text" | "character varying" | "character" => Kind::Text,
            "smallint" | "integer" | "bigint" | "numeric" => Kind::Integer,
            "boolean" => Kind::Boolean,
            "date" => Kind::Date,
            "timestamp without time zone" => Kind::Timestamp,
            "timestamp with time zone" => Kind::TimestampTz,
            _ => return None,
        })
    }
}

/// What each needed column may be. Text is accepted everywhere a value is read as text anyway.
const NEEDED: &[(&str, &str, &[Kind])] = {
    use Kind::*;
    &[
        ("review", "review_id", &[Text]),
        ("review", "product_id", &[Text]),
        ("review", "buyer_id", &[Text]),
        ("review", "rating", &[Integer, Text]),
        ("review", "title", &[Text]),
        ("review", "text", &[Text]),
        ("review", "helpful_votes", &[Integer, Text]),
        ("review", "total_votes", &[Integer, Text]),
        ("review", "verified_purchase", &[Boolean, Text]),
        (
            "review",
            "review_date",
            &[Date, Timestamp, TimestampTz, Text],
        ),
        ("review", "language", &[Text]),
        ("review", "marketplace", &[Text]),
        ("review", "updated_at", &[TimestampTz]),
        ("product", "product_id", &[Text]),
        ("product", "title", &[Text]),
        ("product", "category", &[Text]),
        ("buyer", "buyer_id", &[Text]),
    ]
};

/// The deletions table: optional (a source set up before it existed has none, and its
/// deletions are then not reported), but when it is there its columns must fit.
const DELETIONS_TABLE: &str = "review_deletion";
const DELETIONS: &[(&str, &str, &[Kind])] = &[
    (DELETIONS_TABLE, "review_id", &[Kind::Text]),
    (DELETIONS_TABLE, "deleted_at", &[Kind::TimestampTz]),
];

/// The source schema as validated: the kind of each needed column.
#[derive(Debug, Clone)]
pub struct SourceSchema {
    schema: String,
    kinds: HashMap<(&'static str, &'static str), Kind>,
    deletions: bool,
    /// `review_deletion.product_id` is there (a source set up before it existed lacks it:
    /// its deletions then have no product, and the pipeline looks in every bucket).
    deletion_products: bool,
}

/// Check that the tables and columns the extract needs exist, visible to the connected role,
/// with types it can read. The error names every missing table or column and every
/// incompatible type, e.g. `missing column review.rating`. The deletions table
/// (`review_deletion`) is optional: its absence is not an error (see
/// [`SourceSchema::tracks_deletions`]), but its columns are checked when it is there.
pub async fn validate_schema(client: &Client, schema: &str) -> Result<SourceSchema, PgError> {
    check_identifier("schema", schema)?;
    let tables: Vec<&str> = vec!["review", "product", "buyer", DELETIONS_TABLE];
    let rows = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text
             FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = ANY($2)",
            &[&schema, &tables],
        )
        .await
        .map_err(PgError::query("read information_schema"))?;
    let found: HashMap<(String, String), String> = rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    let mut problems = Vec::new();
    let mut kinds = HashMap::new();
    for table in tables.iter().filter(|t| **t != DELETIONS_TABLE) {
        if !found.keys().any(|(t, _)| t == table) {
            problems.push(format!(
                "missing table {schema}.{table} (or not visible to this role)"
            ));
        }
    }
    let deletions = found.keys().any(|(t, _)| t == DELETIONS_TABLE);
    let deletion_products = found
        .get(&(DELETIONS_TABLE.to_owned(), "product_id".to_owned()))
        .is_some_and(|t| Kind::of(t) == Some(Kind::Text));
    for (table, column, accepted) in NEEDED.iter().chain(DELETIONS) {
        if !found.keys().any(|(t, _)| t == table) {
            continue; // reported as a missing table, or the optional one is absent
        }
        match found.get(&((*table).to_owned(), (*column).to_owned())) {
            None => problems.push(format!("missing column {table}.{column}")),
            Some(data_type) => match Kind::of(data_type).filter(|k| accepted.contains(k)) {
                Some(kind) => {
                    kinds.insert((*table, *column), kind);
                }
                None => problems.push(format!(
                    "column {table}.{column} has type {data_type}, expected {}",
                    expected_types(accepted)
                )),
            },
        }
    }
    if problems.is_empty() {
        Ok(SourceSchema {
            schema: schema.to_owned(),
            kinds,
            deletions,
            deletion_products,
        })
    } else {
        Err(PgError::Schema { problems })
    }
}

fn expected_types(kinds: &[Kind]) -> String {
    kinds
        .iter()
        .map(|k| match k {
            Kind::Text => "text",
            Kind::Integer => "an integer type",
            Kind::Boolean => "boolean",
            Kind::Date => "date",
            Kind::Timestamp => "timestamp",
            Kind::TimestampTz => "timestamptz",
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

impl SourceSchema {
    /// Whether the source has the deletions table (`review_deletion`, visible to the role):
    /// then the extract lists the reviews deleted since the watermark.
    pub fn tracks_deletions(&self) -> bool {
        self.deletions
    }

    /// The expression that reads `alias.column` as text, as the source holds it.
    fn text_expr(&self, alias: &str, table: &'static str, column: &'static str) -> String {
        let col = format!("{alias}.{}", ident(column));
        match self.kinds.get(&(table, column)) {
            Some(Kind::Text) | None => col,
            Some(Kind::Integer | Kind::Boolean) => format!("{col}::text"),
            // Session time zone is UTC (set at connect), so timestamptz dates are UTC dates.
            Some(Kind::Date | Kind::Timestamp | Kind::TimestampTz) => {
                format!("to_char({col}, 'YYYY-MM-DD')")
            }
        }
    }

    /// The extract query. Values are parameters: `$1` the safety lag in seconds, then the
    /// lower bound `(updated_at, review_id)` when `lower`, then the upper bound when `upper`.
    fn select_sql(&self, lower: bool, upper: bool) -> String {
        let s = ident(&self.schema);
        let t = |table, column| self.text_expr("r", table, column);
        let mut sql = format!(
            "SELECT r.review_id::text, r.product_id::text, {}, {}, r.buyer_id::text, {}, \
             r.title::text, r.text::text, {}, {}, {}, {}, r.language::text, r.marketplace::text, \
             r.updated_at \
             FROM {s}.review r LEFT JOIN {s}.product p ON p.product_id = r.product_id \
             WHERE r.updated_at <= now() - make_interval(secs => $1::float8)",
            self.text_expr("p", "product", "title"),
            self.text_expr("p", "product", "category"),
            t("review", "rating"),
            t("review", "helpful_votes"),
            t("review", "total_votes"),
            t("review", "verified_purchase"),
            t("review", "review_date"),
        );
        push_range(&mut sql, "r.updated_at", "r.review_id", lower, upper);
        sql.push_str(" ORDER BY r.updated_at, r.review_id");
        sql
    }

    /// The deletions query, parameters as in [`Self::select_sql`] with `(deleted_at,
    /// review_id)` bounds. `newest_only`: just the last position (for a full extract, which
    /// lists nothing: everything not extracted is gone anyway).
    fn deletions_sql(&self, lower: bool, upper: bool, newest_only: bool) -> String {
        let mut sql = format!(
            "SELECT d.review_id::text, d.deleted_at, {} FROM {}.{} d \
             WHERE d.deleted_at <= now() - make_interval(secs => $1::float8)",
            if self.deletion_products {
                "d.product_id"
            } else {
                "NULL::text"
            },
            ident(&self.schema),
            ident(DELETIONS_TABLE)
        );
        push_range(&mut sql, "d.deleted_at", "d.review_id", lower, upper);
        if newest_only {
            sql.push_str(" ORDER BY d.deleted_at DESC, d.review_id DESC LIMIT 1");
        } else {
            sql.push_str(" ORDER BY d.deleted_at, d.review_id");
        }
        sql
    }
}

/// Append `AND (at, id) > ($2, $3)` when `lower`, then `AND (at, id) <= (.., ..)` when
/// `upper`, numbering the parameters after `$1` (the lag).
fn push_range(sql: &mut String, at: &str, id: &str, lower: bool, upper: bool) {
    let mut n = 1;
    if lower {
        sql.push_str(&format!(
            " AND ({at}, {id}) > (${}::timestamptz, ${}::text)",
            n + 1,
            n + 2
        ));
        n += 2;
    }
    if upper {
        sql.push_str(&format!(
            " AND ({at}, {id}) <= (${}::timestamptz, ${}::text)",
            n + 1,
            n + 2
        ));
    }
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn lag_and_bounds<'a>(
    lag: f64,
    bounds: impl IntoIterator<Item = (&'a DateTime<Utc>, &'a String)>,
) -> Params {
    let mut params: Params = vec![Box::new(lag)];
    for (at, id) in bounds {
        params.push(Box::new(*at));
        params.push(Box::new(id.clone()));
    }
    params
}

/// What to read of `review_deletion` in the extract's snapshot.
struct DeletionQuery {
    sql: String,
    params: Params,
    /// List the rows (an incremental extract); else only the newest position is read.
    list: bool,
}

// ---------------------------------------------------------------------------------------------
// streaming

type Batch = Result<Vec<RawReview>, PgError>;

/// Batches in flight between the reading task and the Parquet encoder.
const CHANNEL_BATCHES: usize = 4;

/// What the reading task saw, in one snapshot.
#[derive(Debug, Default)]
struct Pumped {
    /// `(updated_at, review_id)` of the last review row sent.
    last: Option<(DateTime<Utc>, String)>,
    /// The deleted review ids listed, in `(deleted_at, review_id)` order.
    deleted: Vec<Deletion>,
    /// The position of the last deletion listed (or, for a full extract, the newest one).
    deleted_last: Option<DeletionMark>,
}

fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// Inside one REPEATABLE READ, READ ONLY transaction (one snapshot, one `now()` for the lag):
/// read the deletions, then the review rows through a portal (a server-side cursor),
/// `fetch_rows` rows per round trip, sending each batch to `tx`. Returns what it read; `None`
/// after a failure (sent to `tx`) or when the receiver is gone.
async fn pump(
    mut client: Client,
    sql: String,
    params: Params,
    deletions: Option<DeletionQuery>,
    fetch_rows: i32,
    tx: mpsc::Sender<Batch>,
) -> Option<Pumped> {
    let result = async {
        let t = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(PgError::query("begin extract"))?;
        let mut pumped = Pumped::default();
        if let Some(q) = &deletions {
            let rows = t
                .query(q.sql.as_str(), &refs(&q.params))
                .await
                .map_err(PgError::query("read deletions"))?;
            pumped.deleted_last = rows.last().map(|r| DeletionMark {
                review_id: r.get(0),
                deleted_at: r.get(1),
            });
            if q.list {
                pumped.deleted = rows
                    .iter()
                    .map(|r| Deletion::of(r.get::<_, String>(0), r.get(2)))
                    .collect();
            }
        }
        let portal = t
            .bind(sql.as_str(), &refs(&params))
            .await
            .map_err(PgError::query("open extract cursor"))?;
        let mut position = 0u64;
        loop {
            let rows = t
                .query_portal(&portal, fetch_rows.max(1))
                .await
                .map_err(PgError::query("read extract cursor"))?;
            if rows.is_empty() {
                break;
            }
            let done = rows.len() < fetch_rows.max(1) as usize;
            let mut batch = Vec::with_capacity(rows.len());
            for row in &rows {
                position += 1;
                batch.push(raw_of(row, position));
            }
            if let Some(row) = rows.last() {
                pumped.last = Some((
                    row.get(14),
                    row.get::<_, Option<String>>(0).unwrap_or_default(),
                ));
            }
            if tx.send(Ok(batch)).await.is_err() {
                return Ok(None); // the consumer stopped: nothing more to do
            }
            if done {
                break;
            }
        }
        t.commit().await.map_err(PgError::query("end extract"))?;
        Ok::<_, PgError>(Some(pumped))
    }
    .await;
    match result {
        Ok(pumped) => pumped,
        Err(e) => {
            let _ = tx.send(Err(e)).await;
            None
        }
    }
}

fn raw_of(row: &Row, position: u64) -> RawReview {
    let s = |i: usize| row.get::<_, Option<String>>(i);
    RawReview {
        review_id: s(0),
        product_id: s(1),
        product_title: s(2),
        product_category: s(3),
        buyer_id: s(4),
        rating: s(5),
        title: s(6),
        text: s(7),
        helpful_votes: s(8),
        total_votes: s(9),
        verified_purchase: s(10),
        review_date: s(11),
        language: s(12),
        marketplace: s(13),
        source_position: Some(position),
        read_defect: None,
    }
}

/// One read of the feed: the batches the reading task sends, then what it saw.
struct PgRead {
    rx: mpsc::Receiver<Batch>,
    reader: tokio::task::JoinHandle<Option<Pumped>>,
    from: Option<Watermark>,
    /// The source has the deletions table: the read reports deletions.
    tracked: bool,
}

#[async_trait]
impl RawSource for PgRead {
    async fn next_batch(&mut self) -> Result<Option<Vec<RawReview>>, PortError> {
        match self.rx.recv().await {
            Some(Ok(batch)) => Ok(Some(batch)),
            // Typed and classified: a dropped connection stays retryable, a refused login
            // can be told apart by the caller (a rotated secret).
            Some(Err(e)) => Err(PortError::new(e)),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl ChangeRead for PgRead {
    async fn finish(self: Box<Self>) -> Result<ReadEnd, PortError> {
        let PgRead {
            rx,
            reader,
            from,
            tracked,
        } = *self;
        drop(rx);
        let pumped = reader
            .await
            .map_err(|e| PortError::fatal(format!("extract reader task: {e}")))?
            .ok_or_else(|| {
                PortError::fatal("the extract reader stopped before the end of the rows")
            })?;
        let deleted_to = pumped
            .deleted_last
            .or_else(|| from.as_ref().and_then(|w| w.deleted.clone()));
        let to = pumped
            .last
            .or_else(|| from.as_ref().map(|w| (w.updated_at, w.review_id.clone())))
            .map(|(updated_at, review_id)| Watermark {
                updated_at,
                review_id,
                deleted: deleted_to,
            });
        Ok(ReadEnd {
            position: to.as_ref().map(Watermark::to_json),
            deletions: tracked.then_some(pumped.deleted),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// the feed

/// The change feed port on PostgreSQL: positions are [`Watermark`]s (as JSON).
///
/// A read connects as the configured (read-only) role with retry and backoff, validates the
/// schema, then reads deletions and rows in one snapshot, leaving out what is newer than
/// [`PgConfig::safety_lag`]. Deletions: an incremental read lists the `review_deletion` rows
/// after the watermark's [`Watermark::deleted`]; a full read lists none (its rows are the
/// whole dataset) and only records the newest position. A source without the table is read
/// without deletions ([`ReadEnd::deletions`] is `None`), with a warning.
#[derive(Debug, Clone)]
pub struct PgFeed {
    cfg: PgConfig,
}

impl PgFeed {
    pub fn new(cfg: PgConfig) -> Self {
        Self { cfg }
    }
}

#[async_trait]
impl ChangeFeed for PgFeed {
    async fn read(&self, range: &ReadRange) -> Result<Box<dyn ChangeRead>, PortError> {
        self.open(range).await.map_err(PortError::new)
    }

    fn describe(&self) -> String {
        format!("postgresql://{}", self.cfg.target())
    }
}

impl PgFeed {
    async fn open(&self, range: &ReadRange) -> Result<Box<dyn ChangeRead>, PgError> {
        let cfg = &self.cfg;
        let position = |p: &Option<String>| p.as_deref().map(Watermark::from_json).transpose();
        let from = position(&range.from)?;
        let upper = position(&range.upto)?;
        let client = cfg.connect().await?;
        client
            .batch_execute("SET TIME ZONE 'UTC'; SET datestyle = 'ISO, YMD'")
            .await
            .map_err(PgError::query("set session"))?;
        let schema = validate_schema(&client, &cfg.schema).await?;
        let lag = cfg.safety_lag.as_secs_f64();
        let sql = schema.select_sql(from.is_some(), upper.is_some());
        let params = lag_and_bounds(
            lag,
            [&from, &upper]
                .into_iter()
                .flatten()
                .map(|w| (&w.updated_at, &w.review_id)),
        );
        let deletions = if !schema.tracks_deletions() {
            tracing::warn!(
                source = %cfg.target(),
                "the source has no {}.{DELETIONS_TABLE} table (set up before deletions were \
                 tracked, or not readable by this role): deletions at the source are not \
                 reported; run `reviews db setup` to add it",
                cfg.schema
            );
            None
        } else {
            deletion_query(&schema, lag, from.as_ref(), upper.as_ref())
        };
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let reader = tokio::spawn(pump(client, sql, params, deletions, cfg.fetch_rows, tx));
        Ok(Box::new(PgRead {
            rx,
            reader,
            from,
            tracked: schema.tracks_deletions(),
        }))
    }
}

/// The deletions to read for the range `(from, upper]`: `None` when there is nothing to read
/// (a re-run whose first attempt saw no deletion).
fn deletion_query(
    schema: &SourceSchema,
    lag: f64,
    from: Option<&Watermark>,
    upper: Option<&Watermark>,
) -> Option<DeletionQuery> {
    let lower = from.and_then(|w| w.deleted.as_ref());
    let upper = match upper {
        // A re-run reads up to where its first attempt got; if that saw no deletion (the
        // mark did not move from `from`'s), there is nothing to read again.
        Some(w) => match &w.deleted {
            Some(m) if Some(m) != lower => Some(m),
            _ => return None,
        },
        None => None,
    };
    let list = from.is_some();
    Some(DeletionQuery {
        sql: schema.deletions_sql(lower.is_some(), upper.is_some(), !list),
        params: lag_and_bounds(
            lag,
            [lower, upper]
                .into_iter()
                .flatten()
                .map(|m| (&m.deleted_at, &m.review_id)),
        ),
        list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_json_round_trips() {
        let w = Watermark {
            updated_at: DateTime::parse_from_rfc3339("2026-11-29T08:55:38.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            review_id: "R1".into(),
            deleted: None,
        };
        assert_eq!(Watermark::from_json(&w.to_json()).unwrap(), w);
        assert!(!w.to_json().contains("deleted"), "{}", w.to_json());
        assert!(Watermark::from_json("{}").is_err());
        // A watermark written before deletions were tracked still reads.
        let old = r#"{"updated_at":"2026-11-29T08:55:38.123456Z","review_id":"R1"}"#;
        assert_eq!(Watermark::from_json(old).unwrap(), w);
        let with = Watermark {
            deleted: Some(DeletionMark {
                deleted_at: w.updated_at,
                review_id: "R0".into(),
            }),
            ..w.clone()
        };
        assert_eq!(Watermark::from_json(&with.to_json()).unwrap(), with);
    }

    #[test]
    fn the_query_numbers_its_parameters() {
        let kinds = NEEDED
            .iter()
            .map(|(t, c, k)| ((*t, *c), k[0]))
            .collect::<HashMap<_, _>>();
        let s = SourceSchema {
            schema: "public".into(),
            kinds,
            deletions: true,
            deletion_products: true,
        };
        let both = s.select_sql(true, true);
        assert!(both.contains("> ($2::timestamptz, $3::text)"), "{both}");
        assert!(both.contains("<= ($4::timestamptz, $5::text)"), "{both}");
        let upper = s.select_sql(false, true);
        assert!(upper.contains("<= ($2::timestamptz, $3::text)"), "{upper}");
        assert!(both.contains("to_char(r.\"review_date\", 'YYYY-MM-DD')"));
        assert!(both.contains("r.\"rating\"::text"));
        let d = s.deletions_sql(true, true, false);
        assert!(d.contains("FROM \"public\".\"review_deletion\" d"), "{d}");
        assert!(
            d.contains("(d.deleted_at, d.review_id) > ($2::timestamptz, $3::text)"),
            "{d}"
        );
        assert!(
            d.contains("(d.deleted_at, d.review_id) <= ($4::timestamptz, $5::text)"),
            "{d}"
        );
        assert!(d.ends_with("ORDER BY d.deleted_at, d.review_id"), "{d}");
        let newest = s.deletions_sql(false, false, true);
        assert!(newest.ends_with("DESC LIMIT 1"), "{newest}");
    }

    #[test]
    fn deletions_are_listed_after_the_mark_and_a_rerun_reads_its_own_range() {
        let s = SourceSchema {
            schema: "public".into(),
            kinds: HashMap::new(),
            deletions: true,
            deletion_products: true,
        };
        let at = Utc::now();
        let mark = |id: &str| DeletionMark {
            deleted_at: at,
            review_id: id.into(),
        };
        let wm = |deleted: Option<DeletionMark>| Watermark {
            updated_at: at,
            review_id: "R".into(),
            deleted,
        };
        // Full extract: only the newest position.
        let q = deletion_query(&s, 0.0, None, None).unwrap();
        assert!(!q.list && q.params.len() == 1);
        // Incremental from an old watermark (no mark): every deletion.
        let q = deletion_query(&s, 0.0, Some(&wm(None)), None).unwrap();
        assert!(q.list && q.params.len() == 1);
        // Incremental after a mark.
        let q = deletion_query(&s, 0.0, Some(&wm(Some(mark("a")))), None).unwrap();
        assert!(q.list && q.params.len() == 3);
        // Re-run: between the marks; nothing when the first attempt saw no deletion.
        let q = deletion_query(
            &s,
            0.0,
            Some(&wm(Some(mark("a")))),
            Some(&wm(Some(mark("b")))),
        )
        .unwrap();
        assert!(q.list && q.params.len() == 5);
        assert!(
            deletion_query(
                &s,
                0.0,
                Some(&wm(Some(mark("a")))),
                Some(&wm(Some(mark("a"))))
            )
            .is_none()
        );
        assert!(deletion_query(&s, 0.0, Some(&wm(None)), Some(&wm(None))).is_none());
    }
}
