//! A lake held in process memory: the same contract as the local folder and S3 (atomic puts,
//! compare-and-swap, sorted listing), for tests of stages and handlers that need no server
//! and no disk. Not for data that must outlive the process.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::local::{condition_holds, version_of};
use crate::{Lake, LakeError, PutCondition, Version, validate_key};

/// Objects by key. Versions are digests of the content, as on the local lake (and as S3's
/// ETag of a single-part upload): the same bytes written again are the same version.
#[derive(Debug, Default)]
pub struct MemoryLake {
    objects: Mutex<BTreeMap<String, Bytes>>,
}

impl MemoryLake {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Lake for MemoryLake {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), LakeError> {
        validate_key(key)?;
        self.objects
            .lock()
            .expect("lock")
            .insert(key.to_owned(), body);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, LakeError> {
        self.get_versioned(key)
            .await?
            .map(|(body, _)| body)
            .ok_or_else(|| LakeError::NotFound(key.to_owned()))
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>, LakeError> {
        validate_key(key)?;
        let objects = self.objects.lock().expect("lock");
        Ok(objects
            .get(key)
            .map(|body| (body.clone(), version_of(body))))
    }

    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        condition: &PutCondition,
    ) -> Result<Version, LakeError> {
        validate_key(key)?;
        // Compare and write under one lock: the compare-and-swap the trait promises.
        let mut objects = self.objects.lock().expect("lock");
        if !condition_holds(condition, objects.get(key).map(|b| &b[..])) {
            return Err(LakeError::Conflict {
                key: key.to_owned(),
            });
        }
        let version = version_of(&body);
        objects.insert(key.to_owned(), body);
        Ok(version)
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, LakeError> {
        validate_key(key)?;
        let objects = self.objects.lock().expect("lock");
        Ok(objects.get(key).map(|body| body.len() as u64))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, LakeError> {
        let objects = self.objects.lock().expect("lock");
        Ok(objects
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), LakeError> {
        validate_key(key)?;
        self.objects.lock().expect("lock").remove(key);
        Ok(())
    }

    fn location(&self, key: &str) -> Result<String, LakeError> {
        validate_key(key)?;
        Ok(format!("memory:///{key}"))
    }

    fn describe(&self) -> String {
        "in-memory lake".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::LocalLake;

    /// The contract every lake keeps, run on the in-memory one and the local folder alike.
    async fn keeps_the_lake_contract(lake: Arc<dyn Lake>) {
        let name = lake.describe();
        lake.put("a/run=1/x", Bytes::from_static(b"one"))
            .await
            .unwrap();
        lake.put("a/run=1/y", Bytes::from_static(b"two"))
            .await
            .unwrap();
        lake.put("a/run=2/x", Bytes::from_static(b"three"))
            .await
            .unwrap();
        lake.put("a/run=1/x", Bytes::from_static(b"uno"))
            .await
            .unwrap();
        assert_eq!(&lake.get("a/run=1/x").await.unwrap()[..], b"uno", "{name}");
        assert_eq!(lake.size("a/run=2/x").await.unwrap(), Some(5), "{name}");
        assert_eq!(lake.size("nope").await.unwrap(), None, "{name}");
        assert_eq!(
            lake.list("a/run=1/").await.unwrap(),
            ["a/run=1/x", "a/run=1/y"],
            "{name}"
        );
        assert_eq!(lake.list("a/run=").await.unwrap().len(), 3, "{name}");
        lake.delete("a/run=1/x").await.unwrap();
        lake.delete("a/run=1/x").await.unwrap();
        assert!(
            matches!(lake.get("a/run=1/x").await, Err(LakeError::NotFound(_))),
            "{name}"
        );
        assert!(lake.get("../escape").await.is_err(), "{name}");

        // Compare-and-swap: create once, then only from the version read.
        let v1 = lake
            .put_if("state/p", Bytes::from_static(b"1"), &PutCondition::Absent)
            .await
            .unwrap();
        assert!(
            matches!(
                lake.put_if("state/p", Bytes::from_static(b"x"), &PutCondition::Absent)
                    .await,
                Err(LakeError::Conflict { .. })
            ),
            "{name}"
        );
        let v2 = lake
            .put_if(
                "state/p",
                Bytes::from_static(b"2"),
                &PutCondition::Matches(v1.clone()),
            )
            .await
            .unwrap();
        assert!(
            matches!(
                lake.put_if(
                    "state/p",
                    Bytes::from_static(b"3"),
                    &PutCondition::Matches(v1)
                )
                .await,
                Err(LakeError::Conflict { .. })
            ),
            "{name}"
        );
        assert_eq!(
            lake.get_versioned("state/p").await.unwrap().unwrap().1,
            v2,
            "{name}"
        );

        // Racing read-modify-write loops lose no increment.
        lake.put("state/n", Bytes::from_static(b"0")).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let lake = lake.clone();
                tokio::spawn(async move {
                    loop {
                        let (body, v) = lake.get_versioned("state/n").await.unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(&body).unwrap().parse().unwrap();
                        let next = Bytes::from((n + 1).to_string());
                        match lake
                            .put_if("state/n", next, &PutCondition::Matches(v))
                            .await
                        {
                            Ok(_) => break,
                            Err(LakeError::Conflict { .. }) => tokio::task::yield_now().await,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(&lake.get("state/n").await.unwrap()[..], b"8", "{name}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_memory_lake_keeps_the_contract() {
        keeps_the_lake_contract(Arc::new(MemoryLake::new())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_local_lake_keeps_the_same_contract() {
        let dir = tempfile::tempdir().unwrap();
        keeps_the_lake_contract(Arc::new(LocalLake::new(dir.path()))).await;
        // Writes leave no temporary file behind.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("a/run=1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["y"]);
    }
}
