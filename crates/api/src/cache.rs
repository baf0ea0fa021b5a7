//! The bucket cache: decoded buckets, least recently used evicted first, bounded by the memory
//! they hold. A bucket is keyed by its file and checksum, so a bucket unchanged between two
//! snapshots is the same entry and is not fetched again. Concurrent requests for a bucket that
//! is not loaded wait on one fetch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reviews_lake::Lake;
use reviews_lake::manifest::BucketFile;
use tokio::sync::OnceCell;

use crate::index::{BucketIndex, LoadError, Snapshot};

struct Slot {
    cell: Arc<OnceCell<Arc<BucketIndex>>>,
    last_used: u64,
    /// 0 until loaded.
    bytes: usize,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<String, Slot>,
    tick: u64,
    used: usize,
    fetches: u64,
}

/// What the cache holds, for /health and the benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub buckets: usize,
    pub bytes: usize,
    pub capacity: usize,
    /// Buckets fetched from the lake since the start.
    pub fetches: u64,
}

pub struct BucketCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

fn slot_key(file: &BucketFile) -> String {
    format!("{}#{}", file.curated_key, file.checksum)
}

impl BucketCache {
    /// A cache holding at most `capacity` bytes of decoded buckets (one bucket larger than
    /// that is still served, then dropped).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn stats(&self) -> CacheStats {
        let inner = self.inner.lock().expect("no poison");
        CacheStats {
            buckets: inner.slots.values().filter(|s| s.bytes > 0).count(),
            bytes: inner.used,
            capacity: self.capacity,
            fetches: inner.fetches,
        }
    }

    /// The bucket, from memory or fetched once from the lake.
    pub async fn get(
        &self,
        lake: &dyn Lake,
        file: &BucketFile,
        snapshot: &Snapshot,
    ) -> Result<Arc<BucketIndex>, LoadError> {
        let key = slot_key(file);
        let cell = {
            let mut inner = self.inner.lock().expect("no poison");
            inner.tick += 1;
            let tick = inner.tick;
            let slot = inner.slots.entry(key.clone()).or_insert_with(|| Slot {
                cell: Arc::new(OnceCell::new()),
                last_used: tick,
                bytes: 0,
            });
            slot.last_used = tick;
            slot.cell.clone()
        };
        if let Some(index) = cell.get() {
            return Ok(index.clone());
        }
        let index = cell
            .get_or_try_init(|| async {
                self.inner.lock().expect("no poison").fetches += 1;
                BucketIndex::load(lake, file, snapshot).await.map(Arc::new)
            })
            .await?
            .clone();
        let mut inner = self.inner.lock().expect("no poison");
        if let Some(slot) = inner.slots.get_mut(&key)
            && Arc::ptr_eq(&slot.cell, &cell)
            && slot.bytes == 0
        {
            slot.bytes = index.bytes.max(1);
            inner.used += index.bytes.max(1);
            self.evict(&mut inner, &key);
        }
        Ok(index)
    }

    /// Drop least recently used buckets until the bound holds (never `keep`, just loaded).
    fn evict(&self, inner: &mut Inner, keep: &str) {
        while inner.used > self.capacity {
            let victim = inner
                .slots
                .iter()
                .filter(|(k, s)| s.bytes > 0 && k.as_str() != keep)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            if let Some(slot) = inner.slots.remove(&victim) {
                inner.used -= slot.bytes;
            }
        }
        if inner.used > self.capacity
            && let Some(slot) = inner.slots.remove(keep)
        {
            // Alone over the bound: served to its waiting requests, not kept.
            inner.used -= slot.bytes;
        }
    }

    /// Forget buckets the live snapshot no longer references.
    pub fn retain_only(&self, live: &Snapshot) {
        let keep: std::collections::HashSet<String> =
            live.manifest.bucket_files.iter().map(slot_key).collect();
        let mut inner = self.inner.lock().expect("no poison");
        let gone: Vec<String> = inner
            .slots
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(slot) = inner.slots.remove(&k) {
                inner.used -= slot.bytes;
            }
        }
    }
}
