//! A lake that fails one write, like an S3 5xx: fault injection for the no-data-loss tests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use reviews_lake::{Lake, LakeError, PutCondition, Version};
use reviews_stores::LocalLake;

/// A local lake whose `fail_at`-th write (plain or conditional) of a key starting with
/// `prefix` fails once with a retryable S3 error.
pub struct FaultyLake {
    inner: LocalLake,
    prefix: &'static str,
    fail_at: usize,
    seen: AtomicUsize,
    failed: Mutex<Option<String>>,
}

impl FaultyLake {
    pub fn new(inner: LocalLake, prefix: &'static str, fail_at: usize) -> Self {
        Self {
            inner,
            prefix,
            fail_at,
            seen: AtomicUsize::new(0),
            failed: Mutex::new(None),
        }
    }

    /// The key whose write failed, once the fault fired.
    pub fn failed_key(&self) -> Option<String> {
        self.failed.lock().expect("not poisoned").clone()
    }

    fn fault(&self, key: &str) -> Result<(), LakeError> {
        if key.starts_with(self.prefix)
            && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at
        {
            *self.failed.lock().expect("not poisoned") = Some(key.to_owned());
            return Err(LakeError::S3 {
                operation: "PutObject",
                key: key.to_owned(),
                message: "InternalError (injected)".into(),
                retryable: true,
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Lake for FaultyLake {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), LakeError> {
        self.fault(key)?;
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, LakeError> {
        self.inner.get(key).await
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>, LakeError> {
        self.inner.get_versioned(key).await
    }
    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        condition: &PutCondition,
    ) -> Result<Version, LakeError> {
        self.fault(key)?;
        self.inner.put_if(key, body, condition).await
    }
    async fn size(&self, key: &str) -> Result<Option<u64>, LakeError> {
        self.inner.size(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, LakeError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), LakeError> {
        self.inner.delete(key).await
    }
    fn location(&self, key: &str) -> Result<String, LakeError> {
        self.inner.location(key)
    }
    fn describe(&self) -> String {
        "faulty local lake".into()
    }
}
