//! The embedded default: a lake in a local folder. Writes go to a hidden temporary file in the
//! same folder and are renamed into place, so a crash never leaves a partial object. A
//! conditional write holds an exclusive lock on a hidden per-key lock file while it compares
//! and renames, so two processes sharing the folder cannot both win.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use sha2::{Digest, Sha256};

use crate::{Lake, LakeError, PutCondition, Version, validate_key};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone)]
pub struct LocalLake {
    root: PathBuf,
}

impl LocalLake {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, LakeError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

/// The local lake's version of an object: a digest of its bytes.
pub(crate) fn version_of(bytes: &[u8]) -> Version {
    Version(hex::encode(&Sha256::digest(bytes)[..16]))
}

/// Whether a conditional write may replace `current` (the object's bytes, `None`: absent), on
/// a store whose versions are [`version_of`] the content.
pub(crate) fn condition_holds(condition: &PutCondition, current: Option<&[u8]>) -> bool {
    match (condition, current) {
        (PutCondition::Absent, None) => true,
        (PutCondition::Matches(v), Some(bytes)) => version_of(bytes) == *v,
        _ => false,
    }
}

/// Write `body` to a hidden temporary file beside `path`, then rename it into place.
fn write_atomically(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().expect("a key has a parent");
    let name = path
        .file_name()
        .expect("a key has a name")
        .to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(dir)?;
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn read_optional(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn io(key: &str) -> impl FnOnce(std::io::Error) -> LakeError + '_ {
    move |source| LakeError::Io {
        key: key.to_owned(),
        source,
    }
}

#[async_trait]
impl Lake for LocalLake {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), LakeError> {
        let path = self.path(key)?;
        let key_owned = key.to_owned();
        tokio::task::spawn_blocking(move || write_atomically(&path, &body).map_err(io(&key_owned)))
            .await
            .expect("put task panicked")
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>, LakeError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(v) => {
                let version = version_of(&v);
                Ok(Some((Bytes::from(v), version)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(key)(e)),
        }
    }

    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        condition: &PutCondition,
    ) -> Result<Version, LakeError> {
        let path = self.path(key)?;
        let key_owned = key.to_owned();
        let condition = condition.clone();
        tokio::task::spawn_blocking(move || {
            let key = key_owned.as_str();
            let dir = path.parent().expect("a key has a parent");
            let name = path
                .file_name()
                .expect("a key has a name")
                .to_string_lossy();
            std::fs::create_dir_all(dir).map_err(io(key))?;
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(format!(".{name}.lock")))
                .map_err(io(key))?;
            // Held until `lock` drops: compare and rename happen as one step.
            lock.lock().map_err(io(key))?;
            let current = read_optional(&path).map_err(io(key))?;
            if !condition_holds(&condition, current.as_deref()) {
                return Err(LakeError::Conflict {
                    key: key.to_owned(),
                });
            }
            write_atomically(&path, &body).map_err(io(key))?;
            Ok(version_of(&body))
        })
        .await
        .expect("put_if task panicked")
    }

    async fn get(&self, key: &str) -> Result<Bytes, LakeError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(v) => Ok(Bytes::from(v)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(LakeError::NotFound(key.to_owned()))
            }
            Err(e) => Err(io(key)(e)),
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, LakeError> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(key)(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, LakeError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            // Walk only the folder that can hold the prefix, then filter by the full prefix.
            let dir_part = prefix.rsplit_once('/').map_or("", |(d, _)| d);
            let start = if dir_part.is_empty() {
                root.clone()
            } else {
                root.join(dir_part)
            };
            let mut keys = Vec::new();
            let mut stack = vec![start];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(&prefix)(e)),
                };
                for entry in entries {
                    let entry = entry.map_err(io(&prefix))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue; // temporary files of writes in flight
                    }
                    let path = entry.path();
                    if entry.file_type().map_err(io(&prefix))?.is_dir() {
                        stack.push(path);
                    } else if let Ok(rel) = path.strip_prefix(&root) {
                        let key = rel.to_string_lossy().replace('\\', "/");
                        if key.starts_with(&prefix) {
                            keys.push(key);
                        }
                    }
                }
            }
            keys.sort();
            Ok(keys)
        })
        .await
        .expect("list task panicked")
    }

    async fn delete(&self, key: &str) -> Result<(), LakeError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(key)(e)),
        }
    }

    fn location(&self, key: &str) -> Result<String, LakeError> {
        let path = std::path::absolute(self.path(key)?).map_err(io(key))?;
        path.into_os_string()
            .into_string()
            .map_err(|_| LakeError::InvalidKey {
                key: key.to_owned(),
                why: "the lake folder's path is not valid UTF-8",
            })
    }

    fn describe(&self) -> String {
        format!("local folder {}", self.root.display())
    }
}
