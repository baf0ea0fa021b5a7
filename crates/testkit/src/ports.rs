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

/// Where a [`MemoryFeed`] read ended: the last change sequence it covered.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    seq: u64,
}

/// The source's current state: rows and deletions, each stamped with a change sequence.
#[derive(Default, Clone)]
struct Tables {
    seq: u64,
    rows: BTreeMap<String, (u64, RawReview)>,
    /// Deleted review ids with the product they were under (as the database's trigger
    /// records them: a review moved to another product leaves its old product).
    deleted: BTreeMap<String, (u64, Option<String>)>,
}

/// A change feed over a source database in memory, with the PostgreSQL feed's semantics: a
/// read sees one snapshot; it returns the current version of every row changed in
/// `(from, upto]` in change order, and (when incremental) the deletions in that range; a
/// review moved to another product is reported deleted under the old one; a full read
/// reports no deletions (its rows are the whole dataset).
#[derive(Default)]
pub struct MemoryFeed {
    tables: Mutex<Tables>,
    fail_next: Mutex<Option<ErrorClass>>,
}

impl MemoryFeed {
    pub fn new() -> Self {
        Self::default()
    }

    /// Write (create or update) rows, in order. Rows without a review id get a key of their
    /// own (they are never updated).
    pub fn upsert(&self, rows: impl IntoIterator<Item = RawReview>) {
        let mut t = self.tables.lock().unwrap();
        for row in rows {
            t.seq += 1;
            let seq = t.seq;
            let id = row
                .review_id
                .clone()
                .unwrap_or_else(|| format!("\u{0}keyless-{seq}"));
            match t.rows.get(&id) {
                Some((_, old)) if old.product_id != row.product_id => {
                    let product = old.product_id.clone();
                    t.deleted.insert(id.clone(), (seq, product));
                }
                Some(_) => {}
                None => {
                    t.deleted.remove(&id);
                }
            }
            t.rows.insert(id, (seq, row));
        }
    }

    /// Delete a review at the source.
    pub fn delete(&self, review_id: &str) {
        let mut t = self.tables.lock().unwrap();
        t.seq += 1;
        let seq = t.seq;
        let product = t.rows.remove(review_id).and_then(|(_, r)| r.product_id);
        t.deleted.insert(review_id.to_owned(), (seq, product));
    }

    /// The current rows by review id, with the sequence of their last change.
    pub fn rows(&self) -> BTreeMap<String, (u64, RawReview)> {
        self.tables.lock().unwrap().rows.clone()
    }

    /// The next read fails with an error of this class, after half of its rows.
    pub fn fail_next_read(&self, class: ErrorClass) {
        *self.fail_next.lock().unwrap() = Some(class);
    }
}

fn position(p: &Option<String>) -> Result<Option<u64>, PortError> {
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
        let t = self.tables.lock().unwrap().clone();
        let upto = position(&range.upto)?.unwrap_or(t.seq);
        let lower = from.unwrap_or(0);
        let within = |seq: u64| seq > lower && seq <= upto;
        let mut rows: Vec<(u64, RawReview)> = t
            .rows
            .into_values()
            .filter(|(seq, _)| within(*seq))
            .collect();
        rows.sort_by_key(|(seq, _)| *seq);
        let rows: Vec<RawReview> = rows.into_iter().map(|(_, r)| r).collect();
        let deletions = match from {
            Some(_) => t
                .deleted
                .into_iter()
                .filter(|(_, (seq, _))| within(*seq))
                .map(|(id, (_, product))| Deletion::of(id, product))
                .collect(),
            None => Vec::new(),
        };
        let fail_after = self
            .fail_next
            .lock()
            .unwrap()
            .take()
            .map(|class| (rows.len() / 2, class));
        let end = upto.max(lower);
        Ok(Box::new(MemoryRead {
            rows: rows.into_iter(),
            read: 0,
            fail_after,
            end: ReadEnd {
                position: (end > 0 || from.is_some())
                    .then(|| serde_json::to_string(&Position { seq: end }).unwrap()),
                deletions: Some(deletions),
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
