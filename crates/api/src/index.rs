//! What the API serves, read from the lake on demand: the live [`Snapshot`] (the manifest,
//! loaded up front), a [`BucketIndex`] per product bucket (one curated file, fetched when one of
//! its products is asked for, checked against the manifest's checksum, kept in the bounded
//! [`crate::cache::BucketCache`]) and the [`Directory`] of products for listings (built from the
//! buckets' small product directory files, when a listing is first asked for).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    Array, BooleanArray, Date32Array, Float32Array, Int16Array, Int32Array, ListArray, RecordBatch,
    StringArray, StructArray,
};
use chrono::{DateTime, NaiveDate, Utc};
use reviews_domain::Topic;
use reviews_lake::manifest::{BucketFile, Manifest, ProductDirectory, ProductEntry};
use reviews_lake::parquet_io::{Dataset as ParquetDataset, read_parquet};
use reviews_lake::{Lake, LakeError, layout};
use sha2::{Digest, Sha256};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("no published dataset: {} does not exist", layout::LATEST_MANIFEST)]
    NoManifest,
    #[error("manifest {key} is invalid: {message}")]
    BadManifest { key: String, message: String },
    #[error("part {key}: {message}")]
    BadPart { key: String, message: String },
    #[error("lake: {0}")]
    Lake(#[from] LakeError),
}

impl LoadError {
    /// What a client may be told: no object keys, no error chain (those go to the logs).
    pub fn public_reason(&self) -> &'static str {
        match self {
            LoadError::NoManifest => "no dataset has been published yet",
            LoadError::BadManifest { .. } => {
                "the latest published dataset is invalid and was not loaded"
            }
            LoadError::BadPart { .. } => "part of the published dataset failed its integrity check",
            LoadError::Lake(e) if e.is_retryable() => {
                "the data store is unavailable or slow; retry in a few seconds"
            }
            LoadError::Lake(_) => "the published dataset could not be read",
        }
    }

    /// Whether asking again may succeed (a store outage), as opposed to bad data.
    pub fn is_transient(&self) -> bool {
        matches!(self, LoadError::Lake(e) if e.is_retryable())
    }
}

/// One bucket's columns (the ones the API serves).
struct Part {
    review_id: StringArray,
    title: StringArray,
    text: StringArray,
    rating: Int16Array,
    helpful: Int32Array,
    total: Int32Array,
    verified: BooleanArray,
    date: Date32Array,
    language: StringArray,
    relevance: Float32Array,
    topics: ListArray,
    reasons: ListArray,
}

/// A product of a bucket; its reviews are rows `start..start + len` of the bucket, already in
/// relevance order.
#[derive(Debug, Clone)]
pub struct Product {
    pub product_id: String,
    pub title: String,
    pub category: String,
    start: u32,
    len: u32,
    pub rating_sum: u64,
    pub rating_histogram: [u32; 5],
    /// Reviews per topic (a review counts for each of its topics), aligned with the topics.
    pub topic_counts: Vec<u32>,
}

impl Product {
    pub fn review_count(&self) -> u32 {
        self.len
    }

    pub fn average_rating(&self) -> f64 {
        if self.len == 0 {
            0.0
        } else {
            self.rating_sum as f64 / f64::from(self.len)
        }
    }
}

/// A served review (no buyer identity exists in curated data).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewView<'a> {
    pub review_id: &'a str,
    pub rating: u8,
    pub title: &'a str,
    pub text: &'a str,
    pub topics: Vec<(usize, f32)>,
    pub relevance: f32,
    pub helpful_votes: u32,
    pub total_votes: u32,
    pub verified_purchase: Option<bool>,
    pub review_date: Option<NaiveDate>,
    pub language: &'a str,
    /// Why it ranks where it does, strongest first.
    pub reasons: Vec<&'a str>,
}

/// The live snapshot: its manifest and the topic ids. Loading it reads one small object.
pub struct Snapshot {
    pub manifest: Manifest,
    pub loaded_at: DateTime<Utc>,
    topic_ids: HashMap<String, usize>,
    /// The product listing, built when first asked for.
    pub(crate) directory: tokio::sync::OnceCell<Arc<Directory>>,
}

impl Snapshot {
    /// Check a manifest's structure (its files are checked when fetched).
    pub fn new(manifest: Manifest) -> Result<Self, LoadError> {
        let bad = |message: String| LoadError::BadManifest {
            key: layout::LATEST_MANIFEST.to_owned(),
            message,
        };
        if manifest.buckets == 0 || manifest.bucket_files.is_empty() {
            return Err(bad(
                "it has no product buckets (written by an older version: publish again)".into(),
            ));
        }
        let keys: Vec<&str> = manifest
            .bucket_files
            .iter()
            .map(|f| f.curated_key.as_str())
            .collect();
        let sums: Vec<&str> = manifest
            .bucket_files
            .iter()
            .map(|f| f.checksum.as_str())
            .collect();
        if keys != manifest.keys || sums != manifest.part_checksums {
            return Err(bad("its keys or checksums disagree with its buckets".into()));
        }
        let mut all = Sha256::new();
        for c in &manifest.part_checksums {
            all.update(c.as_bytes());
        }
        if hex::encode(all.finalize()) != manifest.checksum {
            return Err(bad("its checksum does not match its buckets".into()));
        }
        if !manifest
            .bucket_files
            .windows(2)
            .all(|w| w[0].bucket < w[1].bucket)
            || manifest
                .bucket_files
                .last()
                .is_some_and(|f| f.bucket >= manifest.buckets)
        {
            return Err(bad("its buckets are not in order or out of range".into()));
        }
        let rows: u64 = manifest.bucket_files.iter().map(|f| f.rows).sum();
        let products: u64 = manifest.bucket_files.iter().map(|f| f.products).sum();
        if rows != manifest.rows || products != manifest.products {
            return Err(bad(format!(
                "it says {} rows and {} products, its buckets hold {rows} and {products}",
                manifest.rows, manifest.products
            )));
        }
        let topic_ids = manifest
            .topics
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        Ok(Self {
            manifest,
            loaded_at: Utc::now(),
            topic_ids,
            directory: tokio::sync::OnceCell::new(),
        })
    }

    pub fn run_id(&self) -> &str {
        self.manifest.run_id.as_str()
    }

    pub fn rows(&self) -> u64 {
        self.manifest.rows
    }

    pub fn product_count(&self) -> u64 {
        self.manifest.products
    }

    pub fn topics(&self) -> &[Topic] {
        &self.manifest.topics
    }

    pub fn topic_index(&self, id: &str) -> Option<usize> {
        self.topic_ids.get(id).copied()
    }

    /// The bucket file that holds `product_id`, if the snapshot has rows in its bucket.
    pub fn bucket_for(&self, product_id: &str) -> Option<&BucketFile> {
        self.manifest
            .bucket(layout::bucket_of(product_id, self.manifest.buckets))
    }
}

/// One bucket's reviews, decoded, with its products.
pub struct BucketIndex {
    part: Part,
    products: Vec<Product>,
    by_id: HashMap<String, u32>,
    /// Memory held, for the cache's bound.
    pub bytes: usize,
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str, key: &str) -> Result<&'a T, LoadError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| LoadError::BadPart {
            key: key.to_owned(),
            message: format!("column {name} missing or mistyped"),
        })
}

impl BucketIndex {
    /// Fetch a bucket's curated file and decode it, checking it against the snapshot.
    pub async fn load(
        lake: &dyn Lake,
        file: &BucketFile,
        snapshot: &Snapshot,
    ) -> Result<Self, LoadError> {
        let bytes = lake.get(&file.curated_key).await?;
        let file = file.clone();
        let topic_ids = snapshot.topic_ids.clone();
        let buckets = snapshot.manifest.buckets;
        tokio::task::spawn_blocking(move || decode(&file, bytes, &topic_ids, buckets))
            .await
            .map_err(|e| LoadError::BadPart {
                key: "<bucket>".into(),
                message: format!("decoder panicked: {e}"),
            })?
    }

    pub fn product(&self, id: &str) -> Option<&Product> {
        self.product_index(id).map(|i| &self.products[i])
    }

    /// Where `id` is in [`Self::products`].
    pub fn product_index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).map(|&i| i as usize)
    }

    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// The `limit` most relevant reviews of a product, optionally only those about `topic`.
    pub fn top_reviews(
        &self,
        snapshot: &Snapshot,
        product: &Product,
        limit: usize,
        topic: Option<usize>,
    ) -> Vec<ReviewView<'_>> {
        let part = &self.part;
        let rows = product.start as usize..(product.start + product.len) as usize;
        let mut out = Vec::with_capacity(limit.min(product.len as usize));
        for row in rows {
            if out.len() == limit {
                break;
            }
            let topics = review_topics(&snapshot.topic_ids, part, row);
            if let Some(t) = topic
                && !topics.iter().any(|(i, _)| *i == t)
            {
                continue;
            }
            out.push(ReviewView {
                review_id: part.review_id.value(row),
                rating: part.rating.value(row).clamp(0, 5) as u8,
                title: part.title.value(row),
                text: part.text.value(row),
                topics,
                relevance: part.relevance.value(row),
                helpful_votes: part.helpful.value(row).max(0) as u32,
                total_votes: part.total.value(row).max(0) as u32,
                verified_purchase: part
                    .verified
                    .is_valid(row)
                    .then(|| part.verified.value(row)),
                review_date: NaiveDate::from_num_days_from_ce_opt(part.date.value(row) + 719_163),
                language: part.language.value(row),
                reasons: review_reasons(part, row),
            });
        }
        out
    }
}

fn review_topics(topic_ids: &HashMap<String, usize>, part: &Part, row: usize) -> Vec<(usize, f32)> {
    let list = part.topics.value(row);
    let Some(st) = list.as_any().downcast_ref::<StructArray>() else {
        return Vec::new();
    };
    let (Some(ids), Some(scores)) = (
        st.column(0).as_any().downcast_ref::<StringArray>(),
        st.column(1).as_any().downcast_ref::<Float32Array>(),
    ) else {
        return Vec::new();
    };
    (0..st.len())
        .filter_map(|j| topic_ids.get(ids.value(j)).map(|&t| (t, scores.value(j))))
        .collect()
}

fn review_reasons(part: &Part, row: usize) -> Vec<&str> {
    if part.reasons.is_null(row) {
        return Vec::new();
    }
    let offsets = part.reasons.value_offsets();
    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
    let Some(values) = part.reasons.values().as_any().downcast_ref::<StringArray>() else {
        return Vec::new();
    };
    (start..end)
        .filter(|&j| values.is_valid(j))
        .map(|j| values.value(j))
        .collect()
}

fn decode(
    file: &BucketFile,
    bytes: bytes::Bytes,
    topic_ids: &HashMap<String, usize>,
    buckets: u32,
) -> Result<BucketIndex, LoadError> {
    let key = file.curated_key.as_str();
    let bad = |message: String| LoadError::BadPart {
        key: key.to_owned(),
        message,
    };
    if hex::encode(Sha256::digest(&bytes)) != file.checksum {
        return Err(bad("checksum differs from the manifest".into()));
    }
    let batches = read_parquet(ParquetDataset::Curated, bytes).map_err(|e| bad(e.to_string()))?;
    let schema = reviews_domain::schema::CURATED_SCHEMA.clone();
    let b =
        arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| bad(e.to_string()))?;
    drop(batches);
    let part = Part {
        review_id: col::<StringArray>(&b, "review_id", key)?.clone(),
        title: col::<StringArray>(&b, "title", key)?.clone(),
        text: col::<StringArray>(&b, "text", key)?.clone(),
        rating: col::<Int16Array>(&b, "rating", key)?.clone(),
        helpful: col::<Int32Array>(&b, "helpful_votes", key)?.clone(),
        total: col::<Int32Array>(&b, "total_votes", key)?.clone(),
        verified: col::<BooleanArray>(&b, "verified_purchase", key)?.clone(),
        date: col::<Date32Array>(&b, "review_date", key)?.clone(),
        language: col::<StringArray>(&b, "language", key)?.clone(),
        relevance: col::<Float32Array>(&b, "relevance", key)?.clone(),
        topics: col::<ListArray>(&b, "topics", key)?.clone(),
        reasons: col::<ListArray>(&b, "reasons", key)?.clone(),
    };
    let ids = col::<StringArray>(&b, "product_id", key)?;
    let ptitle = col::<StringArray>(&b, "product_title", key)?;
    let pcat = col::<StringArray>(&b, "product_category", key)?;
    let mut products: Vec<Product> = Vec::new();
    let mut row = 0usize;
    while row < b.num_rows() {
        let id = ids.value(row);
        if products.last().is_some_and(|p| p.product_id.as_str() >= id) {
            return Err(bad(format!("product {id} out of order")));
        }
        if layout::bucket_of(id, buckets) != file.bucket {
            return Err(bad(format!(
                "product {id} is not in bucket {}",
                file.bucket
            )));
        }
        let start = row;
        let mut product = Product {
            product_id: id.to_owned(),
            title: ptitle.value(row).to_owned(),
            category: pcat.value(row).to_owned(),
            start: start as u32,
            len: 0,
            rating_sum: 0,
            rating_histogram: [0; 5],
            topic_counts: vec![0; topic_ids.len()],
        };
        while row < b.num_rows() && ids.value(row) == id {
            let r = part.rating.value(row).clamp(1, 5) as u8;
            product.rating_sum += u64::from(r);
            product.rating_histogram[usize::from(r) - 1] += 1;
            let list = part.topics.value(row);
            if let Some(st) = list.as_any().downcast_ref::<StructArray>()
                && let Some(tids) = st.column(0).as_any().downcast_ref::<StringArray>()
            {
                for j in 0..tids.len() {
                    if let Some(&t) = topic_ids.get(tids.value(j)) {
                        product.topic_counts[t] += 1;
                    }
                }
            }
            row += 1;
        }
        product.len = (row - start) as u32;
        products.push(product);
    }
    if row as u64 != file.rows || products.len() as u64 != file.products {
        return Err(bad(format!(
            "holds {row} rows and {} products, the manifest says {} and {}",
            products.len(),
            file.rows,
            file.products
        )));
    }
    let by_id: HashMap<String, u32> = products
        .iter()
        .enumerate()
        .map(|(i, p)| (p.product_id.clone(), i as u32))
        .collect();
    let columns: usize = [
        part.review_id.get_array_memory_size(),
        part.title.get_array_memory_size(),
        part.text.get_array_memory_size(),
        part.rating.get_array_memory_size(),
        part.helpful.get_array_memory_size(),
        part.total.get_array_memory_size(),
        part.verified.get_array_memory_size(),
        part.date.get_array_memory_size(),
        part.language.get_array_memory_size(),
        part.relevance.get_array_memory_size(),
        part.topics.get_array_memory_size(),
        part.reasons.get_array_memory_size(),
    ]
    .iter()
    .sum();
    let per_product = std::mem::size_of::<Product>() + 4 * topic_ids.len() + 48;
    let names: usize = products
        .iter()
        .map(|p| 2 * p.product_id.len() + p.title.len() + p.category.len())
        .sum();
    let bytes = columns + products.len() * per_product + names;
    Ok(BucketIndex {
        part,
        products,
        by_id,
        bytes,
    })
}

/// Every product of the snapshot, most reviewed first (then by id): the storefront's list.
pub struct Directory {
    pub products: Vec<ProductEntry>,
}

impl Directory {
    pub fn from_parts(parts: &[Arc<Vec<ProductEntry>>]) -> Self {
        let mut products: Vec<ProductEntry> =
            parts.iter().flat_map(|p| p.iter().cloned()).collect();
        products.sort_by(|a, b| {
            b.reviews
                .cmp(&a.reviews)
                .then_with(|| a.product_id.cmp(&b.product_id))
        });
        Self { products }
    }

    pub fn page(&self, offset: usize, limit: usize) -> &[ProductEntry] {
        let start = offset.min(self.products.len());
        let end = offset.saturating_add(limit).min(self.products.len());
        &self.products[start..end]
    }
}

/// Fetch one bucket's product directory file and check it against the manifest.
pub async fn load_directory_part(
    lake: &dyn Lake,
    file: &BucketFile,
    key: &str,
    checksum: &str,
) -> Result<Vec<ProductEntry>, LoadError> {
    let bad = |message: String| LoadError::BadPart {
        key: key.to_owned(),
        message,
    };
    let bytes = lake.get(key).await?;
    if hex::encode(Sha256::digest(&bytes)) != checksum {
        return Err(bad("checksum differs from the manifest".into()));
    }
    let dir: ProductDirectory = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if dir.bucket != file.bucket || dir.products.len() as u64 != file.products {
        return Err(bad(format!(
            "lists {} products of bucket {}, the manifest says {} of bucket {}",
            dir.products.len(),
            dir.bucket,
            file.products,
            file.bucket
        )));
    }
    Ok(dir.products)
}

/// A bucket's directory from its decoded reviews (a bucket written without a directory file).
pub fn directory_of(bucket: &BucketIndex) -> Vec<ProductEntry> {
    bucket
        .products()
        .iter()
        .map(|p| ProductEntry {
            product_id: p.product_id.clone(),
            title: p.title.clone(),
            category: p.category.clone(),
            reviews: p.len,
            rating_sum: p.rating_sum,
        })
        .collect()
}
