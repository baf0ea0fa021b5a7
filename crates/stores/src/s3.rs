//! The lake on S3 (or an S3-compatible emulator such as LocalStack or moto).

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::{Lake, LakeError, PutCondition, Version, validate_key};

/// A lake in one S3 bucket, optionally under a key prefix. Build the client once per process
/// (Lambda cold start) and share it.
#[derive(Debug, Clone)]
pub struct S3Lake {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Lake {
    pub fn new(client: Client, bucket: impl Into<String>, prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        Self {
            client,
            bucket: bucket.into(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    /// A client from the standard AWS configuration chain. When `AWS_ENDPOINT_URL` (or
    /// `AWS_ENDPOINT_URL_S3`) names an emulator, path-style addressing is used, which
    /// emulators on 127.0.0.1 need.
    pub async fn from_env(bucket: &str, prefix: &str) -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let emulated = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(emulated)
            .build();
        Self::new(Client::from_conf(s3_config), bucket, prefix)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn full_key(&self, key: &str) -> Result<String, LakeError> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }
}

fn s3_error<E>(operation: &'static str, key: &str, err: SdkError<E, HttpResponse>) -> LakeError
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ResponseError(_) => true,
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or_default();
            matches!(
                code,
                "SlowDown"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "RequestTimeout"
                    | "Throttling"
            ) || e.raw().status().is_server_error()
        }
        _ => false,
    };
    let message = match &err {
        SdkError::ServiceError(e) => format!(
            "{}: {}",
            e.err().code().unwrap_or("error"),
            e.err().message().unwrap_or("")
        ),
        SdkError::DispatchFailure(_) => "could not reach the S3 endpoint".to_owned(),
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        other => format!("{other}"),
    };
    LakeError::S3 {
        operation,
        key: key.to_owned(),
        message,
        retryable,
    }
}

#[async_trait]
impl Lake for S3Lake {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), LakeError> {
        let full = self.full_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, LakeError> {
        match self.get_versioned(key).await? {
            Some((bytes, _)) => Ok(bytes),
            None => Err(LakeError::NotFound(key.to_owned())),
        }
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>, LakeError> {
        let full = self.full_key(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => return Ok(None),
            Err(e) => return Err(s3_error("GetObject", key, e)),
        };
        let etag = out
            .e_tag()
            .map(str::to_owned)
            .ok_or_else(|| LakeError::S3 {
                operation: "GetObject",
                key: key.to_owned(),
                message: "no ETag in the response: conditional writes are impossible".to_owned(),
                retryable: false,
            })?;
        let data = out.body.collect().await.map_err(|e| LakeError::S3 {
            operation: "GetObject",
            key: key.to_owned(),
            message: format!("reading body: {e}"),
            retryable: true,
        })?;
        Ok(Some((data.into_bytes(), Version(etag))))
    }

    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        condition: &PutCondition,
    ) -> Result<Version, LakeError> {
        let full = self.full_key(key)?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(ByteStream::from(body));
        let request = match condition {
            PutCondition::Absent => request.if_none_match("*"),
            PutCondition::Matches(Version(etag)) => request.if_match(etag),
        };
        match request.send().await {
            Ok(out) => Ok(Version(out.e_tag().unwrap_or_default().to_owned())),
            // 412: the condition failed; 409: a concurrent conditional write is in flight.
            Err(SdkError::ServiceError(e)) if matches!(e.raw().status().as_u16(), 409 | 412) => {
                Err(LakeError::Conflict {
                    key: key.to_owned(),
                })
            }
            Err(e) => Err(s3_error("PutObject", key, e)),
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, LakeError> {
        let full = self.full_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => Ok(None),
            Err(e) => Err(s3_error("HeadObject", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, LakeError> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_error("ListObjectsV2", prefix, e))?;
            for obj in page.contents() {
                if let Some(k) = obj.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push(k.to_owned());
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), LakeError> {
        let full = self.full_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| s3_error("DeleteObject", key, e))?;
        Ok(())
    }

    async fn delete_earlier_versions(&self, key: &str) -> Result<u64, LakeError> {
        let full = self.full_key(key)?;
        // (version id, is the latest, is a delete marker) of exactly this key.
        let mut versions: Vec<(String, bool, bool)> = Vec::new();
        let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let out = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(&full)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| s3_error("ListObjectVersions", key, e))?;
            for v in out.versions() {
                if v.key() == Some(full.as_str())
                    && let Some(id) = v.version_id()
                {
                    versions.push((id.to_owned(), v.is_latest().unwrap_or(false), false));
                }
            }
            for m in out.delete_markers() {
                if m.key() == Some(full.as_str())
                    && let Some(id) = m.version_id()
                {
                    versions.push((id.to_owned(), m.is_latest().unwrap_or(false), true));
                }
            }
            if out.is_truncated() != Some(true) {
                break;
            }
            key_marker = out.next_key_marker().map(str::to_owned);
            version_marker = out.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                break;
            }
        }
        // An unversioned bucket lists the one current object with the version id "null".
        let deleted_now = versions
            .iter()
            .any(|(_, latest, marker)| *latest && *marker);
        // Data versions first, delete markers last: removing a marker first would bring the
        // version under it back.
        versions.sort_by_key(|(_, _, marker)| *marker);
        let mut removed = 0;
        for (id, latest, _) in versions {
            if latest && !deleted_now {
                continue;
            }
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&full)
                .version_id(&id)
                .send()
                .await
                .map_err(|e| s3_error("DeleteObject", key, e))?;
            removed += 1;
        }
        Ok(removed)
    }

    fn location(&self, key: &str) -> Result<String, LakeError> {
        Ok(format!("s3://{}/{}", self.bucket, self.full_key(key)?))
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}
