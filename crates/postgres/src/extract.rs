//! Extract from PostgreSQL as the read-only role: validate the source schema, then stream the
//! rows changed since the watermark, in `(updated_at, review_id)` order, through a server-side
//! cursor into raw/ (never the whole table in memory), and move the watermark only after raw/
//! is written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use reviews_domain::RawReview;
use reviews_lake::{Lake, LakeError, RunId, layout};
use reviews_stages::{ExtractOutput, Progress, StageError, extract_rows};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel, Row};

use crate::config::{PgConfig, check_identifier, ident};
use crate::error::{ExtractError, PgError};

/// Where an incremental extract resumes: the last row it wrote, in extract order. Rows are
/// read with `(updated_at, review_id) > (watermark.updated_at, watermark.review_id)`, so rows
/// sharing a timestamp are neither skipped nor read twice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Watermark {
    pub updated_at: DateTime<Utc>,
    pub review_id: String,
}

impl Watermark {
    /// The compact JSON form carried in [`ExtractOutput::watermark`].
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a watermark serialises")
    }

    pub fn from_json(s: &str) -> Result<Self, PgError> {
        serde_json::from_str(s).map_err(|e| PgError::Watermark(format!("{s:?}: {e}")))
    }
}

/// `state/watermark.json`: the watermark and the run that wrote it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredWatermark {
    #[serde(flatten)]
    watermark: Watermark,
    run_id: RunId,
}

/// `state/runs/run=<id>/extract.json`: the range a run extracted, so that re-running the same
/// run id re-reads the same range (and does not overwrite its raw/ with an empty file).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunRange {
    from: Option<Watermark>,
    to: Option<Watermark>,
    rows: u64,
}

fn run_range_key(run: &RunId) -> String {
    format!("state/runs/run={run}/extract.json")
}

/// The stored watermark, if any.
pub async fn read_watermark(lake: &dyn Lake) -> Result<Option<Watermark>, ExtractError> {
    match lake.get(layout::WATERMARK).await {
        Ok(bytes) => {
            let stored: StoredWatermark = serde_json::from_slice(&bytes)
                .map_err(|e| PgError::Watermark(format!("{}: {e}", layout::WATERMARK)))?;
            Ok(Some(stored.watermark))
        }
        Err(LakeError::NotFound(_)) => Ok(None),
        Err(e) => Err(StageError::from(e).into()),
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

/// The source schema as validated: the kind of each needed column.
#[derive(Debug, Clone)]
pub struct SourceSchema {
    schema: String,
    kinds: HashMap<(&'static str, &'static str), Kind>,
}

/// Check that the tables and columns the extract needs exist, visible to the connected role,
/// with types it can read. The error names every missing table or column and every
/// incompatible type, e.g. `missing column review.rating`.
pub async fn validate_schema(client: &Client, schema: &str) -> Result<SourceSchema, PgError> {
    check_identifier("schema", schema)?;
    let tables: Vec<&str> = vec!["review", "product", "buyer"];
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
    for table in &tables {
        if !found.keys().any(|(t, _)| t == table) {
            problems.push(format!(
                "missing table {schema}.{table} (or not visible to this role)"
            ));
        }
    }
    for (table, column, accepted) in NEEDED {
        if !found.keys().any(|(t, _)| t == table) {
            continue; // reported as a missing table
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
        let mut n = 1;
        if lower {
            sql.push_str(&format!(
                " AND (r.updated_at, r.review_id) > (${}::timestamptz, ${}::text)",
                n + 1,
                n + 2
            ));
            n += 2;
        }
        if upper {
            sql.push_str(&format!(
                " AND (r.updated_at, r.review_id) <= (${}::timestamptz, ${}::text)",
                n + 1,
                n + 2
            ));
        }
        sql.push_str(" ORDER BY r.updated_at, r.review_id");
        sql
    }
}

// ---------------------------------------------------------------------------------------------
// streaming

type Batch = Result<Vec<RawReview>, PgError>;

/// Batches in flight between the reading task and the Parquet encoder.
const CHANNEL_BATCHES: usize = 4;

/// Read the range through a portal (a server-side cursor) inside one REPEATABLE READ, READ ONLY
/// transaction, `fetch_rows` rows per round trip, sending each batch to `tx`. Returns the
/// watermark of the last row sent. Stops early (Ok(None)) when the receiver is gone.
async fn pump(
    mut client: Client,
    sql: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
    fetch_rows: i32,
    tx: mpsc::Sender<Batch>,
) -> Option<Watermark> {
    let result = async {
        let t = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(PgError::query("begin extract"))?;
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let portal = t
            .bind(sql.as_str(), &refs)
            .await
            .map_err(PgError::query("open extract cursor"))?;
        let mut position = 0u64;
        let mut last: Option<Watermark> = None;
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
                last = Some(Watermark {
                    updated_at: row.get(14),
                    review_id: row.get::<_, Option<String>>(0).unwrap_or_default(),
                });
            }
            if tx.send(Ok(batch)).await.is_err() {
                return Ok(None); // the consumer stopped: nothing more to do
            }
            if done {
                break;
            }
        }
        t.commit().await.map_err(PgError::query("end extract"))?;
        Ok::<_, PgError>(last)
    }
    .await;
    match result {
        Ok(last) => last,
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

/// A synchronous iterator over the batches the reading task sends: what
/// [`reviews_stages::extract_rows`] consumes inside `tokio::task::block_in_place`. It blocks on
/// the channel (`blocking_recv`), which is allowed there: `block_in_place` leaves the runtime
/// context of the thread (this needs the multi-thread runtime, as `extract_rows` does). A
/// source error is kept, typed, in `failure` and surfaces as a message to `extract_rows`.
struct ChannelRows {
    rx: mpsc::Receiver<Batch>,
    current: std::vec::IntoIter<RawReview>,
    failure: Arc<Mutex<Option<PgError>>>,
    done: bool,
}

impl Iterator for ChannelRows {
    type Item = Result<RawReview, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.current.next() {
                return Some(Ok(row));
            }
            if self.done {
                return None;
            }
            match self.rx.blocking_recv() {
                Some(Ok(batch)) => self.current = batch.into_iter(),
                Some(Err(e)) => {
                    self.done = true;
                    let message = e.to_string();
                    *self.failure.lock().expect("not poisoned") = Some(e);
                    return Some(Err(message));
                }
                None => {
                    self.done = true;
                    return None;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// the stage

/// Extract the rows changed since the watermark into `raw/run=<run>/part-00000.parquet`.
///
/// The starting point is `watermark_in` when given; else, when this run id already extracted
/// once, the same range as then (a re-run re-reads its own range and overwrites only its own
/// objects); else `state/watermark.json`; else everything. Connects as the configured (read-
/// only) role with retry and backoff, validates the schema, then streams. Only after raw/ is
/// written are the run's range and `state/watermark.json` written; the stored watermark only
/// moves forward.
///
/// Must run on a multi-thread tokio runtime (as [`extract_rows`] must).
pub async fn extract_to_lake(
    lake: Arc<dyn Lake>,
    run: &RunId,
    cfg: &PgConfig,
    watermark_in: Option<Watermark>,
    progress: &dyn Progress,
) -> Result<ExtractOutput, ExtractError> {
    let range_key = run_range_key(run);
    let (from, upper) = match watermark_in {
        Some(w) => (Some(w), None),
        None => match lake.get(&range_key).await {
            Ok(bytes) => {
                let range: RunRange = serde_json::from_slice(&bytes)
                    .map_err(|e| PgError::Watermark(format!("{range_key}: {e}")))?;
                tracing::info!(run_id = %run, "re-run: extracting the run's recorded range again");
                let upper = range.to.clone().or(range.from.clone());
                (range.from, upper)
            }
            Err(LakeError::NotFound(_)) => (read_watermark(lake.as_ref()).await?, None),
            Err(e) => return Err(StageError::from(e).into()),
        },
    };

    let client = cfg.connect().await?;
    client
        .batch_execute("SET TIME ZONE 'UTC'; SET datestyle = 'ISO, YMD'")
        .await
        .map_err(PgError::query("set session"))?;
    let schema = validate_schema(&client, &cfg.schema).await?;
    let sql = schema.select_sql(from.is_some(), upper.is_some());
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> =
        vec![Box::new(cfg.safety_lag.as_secs_f64())];
    for w in [&from, &upper].into_iter().flatten() {
        params.push(Box::new(w.updated_at));
        params.push(Box::new(w.review_id.clone()));
    }

    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let reader = tokio::spawn(pump(client, sql, params, cfg.fetch_rows, tx));
    let failure = Arc::new(Mutex::new(None));
    let rows = ChannelRows {
        rx,
        current: Vec::new().into_iter(),
        failure: failure.clone(),
        done: false,
    };
    let written = extract_rows(lake.clone(), run, rows, progress, None).await;
    let last = reader
        .await
        .map_err(|e| StageError::Internal(format!("extract reader task: {e}")))?;
    let mut out = match written {
        Ok(out) => out,
        Err(e) => {
            // A source failure comes back from extract_rows as a plain message: return the
            // typed error instead, so a dropped connection stays retryable.
            if let Some(pg) = failure.lock().expect("not poisoned").take() {
                return Err(pg.into());
            }
            return Err(e.into());
        }
    };

    // raw/ is written: record the range, then move the watermark (forward only).
    let to = last.or_else(|| from.clone());
    let range = RunRange {
        from: from.clone(),
        to: to.clone(),
        rows: out.rows,
    };
    lake.put(
        &range_key,
        serde_json::to_vec(&range).expect("serialises").into(),
    )
    .await
    .map_err(StageError::from)?;
    if let Some(to) = &to {
        let current = read_watermark(lake.as_ref()).await?;
        if current.as_ref().is_none_or(|c| c < to) {
            let stored = StoredWatermark {
                watermark: to.clone(),
                run_id: run.clone(),
            };
            lake.put(
                layout::WATERMARK,
                serde_json::to_vec(&stored).expect("serialises").into(),
            )
            .await
            .map_err(StageError::from)?;
        }
    }
    out.watermark = to.as_ref().map(Watermark::to_json);
    out.incremental = from.is_some();
    tracing::info!(
        run_id = %run, rows = out.rows, source = %cfg.target(),
        watermark = out.watermark.as_deref().unwrap_or(""), "PostgreSQL extract done"
    );
    Ok(out)
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
        };
        assert_eq!(Watermark::from_json(&w.to_json()).unwrap(), w);
        assert!(Watermark::from_json("{}").is_err());
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
        };
        let both = s.select_sql(true, true);
        assert!(both.contains("> ($2::timestamptz, $3::text)"), "{both}");
        assert!(both.contains("<= ($4::timestamptz, $5::text)"), "{both}");
        let upper = s.select_sql(false, true);
        assert!(upper.contains("<= ($2::timestamptz, $3::text)"), "{upper}");
        assert!(both.contains("to_char(r.\"review_date\", 'YYYY-MM-DD')"));
        assert!(both.contains("r.\"rating\"::text"));
    }
}
