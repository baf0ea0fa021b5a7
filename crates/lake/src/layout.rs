//! The lake layout (docs/ARCHITECTURE.md section 3): where each dataset of a run lives.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A run id: date + execution name, e.g. `2026-11-29-daily`. Restricted to characters that are
/// safe in object keys and file names: ASCII letters, digits, `-`, `_`, `.` (1 to 128).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !s.starts_with('.');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "invalid run id {s:?}: use 1-128 ASCII letters, digits, '-', '_' or '.'"
            ))
        }
    }

    /// `<date>-<name>`, the run id of an execution named `name` that started on `date`.
    pub fn for_execution(date: chrono::NaiveDate, name: &str) -> Result<Self, String> {
        let cleaned: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(100)
            .collect();
        Self::parse(&format!("{date}-{cleaned}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RunId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<RunId> for String {
    fn from(r: RunId) -> String {
        r.0
    }
}

/// A string of the characters [`RunId::parse`] accepts (its schema for the stage payloads).
impl schemars::JsonSchema for RunId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RunId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"})
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub const RAW: &str = "raw";
pub const CLEANED: &str = "cleaned";
pub const REJECTS: &str = "rejects";
pub const CURATED: &str = "curated";

/// The pointer to the live curated dataset: the lake's commit point, which also carries the
/// watermark of the next incremental extract (see [`crate::state`]).
pub const LATEST_MANIFEST: &str = "curated/_latest.json";

/// The folder of one dataset of one run: `cleaned/run=<id>/`.
pub fn run_prefix(dataset: &str, run: &RunId) -> String {
    format!("{dataset}/run={run}/")
}

pub fn raw_key(run: &RunId, part: usize) -> String {
    format!("{}part-{part:05}.parquet", run_prefix(RAW, run))
}

/// Product buckets: cleaned/ and curated/ are split by a hash of the product id into a fixed
/// number of buckets (the count is configuration, recorded in every snapshot), so a run
/// rewrites only the buckets its changes fall into.
pub const DEFAULT_BUCKETS: u32 = 64;
/// More buckets than this would make listings and the Map's item list unwieldy.
pub const MAX_BUCKETS: u32 = 4096;

/// The bucket of a product: FNV-1a (64 bit) of the product id's bytes, modulo `buckets`.
/// Fixed here for good: changing it would move every product to another bucket.
pub fn bucket_of(product_id: &str, buckets: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in product_id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(buckets.max(1))) as u32
}

/// The valid rows of raw part `part` that fall into `bucket`:
/// `cleaned/run=<id>/changes/bucket=<b>/part-<p>.parquet`.
pub fn change_key(run: &RunId, bucket: u32, part: usize) -> String {
    format!(
        "{}changes/bucket={bucket:05}/part-{part:05}.parquet",
        run_prefix(CLEANED, run)
    )
}

/// A base snapshot's rows moved to this run's bucket count (a re-bucketing):
/// `cleaned/run=<id>/base/bucket=<b>.parquet`.
pub fn rebased_key(run: &RunId, bucket: u32) -> String {
    format!(
        "{}base/bucket={bucket:05}.parquet",
        run_prefix(CLEANED, run)
    )
}

/// Every cleaned row of one bucket after the run: `cleaned/run=<id>/bucket=<b>.parquet`.
pub fn cleaned_bucket_key(run: &RunId, bucket: u32) -> String {
    format!("{}bucket={bucket:05}.parquet", run_prefix(CLEANED, run))
}

/// One bucket's curated rows: `curated/run=<id>/bucket=<b>.parquet`.
pub fn curated_bucket_key(run: &RunId, bucket: u32) -> String {
    format!("{}bucket={bucket:05}.parquet", run_prefix(CURATED, run))
}

/// One bucket's product directory: `curated/run=<id>/bucket=<b>.products.json`.
pub fn directory_bucket_key(run: &RunId, bucket: u32) -> String {
    format!(
        "{}bucket={bucket:05}.products.json",
        run_prefix(CURATED, run)
    )
}

/// The rejects of one raw part: `rejects/run=<id>/part-<p>.csv`.
pub fn part_rejects_key(run: &RunId, part: usize) -> String {
    format!("{}part-{part:05}.csv", run_prefix(REJECTS, run))
}

/// The manifest of one curated run, kept beside its parts so rollback is one pointer copy.
pub fn run_manifest_key(run: &RunId) -> String {
    format!("{}_manifest.json", run_prefix(CURATED, run))
}

/// The run summary (counts, timings) of a run.
pub fn summary_key(run: &RunId) -> String {
    format!("state/runs/run={run}/summary.json")
}

/// Parse the run id out of a key such as `cleaned/run=<id>/part-00000.parquet`.
pub fn run_of_key(key: &str) -> Option<RunId> {
    let seg = key.split('/').find_map(|s| s.strip_prefix("run="))?;
    RunId::parse(seg).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids() {
        assert!(RunId::parse("2026-11-29-daily").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "sp ace", &"x".repeat(129)] {
            assert!(RunId::parse(bad).is_err(), "{bad:?}");
        }
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(
            RunId::for_execution(d, "exec:1/2").unwrap().as_str(),
            "2026-11-29-exec-1-2"
        );
    }

    #[test]
    fn keys() {
        let r = RunId::parse("r1").unwrap();
        assert_eq!(part_rejects_key(&r, 3), "rejects/run=r1/part-00003.csv");
        assert_eq!(run_of_key(&curated_bucket_key(&r, 0)), Some(r.clone()));
        assert_eq!(run_of_key("curated/_latest.json"), None);
        assert_eq!(
            change_key(&r, 7, 2),
            "cleaned/run=r1/changes/bucket=00007/part-00002.parquet"
        );
        assert_eq!(
            curated_bucket_key(&r, 1),
            "curated/run=r1/bucket=00001.parquet"
        );
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        // Fixed values: a change of the hash would silently move every product.
        assert_eq!(bucket_of("", 64), (0xcbf2_9ce4_8422_2325u64 % 64) as u32);
        assert_eq!(bucket_of("B00001", 1), 0);
        let mut seen = [0u32; 16];
        for i in 0..16_000 {
            seen[bucket_of(&format!("P{i:06}"), 16) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (700..1300).contains(&n)), "{seen:?}");
    }
}
