//! Parquet read/write with explicit writer properties, chosen for the reader that uses each
//! dataset: zstd everywhere; statistics and the page index on, and small row groups and pages
//! on the product-sorted datasets so a lookup by product_id reads little; a bloom filter on
//! product_id so an unknown product is ruled out without reading data pages.

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use reviews_domain::schema::{
    CLEANED_SCHEMA, CURATED_SCHEMA, CURATED_V1_SCHEMA, CURATED_V1_SCHEMA_ID, CURATED_V2_SCHEMA,
    CURATED_V2_SCHEMA_ID, RAW_SCHEMA, SCHEMA_METADATA_KEY, SchemaError, check_schema,
};
use thiserror::Error;

/// Rows per row group of the product-sorted datasets: a product's reviews fall in one or two
/// row groups, whose min/max statistics on product_id find them.
pub const SORTED_ROW_GROUP_ROWS: usize = 32 * 1024;
/// Rows per data page: with the page index, a lookup decodes about this many rows per column.
pub const SORTED_PAGE_ROWS: usize = 2 * 1024;
/// Distinct product ids a row group's bloom filter is sized for.
const BLOOM_NDV: u64 = 8 * 1024;

#[derive(Debug, Error)]
pub enum ParquetIoError {
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// Which dataset a file belongs to; each gets the writer properties that suit its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Raw,
    Cleaned,
    Curated,
    /// A run's cleaned rows routed to one bucket (the cleaned schema), read once, whole, by
    /// that bucket's merge and then removed: written for speed, with fast zstd and no
    /// dictionary, bloom filter or page statistics, which no reader of it uses.
    Change,
}

impl Dataset {
    pub fn schema(self) -> SchemaRef {
        match self {
            Dataset::Raw => RAW_SCHEMA.clone(),
            Dataset::Cleaned | Dataset::Change => CLEANED_SCHEMA.clone(),
            Dataset::Curated => CURATED_SCHEMA.clone(),
        }
    }

    /// The writer properties of this dataset.
    pub fn writer_properties(self) -> WriterProperties {
        let zstd = Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level"));
        let base = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(zstd)
            .set_created_by(concat!("reviews-pipeline ", env!("CARGO_PKG_VERSION")).to_owned());
        let product = ColumnPath::from("product_id");
        match self {
            // Raw is read once, whole, by transform and archive: big row groups, chunk stats.
            Dataset::Raw => base
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .set_max_row_group_row_count(Some(128 * 1024))
                .build(),
            Dataset::Change => base
                .set_compression(Compression::ZSTD(
                    ZstdLevel::try_new(1).expect("valid zstd level"),
                ))
                .set_dictionary_enabled(false)
                .set_statistics_enabled(EnabledStatistics::None)
                .set_max_row_group_row_count(Some(128 * 1024))
                .build(),
            Dataset::Cleaned | Dataset::Curated => {
                let mut b = base;
                // Unique per row: a dictionary would hold every value once more, and
                // building it was a tenth of writing these files (perf).
                for column in ["review_id", "buyer_id", "title", "text"] {
                    b = b.set_column_dictionary_enabled(ColumnPath::from(column), false);
                }
                // Long free text no query bounds by range: min/max statistics of it cost a
                // comparison per value and prune nothing.
                for column in ["title", "text"] {
                    b = b.set_column_statistics_enabled(
                        ColumnPath::from(column),
                        EnabledStatistics::None,
                    );
                }
                let b = b
                    .set_statistics_enabled(EnabledStatistics::Page)
                    .set_max_row_group_row_count(Some(SORTED_ROW_GROUP_ROWS))
                    .set_data_page_row_count_limit(SORTED_PAGE_ROWS)
                    .set_column_bloom_filter_enabled(product.clone(), true)
                    .set_column_bloom_filter_fpp(product.clone(), 0.01)
                    .set_column_bloom_filter_max_ndv(product, BLOOM_NDV);
                if self == Dataset::Curated {
                    // Declares the order: product_id ascending, then relevance descending.
                    b.set_sorting_columns(Some(vec![
                        SortingColumn {
                            column_idx: 0,
                            descending: false,
                            nulls_first: false,
                        },
                        SortingColumn {
                            column_idx: 1,
                            descending: true,
                            nulls_first: false,
                        },
                    ]))
                    .build()
                } else {
                    b.build()
                }
            }
        }
    }
}

/// Writes one dataset's Parquet file into memory batch by batch: memory holds the encoded
/// file and one row group, never all rows.
pub struct ParquetBuffer {
    writer: ArrowWriter<Vec<u8>>,
    dataset: Dataset,
}

impl ParquetBuffer {
    pub fn new(dataset: Dataset) -> Result<Self, ParquetIoError> {
        let writer = ArrowWriter::try_new(
            Vec::with_capacity(1 << 20),
            dataset.schema(),
            Some(dataset.writer_properties()),
        )?;
        Ok(Self { writer, dataset })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ParquetIoError> {
        self.writer.write(batch)?;
        Ok(())
    }

    /// Close the file, adding key-value metadata to the footer, and return its bytes.
    pub fn finish(mut self, metadata: &[(&str, String)]) -> Result<Bytes, ParquetIoError> {
        // The dataset id also goes in the plain footer metadata, where every reader (not only
        // Arrow-aware ones) finds it.
        let schema = self.dataset.schema();
        if let Some(id) = schema.metadata().get(SCHEMA_METADATA_KEY) {
            self.writer.append_key_value_metadata(KeyValue::new(
                SCHEMA_METADATA_KEY.to_owned(),
                id.clone(),
            ));
        }
        for (key, value) in metadata {
            self.writer
                .append_key_value_metadata(KeyValue::new((*key).to_owned(), value.clone()));
        }
        Ok(Bytes::from(self.writer.into_inner()?))
    }
}

/// Write record batches of one dataset to an in-memory Parquet file, with extra key-value
/// metadata in the footer (e.g. the topic labels of a curated file).
pub fn write_parquet(
    dataset: Dataset,
    batches: &[RecordBatch],
    metadata: &[(&str, String)],
) -> Result<Bytes, ParquetIoError> {
    let mut buf = ParquetBuffer::new(dataset)?;
    for batch in batches {
        buf.write(batch)?;
    }
    buf.finish(metadata)
}

/// Check that a file's schema is `dataset`'s. Returns whether it is an earlier version that
/// reading upgrades (`curated/1`, whose integer columns are unsigned, or `curated/2`, without
/// the reasons and the learned signal).
fn check_dataset(dataset: Dataset, found: &Schema) -> Result<bool, ParquetIoError> {
    let id = found
        .metadata()
        .get(SCHEMA_METADATA_KEY)
        .map(String::as_str);
    let earlier = match (dataset, id) {
        (Dataset::Curated, Some(CURATED_V1_SCHEMA_ID)) => Some(&*CURATED_V1_SCHEMA),
        (Dataset::Curated, Some(CURATED_V2_SCHEMA_ID)) => Some(&*CURATED_V2_SCHEMA),
        _ => None,
    };
    match earlier {
        Some(schema) => check_schema(found, schema)?,
        None => check_schema(found, &dataset.schema())?,
    }
    Ok(earlier.is_some())
}

/// A batch of an earlier version of `dataset` in the current one: each column cast to the
/// current type of its name (the values fit: unsigned counts far below 2^31, ratings 1-5), and
/// each column of `wanted` (names of the current schema) the file lacks added as nulls.
fn upgrade(
    dataset: Dataset,
    batch: RecordBatch,
    wanted: Option<&[&str]>,
) -> Result<RecordBatch, ParquetIoError> {
    let current = dataset.schema();
    let mut fields = Vec::with_capacity(current.fields().len());
    let mut columns = Vec::with_capacity(current.fields().len());
    for target in current.fields() {
        let name = target.name().as_str();
        let Some(column) = batch.column_by_name(name) else {
            if wanted.is_none_or(|w| w.contains(&name)) && target.is_nullable() {
                fields.push(target.as_ref().clone());
                columns.push(arrow_array::new_null_array(
                    target.data_type(),
                    batch.num_rows(),
                ));
            }
            continue;
        };
        if target.data_type() == column.data_type() {
            fields.push(target.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        let cast = arrow_cast::cast(column, target.data_type())?;
        if cast.null_count() != column.null_count() {
            return Err(ParquetIoError::Arrow(arrow_schema::ArrowError::CastError(
                format!("{name}: a value does not fit {}", target.data_type()),
            )));
        }
        fields.push(target.as_ref().clone());
        columns.push(cast);
    }
    let schema = Schema::new_with_metadata(fields, current.metadata().clone());
    Ok(RecordBatch::try_new_with_options(
        std::sync::Arc::new(schema),
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

/// Read a whole Parquet file of `dataset`, checking that its schema is that dataset's (an
/// earlier version is read in the current one).
pub fn read_parquet(dataset: Dataset, bytes: Bytes) -> Result<Vec<RecordBatch>, ParquetIoError> {
    parquet_batches(dataset, bytes)?.collect()
}

/// [`read_parquet`] a batch at a time (memory: the file's bytes and one decoded batch).
pub fn parquet_batches(
    dataset: Dataset,
    bytes: Bytes,
) -> Result<impl Iterator<Item = Result<RecordBatch, ParquetIoError>>, ParquetIoError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?.with_batch_size(8192);
    let legacy = check_dataset(dataset, builder.schema())?;
    let reader = builder.build()?;
    Ok(reader.map(move |b| {
        let b = b?;
        if legacy {
            upgrade(dataset, b, None)
        } else {
            Ok(b)
        }
    }))
}

/// What a Parquet footer says, without reading data pages.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetInfo {
    pub rows: u64,
    pub row_groups: usize,
    /// The dataset id in the schema metadata (`curated/1`), if any.
    pub schema_id: Option<String>,
    /// The footer's key-value metadata.
    pub metadata: Vec<(String, String)>,
}

/// Read and check the footer of a Parquet file.
pub fn parquet_info(dataset: Dataset, bytes: Bytes) -> Result<ParquetInfo, ParquetIoError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    check_dataset(dataset, builder.schema())?;
    let meta = builder.metadata();
    Ok(ParquetInfo {
        rows: meta.file_metadata().num_rows().max(0) as u64,
        row_groups: meta.num_row_groups(),
        schema_id: builder
            .schema()
            .metadata()
            .get(SCHEMA_METADATA_KEY)
            .cloned(),
        metadata: meta
            .file_metadata()
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Read only some columns of a Parquet file (e.g. the sort keys, to validate order cheaply).
pub fn read_columns(
    dataset: Dataset,
    bytes: Bytes,
    columns: &[&str],
) -> Result<Vec<RecordBatch>, ParquetIoError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?.with_batch_size(64 * 1024);
    let legacy = check_dataset(dataset, builder.schema())?;
    let mask =
        parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    let reader = builder.with_projection(mask).build()?;
    reader
        .map(|b| {
            let b = b?;
            if legacy {
                upgrade(dataset, b, Some(columns))
            } else {
                Ok(b)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reviews_domain::RawReview;
    use reviews_domain::schema::{batch_to_raw, raw_to_batch};

    #[test]
    fn round_trip_and_footer() {
        let rows: Vec<RawReview> = (0..10)
            .map(|i| RawReview {
                review_id: Some(format!("R{i}")),
                source_position: Some(i),
                ..Default::default()
            })
            .collect();
        let bytes = write_parquet(
            Dataset::Raw,
            &[raw_to_batch(&rows).unwrap()],
            &[("k", "v".into())],
        )
        .unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        let info = parquet_info(Dataset::Raw, bytes.clone()).unwrap();
        assert_eq!(info.rows, 10);
        assert_eq!(info.schema_id.as_deref(), Some("raw/1"));
        assert!(info.metadata.contains(&("k".to_owned(), "v".to_owned())));
        let back = read_parquet(Dataset::Raw, bytes.clone()).unwrap();
        assert_eq!(batch_to_raw(&back[0]).unwrap(), rows);
        // Reading it as another dataset is refused.
        assert!(read_parquet(Dataset::Curated, bytes).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parquet_info(Dataset::Curated, Bytes::from_static(b"not parquet")).is_err());
        assert!(read_parquet(Dataset::Curated, Bytes::new()).is_err());
    }

    /// A file written before the integer columns became signed (v1), or before the reasons and
    /// the learned signal (v2), is read in the current schema, with the same values.
    #[test]
    fn earlier_curated_files_read_as_the_current_schema() {
        use reviews_domain::schema::{
            CURATED_SCHEMA_ID, CuratedReview, TopicScore, batch_to_curated, curated_to_batch,
        };
        use reviews_domain::score::Signals;
        let row = CuratedReview {
            product_id: "P1".into(),
            relevance: 0.5,
            review_id: "R1".into(),
            product_title: "Kettle".into(),
            product_category: "Kitchen".into(),
            rating: 4,
            title: "t".into(),
            text: "boils fast".into(),
            helpful_votes: 7,
            total_votes: 9,
            verified_purchase: Some(true),
            review_date: chrono::NaiveDate::from_ymd_opt(2015, 1, 23).unwrap(),
            language: "en".into(),
            word_count: 2,
            topics: vec![TopicScore {
                id: "durability".into(),
                score: 0.7,
            }],
            // An older file has no reasons and no learned signal: they read as none.
            reasons: vec![],
            signals: Signals::default(),
            run_id: "r1".into(),
            scored_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap(),
        };
        let current = curated_to_batch(std::slice::from_ref(&row)).unwrap();
        for (schema, id) in [
            (&*CURATED_V1_SCHEMA, CURATED_V1_SCHEMA_ID),
            (&*CURATED_V2_SCHEMA, CURATED_V2_SCHEMA_ID),
        ] {
            // The same rows as that version's writer wrote them: its columns, types and id.
            let columns = schema
                .fields()
                .iter()
                .map(|f| {
                    arrow_cast::cast(current.column_by_name(f.name()).unwrap(), f.data_type())
                        .unwrap()
                })
                .collect();
            let old = RecordBatch::try_new(schema.clone(), columns).unwrap();
            let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), None).unwrap();
            writer.write(&old).unwrap();
            writer.append_key_value_metadata(KeyValue::new(
                SCHEMA_METADATA_KEY.to_owned(),
                id.to_owned(),
            ));
            let bytes = Bytes::from(writer.into_inner().unwrap());

            let info = parquet_info(Dataset::Curated, bytes.clone()).unwrap();
            assert_eq!(info.schema_id.as_deref(), Some(id));
            let batches = read_parquet(Dataset::Curated, bytes.clone()).unwrap();
            assert_eq!(
                batches[0].schema().fields(),
                CURATED_SCHEMA.fields(),
                "{id}"
            );
            assert_eq!(
                batches[0]
                    .schema()
                    .metadata()
                    .get(SCHEMA_METADATA_KEY)
                    .map(String::as_str),
                Some(CURATED_SCHEMA_ID)
            );
            assert_eq!(
                batch_to_curated(&batches[0]).unwrap(),
                vec![row.clone()],
                "{id}"
            );
            let some = read_columns(Dataset::Curated, bytes, &["rating", "sig_learned"]).unwrap();
            assert_eq!(some[0].num_columns(), 2, "{id}");
            assert_eq!(
                some[0].column(0).data_type(),
                &arrow_schema::DataType::Int16
            );
            assert_eq!(some[0].column(1).null_count(), 1, "{id}");
        }
        // The current writer never writes v1.
        let written = write_parquet(Dataset::Curated, &[current], &[]).unwrap();
        assert_eq!(
            parquet_info(Dataset::Curated, written)
                .unwrap()
                .schema_id
                .as_deref(),
            Some(CURATED_SCHEMA_ID)
        );
    }
}
