//! Holds the live index and reloads it when the manifest changes. A dataset that fails to load
//! never replaces the one being served; the failure is kept for /health and logged.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use reviews_lake::manifest::Manifest;
use reviews_lake::{Lake, LakeError, layout};

use crate::index::{CuratedIndex, LoadError};

/// The last reload attempt that failed, for /health.
#[derive(Debug, Clone)]
pub struct ReloadFailure {
    pub run_id: Option<String>,
    pub reason: String,
    pub at: DateTime<Utc>,
}

pub struct IndexHolder {
    lake: Arc<dyn Lake>,
    current: ArcSwapOption<CuratedIndex>,
    failure: Mutex<Option<ReloadFailure>>,
    last_check: Mutex<Option<Instant>>,
    /// Serialises reloads: one load at a time.
    reloading: tokio::sync::Mutex<()>,
    /// How often the manifest is checked.
    pub check_every: Duration,
}

impl IndexHolder {
    pub fn new(lake: Arc<dyn Lake>, check_every: Duration) -> Self {
        Self {
            lake,
            current: ArcSwapOption::empty(),
            failure: Mutex::new(None),
            last_check: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
            check_every,
        }
    }

    pub fn current(&self) -> Option<Arc<CuratedIndex>> {
        self.current.load_full()
    }

    pub fn failure(&self) -> Option<ReloadFailure> {
        self.failure.lock().expect("no poison").clone()
    }

    /// Check the manifest now and load a new dataset if it changed.
    /// Returns whether a new dataset went live.
    pub async fn refresh(&self) -> bool {
        let _guard = self.reloading.lock().await;
        *self.last_check.lock().expect("no poison") = Some(Instant::now());
        let manifest = match self.lake.get(layout::LATEST_MANIFEST).await {
            Ok(bytes) => match Manifest::from_json(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    self.fail(None, format!("{} is invalid: {e}", layout::LATEST_MANIFEST));
                    return false;
                }
            },
            Err(LakeError::NotFound(_)) => {
                if self.current().is_none() {
                    self.fail(None, LoadError::NoManifest.to_string());
                }
                return false;
            }
            Err(e) => {
                self.fail(None, format!("cannot read the manifest: {e}"));
                return false;
            }
        };
        if let Some(cur) = self.current()
            && cur.manifest.run_id == manifest.run_id
            && cur.manifest.checksum == manifest.checksum
        {
            return false;
        }
        let run = manifest.run_id.to_string();
        match CuratedIndex::load(self.lake.as_ref(), manifest).await {
            Ok(index) => {
                tracing::info!(run_id = %run, rows = index.rows(), products = index.product_count(), "dataset loaded");
                self.current.store(Some(Arc::new(index)));
                *self.failure.lock().expect("no poison") = None;
                true
            }
            Err(e) => {
                self.fail(Some(run), e.to_string());
                false
            }
        }
    }

    fn fail(&self, run_id: Option<String>, reason: String) {
        let serving = self.current().map(|c| c.run_id().to_owned());
        tracing::warn!(
            failed_run = run_id.as_deref().unwrap_or("-"),
            serving = serving.as_deref().unwrap_or("-"),
            reason = %reason,
            "dataset not loaded; keeping the current one"
        );
        *self.failure.lock().expect("no poison") = Some(ReloadFailure {
            run_id,
            reason,
            at: Utc::now(),
        });
    }

    /// Refresh if the last check is older than `check_every` (Lambda: called per request).
    pub async fn refresh_if_due(&self) {
        let due = self
            .last_check
            .lock()
            .expect("no poison")
            .is_none_or(|t| t.elapsed() >= self.check_every);
        if due {
            self.refresh().await;
        }
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
