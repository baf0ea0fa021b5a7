//! The curated manifest: what `curated/_latest.json` (and each run's `_manifest.json`) says.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::layout::RunId;

/// One published curated dataset. Publish writes it only after every part validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub dataset: String,
    pub schema_version: u32,
    pub run_id: RunId,
    /// Curated part keys: one per non-empty product bucket, in bucket order (a snapshot from
    /// before buckets: parts in product order).
    pub keys: Vec<String>,
    pub rows: u64,
    pub products: u64,
    /// SHA-256 over the parts' SHA-256 digests, in key order: one value to compare runs by.
    pub checksum: String,
    pub part_checksums: Vec<String>,
    /// The topic labels the classifier used: (id, name).
    pub topics: Vec<reviews_domain::Topic>,
    pub created_at: DateTime<Utc>,
    /// The commit number of this snapshot in `curated/_latest.json`: 1 for the first publish,
    /// one more for every later publish or rollback. 0 in a run's own `_manifest.json`.
    #[serde(default)]
    pub sequence: u64,
    /// The commit this run was built on (its carried rows and its starting watermark).
    #[serde(default)]
    pub base_sequence: u64,
    /// Where the next incremental extract starts once this snapshot is live (opaque; the
    /// source's own format). Moves only with a commit.
    #[serde(default)]
    pub watermark: Option<String>,
    /// How many erased buyers the dataset was built without (the erased list only grows).
    #[serde(default)]
    pub erased_buyers: u64,
    /// How many product buckets the snapshot is split into (0: a snapshot from before
    /// buckets, whose parts are cut by product order).
    #[serde(default)]
    pub buckets: u32,
    /// The files of every non-empty bucket, in bucket order. A bucket a run did not change
    /// points at the files of the run that last wrote it.
    #[serde(default)]
    pub bucket_files: Vec<BucketFile>,
}

/// The files that hold one product bucket of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketFile {
    pub bucket: u32,
    /// Every cleaned row of the bucket (the next run's carry-over base).
    pub cleaned_key: String,
    /// The bucket's curated rows (what the API serves).
    pub curated_key: String,
    pub rows: u64,
    pub products: u64,
    /// SHA-256 of the curated file.
    pub checksum: String,
    /// The run that wrote the files.
    pub run_id: RunId,
    /// The bucket's product directory (a [`ProductDirectory`] JSON file) and its SHA-256: what
    /// the API lists products from without reading the reviews. Absent in snapshots written
    /// before directories existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_checksum: Option<String>,
}

/// One product of a bucket's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductEntry {
    pub product_id: String,
    pub title: String,
    pub category: String,
    pub reviews: u32,
    /// Sum of the star ratings (average = rating_sum / reviews).
    pub rating_sum: u64,
}

/// The products of one bucket, in product id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductDirectory {
    pub bucket: u32,
    pub products: Vec<ProductEntry>,
}

impl Manifest {
    /// The files of `bucket`, if the snapshot has rows there.
    pub fn bucket(&self, bucket: u32) -> Option<&BucketFile> {
        self.bucket_files
            .binary_search_by_key(&bucket, |f| f.bucket)
            .ok()
            .map(|i| &self.bucket_files[i])
    }
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serialises")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
