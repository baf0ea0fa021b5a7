//! Arrow schemas of the datasets (raw, cleaned, curated), versioned, and conversions between
//! records and Arrow record batches.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float32Builder, Int16Builder, ListBuilder, StringBuilder,
    StructBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use arrow_array::types::Float32Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float32Array, Int16Array, Int32Array, ListArray,
    RecordBatch, StringArray, StructArray, TimestampMicrosecondArray, UInt8Array, UInt32Array,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::record::{RAW_FIELDS, RawReview, Review};
use crate::score::Signals;

/// Key of the Parquet/Arrow metadata entry that names a dataset's schema and version.
pub const SCHEMA_METADATA_KEY: &str = "reviews.schema";
pub const RAW_SCHEMA_ID: &str = "raw/1";
pub const CLEANED_SCHEMA_ID: &str = "cleaned/1";
pub const CURATED_SCHEMA_ID: &str = "curated/3";
/// Curated files written before the integer columns became signed (rating UInt8, the counts
/// UInt32: types Redshift Spectrum cannot read and Athena and Spark read only partly). Still read
/// (see [`CURATED_V1_SCHEMA`]); the first run on a snapshot holding them rewrites every bucket.
pub const CURATED_V1_SCHEMA_ID: &str = "curated/1";
/// Curated files written before the learned ranking (no `reasons`, no `sig_learned`). Still
/// read, the two columns null; the first run on a snapshot holding them rewrites every bucket.
pub const CURATED_V2_SCHEMA_ID: &str = "curated/2";
/// The curated schema version, as written in the manifest.
pub const CURATED_SCHEMA_VERSION: u32 = 3;

#[derive(Debug, Error)]
pub enum SchemaError {
    #[error("column {0:?} is missing or has the wrong type")]
    Column(String),
    #[error("dataset schema is {found:?}, expected {expected:?}")]
    Version { found: String, expected: String },
    #[error("invalid value in column {column:?} at row {row}")]
    Value { column: String, row: usize },
    #[error(transparent)]
    Arrow(#[from] arrow_schema::ArrowError),
}

fn with_id(fields: Vec<Field>, id: &str) -> SchemaRef {
    let meta = HashMap::from([(SCHEMA_METADATA_KEY.to_owned(), id.to_owned())]);
    Arc::new(Schema::new_with_metadata(fields, meta))
}

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// raw/: every field as the source had it (nullable text), plus where it came from.
pub static RAW_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields = RAW_FIELDS
        .iter()
        .map(|name| {
            let ty = if *name == "source_position" {
                DataType::UInt64
            } else {
                DataType::Utf8
            };
            Field::new(*name, ty, true)
        })
        .collect();
    with_id(fields, RAW_SCHEMA_ID)
});

/// cleaned/: typed, normalised reviews plus metadata columns.
pub static CLEANED_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    with_id(
        vec![
            Field::new("review_id", DataType::Utf8, false),
            Field::new("product_id", DataType::Utf8, false),
            Field::new("product_title", DataType::Utf8, false),
            Field::new("product_category", DataType::Utf8, false),
            Field::new("buyer_id", DataType::Utf8, true),
            Field::new("rating", DataType::UInt8, false),
            Field::new("title", DataType::Utf8, false),
            Field::new("text", DataType::Utf8, false),
            Field::new("helpful_votes", DataType::UInt32, false),
            Field::new("total_votes", DataType::UInt32, false),
            Field::new("verified_purchase", DataType::Boolean, true),
            Field::new("review_date", DataType::Date32, false),
            Field::new("language", DataType::Utf8, true),
            Field::new("language_guess", DataType::Utf8, false),
            Field::new("word_count", DataType::UInt32, false),
            Field::new("char_count", DataType::UInt32, false),
            Field::new("product_mean_rating", DataType::Float32, false),
            Field::new("product_review_count", DataType::UInt32, false),
            Field::new("run_id", DataType::Utf8, false),
            Field::new("processed_at", utc_micros(), false),
        ],
        CLEANED_SCHEMA_ID,
    )
});

fn topic_struct_fields() -> Fields {
    Fields::from(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("score", DataType::Float32, false),
    ])
}

fn topics_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(topic_struct_fields()),
        true,
    )))
}

/// curated/: what the API serves. No buyer identity at all: it cannot leak what it lacks.
pub static CURATED_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| curated_schema(3));

/// The curated schema of `curated/1` files (unsigned integer columns), read and upgraded.
pub static CURATED_V1_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| curated_schema(1));

/// The curated schema of `curated/2` files (no reasons, no learned signal), read and upgraded.
pub static CURATED_V2_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| curated_schema(2));

fn reasons_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

fn curated_schema(version: u32) -> SchemaRef {
    let (small, count) = if version == 1 {
        (DataType::UInt8, DataType::UInt32)
    } else {
        (DataType::Int16, DataType::Int32)
    };
    let learned = version >= 3;
    let mut fields = vec![
        Field::new("product_id", DataType::Utf8, false),
        Field::new("relevance", DataType::Float32, false),
        Field::new("review_id", DataType::Utf8, false),
        Field::new("product_title", DataType::Utf8, false),
        Field::new("product_category", DataType::Utf8, false),
        Field::new("rating", small, false),
        Field::new("title", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("helpful_votes", count.clone(), false),
        Field::new("total_votes", count.clone(), false),
        Field::new("verified_purchase", DataType::Boolean, true),
        Field::new("review_date", DataType::Date32, false),
        Field::new("language", DataType::Utf8, false),
        Field::new("word_count", count, false),
        Field::new("topics", topics_type(), false),
    ];
    if learned {
        // Why the review ranks where it does, in a few words (null in upgraded older files).
        fields.push(Field::new("reasons", reasons_type(), true));
    }
    fields.extend([
        Field::new("sig_informativeness", DataType::Float32, true),
        Field::new("sig_length", DataType::Float32, false),
        Field::new("sig_helpful", DataType::Float32, true),
        Field::new("sig_verified", DataType::Float32, false),
        Field::new("sig_deviation", DataType::Float32, false),
        Field::new("sig_recency", DataType::Float32, true),
    ]);
    if learned {
        fields.push(Field::new("sig_learned", DataType::Float32, true));
    }
    fields.extend([
        Field::new("run_id", DataType::Utf8, false),
        Field::new("scored_at", utc_micros(), false),
    ]);
    let id = match version {
        1 => CURATED_V1_SCHEMA_ID,
        2 => CURATED_V2_SCHEMA_ID,
        _ => CURATED_SCHEMA_ID,
    };
    with_id(fields, id)
}

/// Check that a batch schema names the expected dataset version and has its columns.
pub fn check_schema(found: &Schema, expected: &Schema) -> Result<(), SchemaError> {
    let found_id = found
        .metadata()
        .get(SCHEMA_METADATA_KEY)
        .cloned()
        .unwrap_or_default();
    let expected_id = expected
        .metadata()
        .get(SCHEMA_METADATA_KEY)
        .cloned()
        .unwrap_or_default();
    if !found_id.is_empty() && found_id != expected_id {
        return Err(SchemaError::Version {
            found: found_id,
            expected: expected_id,
        });
    }
    for f in expected.fields() {
        match found.field_with_name(f.name()) {
            Ok(g) if g.data_type() == f.data_type() => {}
            _ => return Err(SchemaError::Column(f.name().clone())),
        }
    }
    Ok(())
}

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

fn date_to_days(d: NaiveDate) -> i32 {
    use chrono::Datelike;
    d.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
}

fn days_to_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_DAYS_FROM_CE)?)
}

fn micros_to_utc(m: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(m)
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, SchemaError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| SchemaError::Column(name.to_owned()))
}

fn opt_str(a: &StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_owned())
}

// ---------------------------------------------------------------------------------------------
// raw

/// Raw rows as a record batch of [`RAW_SCHEMA`].
pub fn raw_to_batch(rows: &[RawReview]) -> Result<RecordBatch, SchemaError> {
    let mut cols: Vec<StringBuilder> = (0..RAW_FIELDS.len() - 2)
        .map(|_| StringBuilder::with_capacity(rows.len(), rows.len() * 16))
        .collect();
    let mut position = UInt64Builder::with_capacity(rows.len());
    let mut defect = StringBuilder::new();
    for r in rows {
        let values = [
            &r.review_id,
            &r.product_id,
            &r.product_title,
            &r.product_category,
            &r.buyer_id,
            &r.rating,
            &r.title,
            &r.text,
            &r.helpful_votes,
            &r.total_votes,
            &r.verified_purchase,
            &r.review_date,
            &r.language,
            &r.marketplace,
        ];
        for (b, v) in cols.iter_mut().zip(values) {
            b.append_option(v.as_deref());
        }
        position.append_option(r.source_position);
        defect.append_option(r.read_defect.as_deref());
    }
    let mut arrays: Vec<ArrayRef> = cols
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    arrays.push(Arc::new(position.finish()));
    arrays.push(Arc::new(defect.finish()));
    Ok(RecordBatch::try_new(RAW_SCHEMA.clone(), arrays)?)
}

/// Raw rows back from a record batch of [`RAW_SCHEMA`].
pub fn batch_to_raw(batch: &RecordBatch) -> Result<Vec<RawReview>, SchemaError> {
    let s = |name| column::<StringArray>(batch, name);
    let (review_id, product_id, product_title, product_category, buyer_id) = (
        s("review_id")?,
        s("product_id")?,
        s("product_title")?,
        s("product_category")?,
        s("buyer_id")?,
    );
    let (rating, title, text, helpful, total, verified, date, language, marketplace, defect) = (
        s("rating")?,
        s("title")?,
        s("text")?,
        s("helpful_votes")?,
        s("total_votes")?,
        s("verified_purchase")?,
        s("review_date")?,
        s("language")?,
        s("marketplace")?,
        s("read_defect")?,
    );
    let position = column::<UInt64Array>(batch, "source_position")?;
    Ok((0..batch.num_rows())
        .map(|i| RawReview {
            review_id: opt_str(review_id, i),
            product_id: opt_str(product_id, i),
            product_title: opt_str(product_title, i),
            product_category: opt_str(product_category, i),
            buyer_id: opt_str(buyer_id, i),
            rating: opt_str(rating, i),
            title: opt_str(title, i),
            text: opt_str(text, i),
            helpful_votes: opt_str(helpful, i),
            total_votes: opt_str(total, i),
            verified_purchase: opt_str(verified, i),
            review_date: opt_str(date, i),
            language: opt_str(language, i),
            marketplace: opt_str(marketplace, i),
            source_position: position.is_valid(i).then(|| position.value(i)),
            read_defect: opt_str(defect, i),
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// cleaned

/// Cleaned reviews as a record batch of [`CLEANED_SCHEMA`].
pub fn reviews_to_batch<R: std::borrow::Borrow<Review>>(
    rows: &[R],
) -> Result<RecordBatch, SchemaError> {
    // Rows or references to rows: a router encodes each bucket's rows where they lie.
    let rows: Vec<&Review> = rows.iter().map(R::borrow).collect();
    let rows = rows.as_slice();
    let n = rows.len();
    let text_bytes: usize = rows.iter().map(|r| r.text.len()).sum();
    let strings = |f: &dyn Fn(&Review) -> &str, cap: usize| {
        let mut b = StringBuilder::with_capacity(n, cap);
        for r in rows {
            b.append_value(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let u32s = |f: &dyn Fn(&Review) -> u32| {
        Arc::new(rows.iter().map(|r| f(r)).collect::<UInt32Array>()) as ArrayRef
    };
    let arrays: Vec<ArrayRef> = vec![
        strings(&|r| &r.review_id, n * 16),
        strings(&|r| &r.product_id, n * 12),
        strings(&|r| &r.product_title, n * 24),
        strings(&|r| &r.product_category, n * 8),
        Arc::new(
            rows.iter()
                .map(|r| r.buyer_id.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(rows.iter().map(|r| r.rating).collect::<UInt8Array>()),
        strings(&|r| &r.title, n * 24),
        strings(&|r| &r.text, text_bytes),
        u32s(&|r| r.helpful_votes),
        u32s(&|r| r.total_votes),
        Arc::new(
            rows.iter()
                .map(|r| r.verified_purchase)
                .collect::<BooleanArray>(),
        ),
        Arc::new(Date32Array::from(
            rows.iter()
                .map(|r| date_to_days(r.review_date))
                .collect::<Vec<_>>(),
        )),
        Arc::new(
            rows.iter()
                .map(|r| r.language.as_deref())
                .collect::<StringArray>(),
        ),
        strings(&|r| &r.language_guess, n * 2),
        u32s(&|r| r.word_count),
        u32s(&|r| r.char_count),
        Arc::new(
            rows.iter()
                .map(|r| r.product_mean_rating)
                .collect::<Float32Array>(),
        ),
        u32s(&|r| r.product_review_count),
        strings(&|r| &r.run_id, n * 24),
        Arc::new(
            TimestampMicrosecondArray::from(
                rows.iter()
                    .map(|r| r.processed_at.timestamp_micros())
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
    ];
    Ok(RecordBatch::try_new(CLEANED_SCHEMA.clone(), arrays)?)
}

/// Cleaned reviews back from a record batch of [`CLEANED_SCHEMA`].
pub fn batch_to_reviews(batch: &RecordBatch) -> Result<Vec<Review>, SchemaError> {
    check_schema(batch.schema_ref(), &CLEANED_SCHEMA)?;
    let s = |name| column::<StringArray>(batch, name);
    let u = |name| column::<UInt32Array>(batch, name);
    let (review_id, product_id, product_title, product_category, buyer_id, title, text) = (
        s("review_id")?,
        s("product_id")?,
        s("product_title")?,
        s("product_category")?,
        s("buyer_id")?,
        s("title")?,
        s("text")?,
    );
    let (language, language_guess, run_id) = (s("language")?, s("language_guess")?, s("run_id")?);
    let (helpful, total, words, chars, count) = (
        u("helpful_votes")?,
        u("total_votes")?,
        u("word_count")?,
        u("char_count")?,
        u("product_review_count")?,
    );
    let rating = column::<UInt8Array>(batch, "rating")?;
    let verified = column::<BooleanArray>(batch, "verified_purchase")?;
    let date = column::<Date32Array>(batch, "review_date")?;
    let mean = column::<Float32Array>(batch, "product_mean_rating")?;
    let processed = column::<TimestampMicrosecondArray>(batch, "processed_at")?;
    (0..batch.num_rows())
        .map(|i| {
            let bad = |column: &str| SchemaError::Value {
                column: column.to_owned(),
                row: i,
            };
            Ok(Review {
                review_id: review_id.value(i).to_owned(),
                product_id: product_id.value(i).to_owned(),
                product_title: product_title.value(i).to_owned(),
                product_category: product_category.value(i).to_owned(),
                buyer_id: opt_str(buyer_id, i),
                rating: rating.value(i),
                title: title.value(i).to_owned(),
                text: text.value(i).to_owned(),
                helpful_votes: helpful.value(i),
                total_votes: total.value(i),
                verified_purchase: verified.is_valid(i).then(|| verified.value(i)),
                review_date: days_to_date(date.value(i)).ok_or_else(|| bad("review_date"))?,
                language: opt_str(language, i),
                language_guess: language_guess.value(i).to_owned(),
                word_count: words.value(i),
                char_count: chars.value(i),
                run_id: run_id.value(i).to_owned(),
                processed_at: micros_to_utc(processed.value(i))
                    .ok_or_else(|| bad("processed_at"))?,
                product_mean_rating: mean.value(i),
                product_review_count: count.value(i),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// curated

/// One topic of a curated review with its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicScore {
    pub id: String,
    pub score: f32,
}

/// A scored review as stored in curated/ and served by the API. It has no buyer identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CuratedReview {
    pub product_id: String,
    pub relevance: f32,
    pub review_id: String,
    pub product_title: String,
    pub product_category: String,
    pub rating: u8,
    pub title: String,
    pub text: String,
    pub helpful_votes: u32,
    pub total_votes: u32,
    pub verified_purchase: Option<bool>,
    pub review_date: NaiveDate,
    pub language: String,
    pub word_count: u32,
    /// The review's top topics, best first.
    pub topics: Vec<TopicScore>,
    /// Why it ranks where it does, strongest first ("detailed", "mentions durability"...).
    pub reasons: Vec<String>,
    pub signals: Signals,
    pub run_id: String,
    pub scored_at: DateTime<Utc>,
}

impl CuratedReview {
    /// The order of curated data: product, then most relevant first, then review id for ties.
    pub fn sort_key_cmp(a: &Self, b: &Self) -> std::cmp::Ordering {
        a.product_id
            .cmp(&b.product_id)
            .then(b.relevance.total_cmp(&a.relevance))
            .then_with(|| a.review_id.cmp(&b.review_id))
    }
}

/// Curated reviews as a record batch of [`CURATED_SCHEMA`].
pub fn curated_to_batch(rows: &[CuratedReview]) -> Result<RecordBatch, SchemaError> {
    let n = rows.len();
    // Sized up front: growing the value buffer of a column of texts copies it again and again.
    let strings = |f: &dyn Fn(&CuratedReview) -> &str| {
        let bytes = rows.iter().map(|r| f(r).len()).sum();
        let mut b = StringBuilder::with_capacity(n, bytes);
        for r in rows {
            b.append_value(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    // Signed, as analytics engines read them; counts beyond i32 (none exist) saturate.
    let i32s = |f: &dyn Fn(&CuratedReview) -> u32| {
        Arc::new(
            rows.iter()
                .map(|r| i32::try_from(f(r)).unwrap_or(i32::MAX))
                .collect::<Int32Array>(),
        ) as ArrayRef
    };
    let f32s = |f: &dyn Fn(&CuratedReview) -> Option<f32>| {
        Arc::new(rows.iter().map(f).collect::<Float32Array>()) as ArrayRef
    };
    let mut topics = ListBuilder::with_capacity(
        StructBuilder::new(
            topic_struct_fields(),
            vec![
                Box::new(StringBuilder::new()),
                Box::new(Float32Builder::new()),
            ],
        ),
        n,
    )
    .with_field(Arc::new(Field::new(
        "item",
        DataType::Struct(topic_struct_fields()),
        true,
    )));
    for r in rows {
        let sb = topics.values();
        for t in &r.topics {
            sb.field_builder::<StringBuilder>(0)
                .expect("id")
                .append_value(&t.id);
            sb.field_builder::<Float32Builder>(1)
                .expect("score")
                .append_value(t.score);
            sb.append(true);
        }
        topics.append(true);
    }
    let mut reasons = ListBuilder::with_capacity(StringBuilder::new(), n);
    for r in rows {
        for reason in &r.reasons {
            reasons.values().append_value(reason);
        }
        reasons.append(true);
    }
    let mut verified = BooleanBuilder::with_capacity(n);
    let mut date = Date32Builder::with_capacity(n);
    let mut rating = Int16Builder::with_capacity(n);
    let mut scored = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    for r in rows {
        verified.append_option(r.verified_purchase);
        date.append_value(date_to_days(r.review_date));
        rating.append_value(i16::from(r.rating));
        scored.append_value(r.scored_at.timestamp_micros());
    }
    let arrays: Vec<ArrayRef> = vec![
        strings(&|r| &r.product_id),
        f32s(&|r| Some(r.relevance)),
        strings(&|r| &r.review_id),
        strings(&|r| &r.product_title),
        strings(&|r| &r.product_category),
        Arc::new(rating.finish()),
        strings(&|r| &r.title),
        strings(&|r| &r.text),
        i32s(&|r| r.helpful_votes),
        i32s(&|r| r.total_votes),
        Arc::new(verified.finish()),
        Arc::new(date.finish()),
        strings(&|r| &r.language),
        i32s(&|r| r.word_count),
        Arc::new(topics.finish()),
        Arc::new(reasons.finish()),
        f32s(&|r| r.signals.informativeness),
        f32s(&|r| Some(r.signals.length)),
        f32s(&|r| r.signals.helpful),
        f32s(&|r| Some(r.signals.verified)),
        f32s(&|r| Some(r.signals.deviation)),
        f32s(&|r| r.signals.recency),
        f32s(&|r| r.signals.learned),
        strings(&|r| &r.run_id),
        Arc::new(scored.finish()),
    ];
    Ok(RecordBatch::try_new(CURATED_SCHEMA.clone(), arrays)?)
}

/// Curated reviews back from a record batch of [`CURATED_SCHEMA`].
pub fn batch_to_curated(batch: &RecordBatch) -> Result<Vec<CuratedReview>, SchemaError> {
    check_schema(batch.schema_ref(), &CURATED_SCHEMA)?;
    let s = |name| column::<StringArray>(batch, name);
    let u = |name| column::<Int32Array>(batch, name);
    let f = |name| column::<Float32Array>(batch, name);
    let (product_id, review_id, product_title, product_category, title, text, language, run_id) = (
        s("product_id")?,
        s("review_id")?,
        s("product_title")?,
        s("product_category")?,
        s("title")?,
        s("text")?,
        s("language")?,
        s("run_id")?,
    );
    let (helpful, total, words) = (u("helpful_votes")?, u("total_votes")?, u("word_count")?);
    let (relevance, s_inf, s_len, s_help, s_ver, s_con, s_rec, s_learned) = (
        f("relevance")?,
        f("sig_informativeness")?,
        f("sig_length")?,
        f("sig_helpful")?,
        f("sig_verified")?,
        f("sig_deviation")?,
        f("sig_recency")?,
        f("sig_learned")?,
    );
    let reasons = column::<ListArray>(batch, "reasons")?;
    let rating = column::<Int16Array>(batch, "rating")?;
    let verified = column::<BooleanArray>(batch, "verified_purchase")?;
    let date = column::<Date32Array>(batch, "review_date")?;
    let scored = column::<TimestampMicrosecondArray>(batch, "scored_at")?;
    let topics = column::<ListArray>(batch, "topics")?;
    let opt = |a: &Float32Array, i: usize| a.is_valid(i).then(|| a.value(i));
    (0..batch.num_rows())
        .map(|i| {
            let bad = |column: &str| SchemaError::Value {
                column: column.to_owned(),
                row: i,
            };
            let list = topics.value(i);
            let st = list
                .as_any()
                .downcast_ref::<StructArray>()
                .ok_or_else(|| bad("topics"))?;
            let ids = st
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| bad("topics"))?;
            let scores = st
                .column(1)
                .as_any()
                .downcast_ref::<arrow_array::PrimitiveArray<Float32Type>>()
                .ok_or_else(|| bad("topics"))?;
            let topics = (0..st.len())
                .map(|j| TopicScore {
                    id: ids.value(j).to_owned(),
                    score: scores.value(j),
                })
                .collect();
            let reasons = if reasons.is_valid(i) {
                let list = reasons.value(i);
                let texts = list
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| bad("reasons"))?;
                texts.iter().flatten().map(str::to_owned).collect()
            } else {
                Vec::new()
            };
            Ok(CuratedReview {
                product_id: product_id.value(i).to_owned(),
                relevance: relevance.value(i),
                review_id: review_id.value(i).to_owned(),
                product_title: product_title.value(i).to_owned(),
                product_category: product_category.value(i).to_owned(),
                rating: u8::try_from(rating.value(i)).map_err(|_| bad("rating"))?,
                title: title.value(i).to_owned(),
                text: text.value(i).to_owned(),
                helpful_votes: u32::try_from(helpful.value(i)).map_err(|_| bad("helpful_votes"))?,
                total_votes: u32::try_from(total.value(i)).map_err(|_| bad("total_votes"))?,
                verified_purchase: verified.is_valid(i).then(|| verified.value(i)),
                review_date: days_to_date(date.value(i)).ok_or_else(|| bad("review_date"))?,
                language: language.value(i).to_owned(),
                word_count: u32::try_from(words.value(i)).map_err(|_| bad("word_count"))?,
                topics,
                reasons,
                signals: Signals {
                    informativeness: opt(s_inf, i),
                    length: s_len.value(i),
                    helpful: opt(s_help, i),
                    verified: s_ver.value(i),
                    deviation: s_con.value(i),
                    recency: opt(s_rec, i),
                    learned: opt(s_learned, i),
                },
                run_id: run_id.value(i).to_owned(),
                scored_at: micros_to_utc(scored.value(i)).ok_or_else(|| bad("scored_at"))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review() -> Review {
        Review {
            review_id: "R1".into(),
            product_id: "P1".into(),
            product_title: "Kettle".into(),
            product_category: "Kitchen".into(),
            buyer_id: Some("C1".into()),
            rating: 4,
            title: "t".into(),
            text: "Boils fast".into(),
            helpful_votes: 1,
            total_votes: 2,
            verified_purchase: None,
            review_date: NaiveDate::from_ymd_opt(2015, 1, 23).unwrap(),
            language: Some("en".into()),
            language_guess: "en".into(),
            word_count: 2,
            char_count: 10,
            run_id: "r".into(),
            processed_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            product_mean_rating: 4.0,
            product_review_count: 1,
        }
    }

    #[test]
    fn cleaned_round_trip() {
        let rows = vec![
            review(),
            Review {
                buyer_id: None,
                verified_purchase: Some(false),
                ..review()
            },
        ];
        let batch = reviews_to_batch(&rows).unwrap();
        assert_eq!(batch_to_reviews(&batch).unwrap(), rows);
    }

    #[test]
    fn raw_round_trip() {
        let rows = vec![
            RawReview {
                review_id: Some("x".into()),
                source_position: Some(3),
                ..Default::default()
            },
            RawReview {
                read_defect: Some("malformed_row".into()),
                ..Default::default()
            },
        ];
        assert_eq!(batch_to_raw(&raw_to_batch(&rows).unwrap()).unwrap(), rows);
    }

    #[test]
    fn curated_round_trip_and_no_buyer_column() {
        let c = CuratedReview {
            product_id: "P1".into(),
            relevance: 0.5,
            review_id: "R1".into(),
            product_title: "K".into(),
            product_category: "C".into(),
            rating: 5,
            title: "t".into(),
            text: "x".into(),
            helpful_votes: 0,
            total_votes: 0,
            verified_purchase: Some(true),
            review_date: NaiveDate::from_ymd_opt(2015, 1, 23).unwrap(),
            language: "en".into(),
            word_count: 1,
            topics: vec![TopicScore {
                id: "durability".into(),
                score: 0.7,
            }],
            reasons: vec!["detailed".into(), "mentions durability".into()],
            signals: Signals {
                informativeness: Some(0.2),
                length: 0.1,
                learned: Some(0.8),
                ..Default::default()
            },
            run_id: "r".into(),
            scored_at: DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap(),
        };
        let rows = vec![
            c.clone(),
            CuratedReview {
                topics: vec![],
                reasons: vec![],
                ..c
            },
        ];
        let batch = curated_to_batch(&rows).unwrap();
        assert!(
            batch
                .schema()
                .fields()
                .iter()
                .all(|f| !f.name().contains("buyer"))
        );
        assert_eq!(batch_to_curated(&batch).unwrap(), rows);
    }

    #[test]
    fn schema_version_is_checked() {
        let batch = reviews_to_batch(&[review()]).unwrap();
        assert!(matches!(
            check_schema(batch.schema_ref(), &CURATED_SCHEMA),
            Err(SchemaError::Version { .. })
        ));
    }
}
