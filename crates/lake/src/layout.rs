//! The lake layout (DESIGN section 2): where each dataset of a run lives.

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

pub fn cleaned_key(run: &RunId, part: usize) -> String {
    format!("{}part-{part:05}.parquet", run_prefix(CLEANED, run))
}

pub fn rejects_key(run: &RunId) -> String {
    format!("{}rejects.csv", run_prefix(REJECTS, run))
}

pub fn curated_key(run: &RunId, part: usize) -> String {
    format!("{}part-{part:05}.parquet", run_prefix(CURATED, run))
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
        assert_eq!(cleaned_key(&r, 3), "cleaned/run=r1/part-00003.parquet");
        assert_eq!(rejects_key(&r), "rejects/run=r1/rejects.csv");
        assert_eq!(run_of_key(&curated_key(&r, 0)), Some(r));
        assert_eq!(run_of_key("curated/_latest.json"), None);
    }
}
