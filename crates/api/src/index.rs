//! The curated index: the live curated dataset held in memory as Arrow columns, with a
//! per-product directory. Loading reads `curated/_latest.json`, then each part (checked
//! against its manifest checksum), once; a lookup is a binary-search-free hash probe and a slice
//! of already sorted rows: memory only, no I/O.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    Array, BooleanArray, Date32Array, Float32Array, ListArray, RecordBatch, StringArray,
    StructArray, UInt8Array, UInt32Array,
};
use chrono::{DateTime, NaiveDate, Utc};
use reviews_domain::Topic;
use reviews_lake::manifest::Manifest;
use reviews_lake::parquet_io::{Dataset as ParquetDataset, read_parquet};
use reviews_lake::{Lake, LakeError, layout};
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

/// One curated part's columns (the ones the API serves).
struct Part {
    review_id: StringArray,
    title: StringArray,
    text: StringArray,
    rating: UInt8Array,
    helpful: UInt32Array,
    total: UInt32Array,
    verified: BooleanArray,
    date: Date32Array,
    language: StringArray,
    relevance: Float32Array,
    topics: ListArray,
}

/// A product's entry in the directory; its reviews are rows `start..start + len` of `part`,
/// already in relevance order.
#[derive(Debug, Clone)]
pub struct Product {
    pub product_id: String,
    pub title: String,
    pub category: String,
    part: u32,
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
}

/// The live dataset.
pub struct CuratedIndex {
    pub manifest: Manifest,
    pub loaded_at: DateTime<Utc>,
    parts: Vec<Part>,
    products: Vec<Product>,
    by_id: HashMap<String, u32>,
    /// Product indices, most reviewed first (then by id): the storefront's list order.
    popular: Vec<u32>,
    topic_ids: HashMap<String, usize>,
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str, key: &str) -> Result<&'a T, LoadError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| LoadError::BadPart {
            key: key.to_owned(),
            message: format!("column {name} missing or mistyped"),
        })
}

impl CuratedIndex {
    /// Load the dataset the live manifest points at.
    pub async fn load_latest(lake: &dyn Lake) -> Result<Self, LoadError> {
        let bytes = match lake.get(layout::LATEST_MANIFEST).await {
            Ok(b) => b,
            Err(LakeError::NotFound(_)) => return Err(LoadError::NoManifest),
            Err(e) => return Err(e.into()),
        };
        let manifest = Manifest::from_json(&bytes).map_err(|e| LoadError::BadManifest {
            key: layout::LATEST_MANIFEST.to_owned(),
            message: e.to_string(),
        })?;
        Self::load(lake, manifest).await
    }

    /// Load the parts of a manifest, verifying each against its checksum.
    pub async fn load(lake: &dyn Lake, manifest: Manifest) -> Result<Self, LoadError> {
        if manifest.keys.len() != manifest.part_checksums.len() || manifest.keys.is_empty() {
            return Err(LoadError::BadManifest {
                key: layout::LATEST_MANIFEST.to_owned(),
                message: "keys and part checksums disagree or are empty".into(),
            });
        }
        let mut blobs = Vec::with_capacity(manifest.keys.len());
        for key in &manifest.keys {
            blobs.push((key.clone(), lake.get(key).await?));
        }
        let checksums = manifest.part_checksums.clone();
        let manifest_for_build = manifest.clone();
        tokio::task::spawn_blocking(move || build(manifest_for_build, blobs, checksums))
            .await
            .map_err(|e| LoadError::BadPart {
                key: "<all>".into(),
                message: format!("loader panicked: {e}"),
            })?
    }

    pub fn run_id(&self) -> &str {
        self.manifest.run_id.as_str()
    }

    pub fn rows(&self) -> u64 {
        self.manifest.rows
    }

    pub fn topics(&self) -> &[Topic] {
        &self.manifest.topics
    }

    pub fn topic_index(&self, id: &str) -> Option<usize> {
        self.topic_ids.get(id).copied()
    }

    pub fn product_count(&self) -> usize {
        self.products.len()
    }

    pub fn product(&self, id: &str) -> Option<&Product> {
        self.by_id.get(id).map(|&i| &self.products[i as usize])
    }

    /// Products in storefront order (most reviewed first), one page.
    pub fn products_page(&self, offset: usize, limit: usize) -> impl Iterator<Item = &Product> {
        self.popular
            .iter()
            .skip(offset)
            .take(limit)
            .map(|&i| &self.products[i as usize])
    }

    /// The `limit` most relevant reviews of a product, optionally only those about `topic`.
    pub fn top_reviews(
        &self,
        product: &Product,
        limit: usize,
        topic: Option<usize>,
    ) -> Vec<ReviewView<'_>> {
        let part = &self.parts[product.part as usize];
        let rows = product.start as usize..(product.start + product.len) as usize;
        let mut out = Vec::with_capacity(limit.min(product.len as usize));
        for row in rows {
            if out.len() == limit {
                break;
            }
            let topics = self.review_topics(part, row);
            if let Some(t) = topic
                && !topics.iter().any(|(i, _)| *i == t)
            {
                continue;
            }
            out.push(ReviewView {
                review_id: part.review_id.value(row),
                rating: part.rating.value(row),
                title: part.title.value(row),
                text: part.text.value(row),
                topics,
                relevance: part.relevance.value(row),
                helpful_votes: part.helpful.value(row),
                total_votes: part.total.value(row),
                verified_purchase: part
                    .verified
                    .is_valid(row)
                    .then(|| part.verified.value(row)),
                review_date: NaiveDate::from_num_days_from_ce_opt(part.date.value(row) + 719_163),
                language: part.language.value(row),
            });
        }
        out
    }

    fn review_topics(&self, part: &Part, row: usize) -> Vec<(usize, f32)> {
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
            .filter_map(|j| {
                self.topic_ids
                    .get(ids.value(j))
                    .map(|&t| (t, scores.value(j)))
            })
            .collect()
    }
}

fn build(
    manifest: Manifest,
    blobs: Vec<(String, bytes::Bytes)>,
    checksums: Vec<String>,
) -> Result<CuratedIndex, LoadError> {
    use sha2::{Digest, Sha256};
    let topic_ids: HashMap<String, usize> = manifest
        .topics
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.clone(), i))
        .collect();
    // Decode the parts on all cores.
    let decoded: Vec<Result<(RecordBatch, String), LoadError>> = std::thread::scope(|s| {
        let handles: Vec<_> = blobs
            .into_iter()
            .zip(checksums)
            .map(|((key, bytes), expected)| {
                s.spawn(move || {
                    let bad = |message: String| LoadError::BadPart {
                        key: key.clone(),
                        message,
                    };
                    if hex::encode(Sha256::digest(&bytes)) != expected {
                        return Err(bad("checksum differs from the manifest".into()));
                    }
                    let batches = read_parquet(ParquetDataset::Curated, bytes)
                        .map_err(|e| bad(e.to_string()))?;
                    let schema = reviews_domain::schema::CURATED_SCHEMA.clone();
                    let batch = arrow_select::concat::concat_batches(&schema, &batches)
                        .map_err(|e| bad(e.to_string()))?;
                    Ok((batch, key))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("decoder panicked"))
            .collect()
    });

    let mut parts = Vec::new();
    let mut products: Vec<Product> = Vec::new();
    for (part_no, result) in decoded.into_iter().enumerate() {
        let (b, key) = result?;
        let k = key.as_str();
        let part = Part {
            review_id: col::<StringArray>(&b, "review_id", k)?.clone(),
            title: col::<StringArray>(&b, "title", k)?.clone(),
            text: col::<StringArray>(&b, "text", k)?.clone(),
            rating: col::<UInt8Array>(&b, "rating", k)?.clone(),
            helpful: col::<UInt32Array>(&b, "helpful_votes", k)?.clone(),
            total: col::<UInt32Array>(&b, "total_votes", k)?.clone(),
            verified: col::<BooleanArray>(&b, "verified_purchase", k)?.clone(),
            date: col::<Date32Array>(&b, "review_date", k)?.clone(),
            language: col::<StringArray>(&b, "language", k)?.clone(),
            relevance: col::<Float32Array>(&b, "relevance", k)?.clone(),
            topics: col::<ListArray>(&b, "topics", k)?.clone(),
        };
        let ids = col::<StringArray>(&b, "product_id", k)?;
        let ptitle = col::<StringArray>(&b, "product_title", k)?;
        let pcat = col::<StringArray>(&b, "product_category", k)?;
        let mut row = 0usize;
        while row < b.num_rows() {
            let id = ids.value(row);
            let start = row;
            let mut product = Product {
                product_id: id.to_owned(),
                title: ptitle.value(row).to_owned(),
                category: pcat.value(row).to_owned(),
                part: part_no as u32,
                start: start as u32,
                len: 0,
                rating_sum: 0,
                rating_histogram: [0; 5],
                topic_counts: vec![0; topic_ids.len()],
            };
            while row < b.num_rows() && ids.value(row) == id {
                let r = part.rating.value(row).clamp(1, 5);
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
            // Within a part, products ascend (each product is one run of rows); across
            // parts (product buckets) any order, but a product lives in one part only.
            if products
                .last()
                .is_some_and(|p| p.part == part_no as u32 && p.product_id.as_str() >= id)
            {
                return Err(LoadError::BadPart {
                    key: key.clone(),
                    message: format!("product {id} out of order"),
                });
            }
            products.push(product);
        }
        parts.push(part);
    }
    let rows: u64 = products.iter().map(|p| u64::from(p.len)).sum();
    if rows != manifest.rows {
        return Err(LoadError::BadManifest {
            key: layout::LATEST_MANIFEST.to_owned(),
            message: format!("manifest says {} rows, parts hold {rows}", manifest.rows),
        });
    }
    let mut by_id = HashMap::with_capacity(products.len());
    for (i, p) in products.iter().enumerate() {
        if by_id.insert(p.product_id.clone(), i as u32).is_some() {
            return Err(LoadError::BadPart {
                key: manifest.keys[p.part as usize].clone(),
                message: format!("product {} is in more than one part", p.product_id),
            });
        }
    }
    let mut popular: Vec<u32> = (0..products.len() as u32).collect();
    popular.sort_by(|&a, &b| {
        let (pa, pb) = (&products[a as usize], &products[b as usize]);
        pb.len
            .cmp(&pa.len)
            .then_with(|| pa.product_id.cmp(&pb.product_id))
    });
    Ok(CuratedIndex {
        manifest,
        loaded_at: Utc::now(),
        parts,
        products,
        by_id,
        popular,
        topic_ids,
    })
}

/// Shared handle on the live index, swapped atomically on reload.
pub type SharedIndex = Arc<CuratedIndex>;
