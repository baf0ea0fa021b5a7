//! Holds the live snapshot and the bucket cache, and picks up a newly published snapshot. A
//! snapshot that fails its checks never replaces the one being served; the failure is kept
//! for /health and logged. A refresh reads one small object (the manifest), always outside
//! requests: a background task (local server), or a task a request starts without waiting for
//! it (Lambda, where nothing runs between invocations).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use reviews_lake::manifest::{BucketFile, Manifest, ProductEntry};
use reviews_lake::{Lake, LakeError, layout};

use crate::cache::{BucketCache, CacheStats};
use crate::index::{
    BucketIndex, Directory, LoadError, Snapshot, directory_of, load_directory_part,
};

/// Bucket fetches a listing runs at once.
const DIRECTORY_FETCHES: usize = 16;

/// Default bound of the bucket cache.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// The last failure, for /health: in words a client can act on (details are in the logs).
#[derive(Debug, Clone)]
pub struct ReloadFailure {
    pub run_id: Option<String>,
    pub reason: String,
    pub at: DateTime<Utc>,
}

pub struct IndexHolder {
    lake: Arc<dyn Lake>,
    current: ArcSwapOption<Snapshot>,
    cache: BucketCache,
    /// Bucket directories of the live snapshot, by file and checksum: a listing after a
    /// publish fetches only the buckets that changed.
    directory_parts: Mutex<HashMap<String, Arc<Vec<ProductEntry>>>>,
    failure: Mutex<Option<ReloadFailure>>,
    last_check: Mutex<Option<Instant>>,
    /// Serialises refreshes.
    reloading: tokio::sync::Mutex<()>,
    refresh_running: AtomicBool,
    /// How often the manifest is checked.
    pub check_every: Duration,
}

impl IndexHolder {
    pub fn new(lake: Arc<dyn Lake>, check_every: Duration) -> Self {
        Self::with_cache(lake, check_every, DEFAULT_CACHE_BYTES)
    }

    pub fn with_cache(lake: Arc<dyn Lake>, check_every: Duration, cache_bytes: usize) -> Self {
        Self {
            lake,
            current: ArcSwapOption::empty(),
            cache: BucketCache::new(cache_bytes),
            directory_parts: Mutex::new(HashMap::new()),
            failure: Mutex::new(None),
            last_check: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
            refresh_running: AtomicBool::new(false),
            check_every,
        }
    }

    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    pub fn failure(&self) -> Option<ReloadFailure> {
        self.failure.lock().expect("no poison").clone()
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Check the manifest now and switch to it if it changed and checks out.
    /// Returns whether a new snapshot went live.
    pub async fn refresh(&self) -> bool {
        let _guard = self.reloading.lock().await;
        *self.last_check.lock().expect("no poison") = Some(Instant::now());
        let manifest = match self.lake.get(layout::LATEST_MANIFEST).await {
            Ok(bytes) => match Manifest::from_json(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    let err = LoadError::BadManifest {
                        key: layout::LATEST_MANIFEST.to_owned(),
                        message: e.to_string(),
                    };
                    self.fail(None, &err);
                    return false;
                }
            },
            Err(LakeError::NotFound(_)) => {
                if self.current().is_none() {
                    self.fail(None, &LoadError::NoManifest);
                }
                return false;
            }
            Err(e) => {
                self.fail(None, &LoadError::Lake(e));
                return false;
            }
        };
        if let Some(cur) = self.current()
            && cur.manifest.run_id == manifest.run_id
            && cur.manifest.checksum == manifest.checksum
            && cur.manifest.sequence == manifest.sequence
        {
            return false;
        }
        let run = manifest.run_id.to_string();
        match Snapshot::new(manifest) {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                let listed = self.current().is_some_and(|c| c.directory.initialized());
                if listed {
                    // The listing was in use: rebuild it before the switch, so no request
                    // waits for it.
                    if let Err(e) = self.directory(&snapshot).await {
                        self.fail(Some(run), &e);
                        return false;
                    }
                }
                tracing::info!(
                    run_id = %run, rows = snapshot.rows(), products = snapshot.product_count(),
                    buckets = snapshot.manifest.bucket_files.len(), "snapshot live"
                );
                self.current.store(Some(snapshot.clone()));
                self.cache.retain_only(&snapshot);
                *self.failure.lock().expect("no poison") = None;
                true
            }
            Err(e) => {
                self.fail(Some(run), &e);
                false
            }
        }
    }

    fn fail(&self, run_id: Option<String>, err: &LoadError) {
        let serving = self.current().map(|c| c.run_id().to_owned());
        tracing::warn!(
            failed_run = run_id.as_deref().unwrap_or("-"),
            serving = serving.as_deref().unwrap_or("-"),
            error = %err,
            "snapshot not loaded; keeping the current one"
        );
        let reason = if serving.is_some() {
            format!(
                "{}; the previous dataset is still served",
                err.public_reason()
            )
        } else {
            err.public_reason().to_owned()
        };
        *self.failure.lock().expect("no poison") = Some(ReloadFailure {
            run_id,
            reason,
            at: Utc::now(),
        });
    }

    /// The bucket holding `product_id` in `snapshot`, or `None` when the snapshot has no rows
    /// in that bucket.
    pub async fn bucket(
        &self,
        snapshot: &Snapshot,
        product_id: &str,
    ) -> Result<Option<Arc<BucketIndex>>, LoadError> {
        let Some(file) = snapshot.bucket_for(product_id) else {
            return Ok(None);
        };
        self.bucket_file(snapshot, file).await.map(Some)
    }

    async fn bucket_file(
        &self,
        snapshot: &Snapshot,
        file: &BucketFile,
    ) -> Result<Arc<BucketIndex>, LoadError> {
        self.cache
            .get(self.lake.as_ref(), file, snapshot)
            .await
            .inspect_err(|e| {
                tracing::error!(
                    run_id = %snapshot.run_id(), bucket = file.bucket, error = %e,
                    "bucket not served"
                );
            })
    }

    /// The snapshot's product listing, built once from the buckets' directory files (fetched
    /// a few at a time; the ones unchanged since the last listing are reused).
    pub async fn directory(&self, snapshot: &Arc<Snapshot>) -> Result<Arc<Directory>, LoadError> {
        snapshot
            .directory
            .get_or_try_init(|| self.build_directory(snapshot))
            .await
            .cloned()
    }

    async fn build_directory(&self, snapshot: &Arc<Snapshot>) -> Result<Arc<Directory>, LoadError> {
        let files = &snapshot.manifest.bucket_files;
        let part_key = |f: &BucketFile| match (&f.directory_key, &f.directory_checksum) {
            (Some(k), Some(c)) => format!("{k}#{c}"),
            _ => format!("{}#{}", f.curated_key, f.checksum),
        };
        let known = self.directory_parts.lock().expect("no poison").clone();
        let mut parts: Vec<Option<Arc<Vec<ProductEntry>>>> = files
            .iter()
            .map(|f| known.get(&part_key(f)).cloned())
            .collect();
        let missing: Vec<usize> = (0..files.len()).filter(|&i| parts[i].is_none()).collect();
        for chunk in missing.chunks(DIRECTORY_FETCHES) {
            let mut tasks = tokio::task::JoinSet::new();
            for &i in chunk {
                let file = files[i].clone();
                let lake = self.lake.clone();
                let snap = snapshot.clone();
                tasks.spawn(async move {
                    let entries = match (&file.directory_key, &file.directory_checksum) {
                        (Some(key), Some(sum)) => {
                            load_directory_part(lake.as_ref(), &file, key, sum).await?
                        }
                        // Written before directory files: read the bucket itself.
                        _ => directory_of(&BucketIndex::load(lake.as_ref(), &file, &snap).await?),
                    };
                    Ok::<_, LoadError>((i, entries))
                });
            }
            while let Some(done) = tasks.join_next().await {
                let (i, entries) = done.map_err(|e| LoadError::BadPart {
                    key: "<directory>".into(),
                    message: format!("directory task failed: {e}"),
                })??;
                parts[i] = Some(Arc::new(entries));
            }
        }
        let parts: Vec<Arc<Vec<ProductEntry>>> = parts.into_iter().flatten().collect();
        let dir = Directory::from_parts(&parts);
        *self.directory_parts.lock().expect("no poison") = files
            .iter()
            .zip(&parts)
            .map(|(f, p)| (part_key(f), p.clone()))
            .collect();
        Ok(Arc::new(dir))
    }

    /// Refresh if the last check is older than `check_every`.
    pub async fn refresh_if_due(&self) {
        if self.is_due() {
            self.refresh().await;
        }
    }

    fn is_due(&self) -> bool {
        self.last_check
            .lock()
            .expect("no poison")
            .is_none_or(|t| t.elapsed() >= self.check_every)
    }

    /// Start a refresh when one is due, without waiting for it (Lambda: called per request;
    /// the request is served from the current snapshot).
    pub fn refresh_in_background_if_due(self: &Arc<Self>) {
        if !self.is_due() || self.refresh_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            me.refresh().await;
            me.refresh_running.store(false, Ordering::Release);
        });
    }

    /// Check the manifest every `check_every` in the background (local server).
    pub fn spawn_watcher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.check_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.refresh().await;
            }
        })
    }
}
