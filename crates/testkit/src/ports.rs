//! In-memory implementations of the source and archive ports, for the fast tier: the stages
//! and handlers run on them without a server. They keep the ports' contracts (one consistent
//! snapshot per read, positions that only move forward, upserts keyed by review id); the
//! real adapters are proven against real servers in their own tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use reviews_domain::RawReview;
use reviews_ports::{
    ChangeFeed, ChangeRead, Deletion, ErrorClass, PortError, RawArchive, RawSource, ReadEnd,
    ReadRange, Upserted,
};
use serde::{Deserialize, Serialize};

/// Rows per batch a [`MemoryFeed`] read hands over.
const BATCH: usize = 1000;

#[derive(Debug, Clone)]
enum Change {
    Upsert(Box<RawReview>),
    Delete(Deletion),
}

/// Where a [`MemoryFeed`] read ended: the number of changes seen.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    seq: usize,
}

/// A change feed over a log of changes in memory. A read sees the log as it was when the
/// read began; each review appears once, in the version last written in the range; a full
/// read (no `from`) reports no deletions, as the PostgreSQL feed does.
#[derive(Default)]
pub struct MemoryFeed {
    log: Mutex<Vec<Change>>,
    fail_next: Mutex<Option<ErrorClass>>,
}

impl MemoryFeed {
    pub fn new() -> Self {
        Self::default()
    }

    /// Write (create or update) rows, in order.
    pub fn upsert(&self, rows: impl IntoIterator<Item = RawReview>) {
        let mut log = self.log.lock().unwrap();
        log.extend(rows.into_iter().map(|r| Change::Upsert(Box::new(r))));
    }

    /// Delete a review at the source.
    pub fn delete(&self, review_id: &str, product_id: Option<&str>) {
        let deletion = Deletion::of(review_id, product_id.map(str::to_owned));
        self.log.lock().unwrap().push(Change::Delete(deletion));
    }

    /// The next read fails with an error of this class, after half of its rows.
    pub fn fail_next_read(&self, class: ErrorClass) {
        *self.fail_next.lock().unwrap() = Some(class);
    }
}

fn position(p: &Option<String>) -> Result<Option<usize>, PortError> {
    p.as_deref()
        .map(|s| {
            serde_json::from_str::<Position>(s)
                .map(|p| p.seq)
                .map_err(|e| PortError::fatal(format!("not a memory feed position {s:?}: {e}")))
        })
        .transpose()
}

#[async_trait]
impl ChangeFeed for MemoryFeed {
    async fn read(&self, range: &ReadRange) -> Result<Box<dyn ChangeRead>, PortError> {
        let from = position(&range.from)?;
        let log = self.log.lock().unwrap().clone();
        let upto = position(&range.upto)?.unwrap_or(log.len()).min(log.len());
        let start = from.unwrap_or(0).min(upto);
        let mut latest: BTreeMap<String, (usize, RawReview)> = BTreeMap::new();
        let mut keyless = Vec::new();
        let mut deletions = Vec::new();
        for (seq, change) in log[start..upto].iter().enumerate() {
            match change {
                Change::Upsert(row) => match &row.review_id {
                    Some(id) => {
                        latest.insert(id.clone(), (seq, (**row).clone()));
                    }
                    None => keyless.push((seq, (**row).clone())),
                },
                Change::Delete(d) => deletions.push(d.clone()),
            }
        }
        let mut rows: Vec<(usize, RawReview)> = latest.into_values().chain(keyless).collect();
        rows.sort_by_key(|(seq, _)| *seq);
        let rows: Vec<RawReview> = rows.into_iter().map(|(_, r)| r).collect();
        let fail_after = self
            .fail_next
            .lock()
            .unwrap()
            .take()
            .map(|class| (rows.len() / 2, class));
        let end = (upto > 0 || from.is_some()).then_some(upto.max(from.unwrap_or(0)));
        Ok(Box::new(MemoryRead {
            rows: rows.into_iter(),
            read: 0,
            fail_after,
            end: ReadEnd {
                position: end.map(|seq| serde_json::to_string(&Position { seq }).unwrap()),
                deletions: Some(if from.is_some() {
                    deletions
                } else {
                    Vec::new()
                }),
            },
        }))
    }

    fn describe(&self) -> String {
        "memory feed".to_owned()
    }
}

struct MemoryRead {
    rows: std::vec::IntoIter<RawReview>,
    read: usize,
    fail_after: Option<(usize, ErrorClass)>,
    end: ReadEnd,
}

#[async_trait]
impl RawSource for MemoryRead {
    async fn next_batch(&mut self) -> Result<Option<Vec<RawReview>>, PortError> {
        let mut take = BATCH;
        if let Some((after, class)) = self.fail_after {
            if self.read >= after {
                return Err(PortError::message(
                    class,
                    "memory feed: the connection dropped",
                ));
            }
            take = take.min(after - self.read).max(1);
        }
        let batch: Vec<RawReview> = self.rows.by_ref().take(take).collect();
        self.read += batch.len();
        Ok((!batch.is_empty()).then_some(batch))
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.rows.len() as u64)
    }
}

#[async_trait]
impl ChangeRead for MemoryRead {
    async fn finish(self: Box<Self>) -> Result<ReadEnd, PortError> {
        Ok(self.end)
    }
}

/// An archive in memory: one document per trimmed review id (rows without one keyed by run
/// and position), as the MongoDB adapter keys them.
#[derive(Default)]
pub struct MemoryArchive {
    documents: Mutex<BTreeMap<String, (String, RawReview)>>,
    fail_next: Mutex<Option<ErrorClass>>,
}

impl MemoryArchive {
    pub fn new() -> Self {
        Self::default()
    }

    /// The archived rows by key, with the run that archived each last.
    pub fn documents(&self) -> BTreeMap<String, (String, RawReview)> {
        self.documents.lock().unwrap().clone()
    }

    /// The next upsert fails with an error of this class (the archive down, a refused write).
    pub fn fail_next_upsert(&self, class: ErrorClass) {
        *self.fail_next.lock().unwrap() = Some(class);
    }
}

#[async_trait]
impl RawArchive for MemoryArchive {
    async fn prepare(&self) -> Result<(), PortError> {
        Ok(())
    }

    async fn upsert(&self, run_id: &str, rows: &[RawReview]) -> Result<Upserted, PortError> {
        if let Some(class) = self.fail_next.lock().unwrap().take() {
            return Err(PortError::message(class, "memory archive: unavailable"));
        }
        let mut docs = self.documents.lock().unwrap();
        let mut out = Upserted::default();
        for row in rows {
            let key = match row.review_id.as_deref().map(str::trim) {
                Some(id) if !id.is_empty() => id.to_owned(),
                _ => format!("{run_id}/{}", row.source_position.unwrap_or_default()),
            };
            match docs.insert(key, (run_id.to_owned(), row.clone())) {
                Some(_) => out.replaced += 1,
                None => out.inserted += 1,
            }
        }
        Ok(out)
    }

    async fn erase_buyer(&self, buyer_key: &str) -> Result<u64, PortError> {
        let mut docs = self.documents.lock().unwrap();
        let before = docs.len();
        docs.retain(|_, (_, row)| row.buyer_key() != Some(buyer_key));
        Ok((before - docs.len()) as u64)
    }
}
