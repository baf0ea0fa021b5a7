//! The query listing: `curated/_athena/symlink.txt` names, one absolute location a line, the
//! curated files of the live snapshot (Hive's `SymlinkTextInputFormat`), so that Athena's
//! table over `curated/_athena/` and a local DuckDB query read exactly what the API serves.
//! A live snapshot's files sit under several `curated/run=<id>/` prefixes (an unchanged bucket
//! keeps the file of the run that last wrote it), so no prefix alone can be the table.
//!
//! Publish writes it after its commit, and again when it finds its run already live (a publish
//! that died between the two is repaired by its re-run); rollback writes it after its commit.

use reviews_lake::{Lake, LakeError, Manifest, state};

/// The listing's key. The only object under `curated/_athena/`: Athena reads every object of
/// the table's location as a listing.
pub const SYMLINK_KEY: &str = "curated/_athena/symlink.txt";

/// The listing of `manifest`: its curated files' locations, in bucket order, one a line.
pub fn symlink_listing(lake: &dyn Lake, manifest: &Manifest) -> Result<String, LakeError> {
    let mut out = String::new();
    for key in &manifest.keys {
        let location = lake.location(key)?;
        if location.contains(['\n', '\r']) {
            return Err(LakeError::InvalidKey {
                key: key.clone(),
                why: "its location has a line break: it cannot be listed",
            });
        }
        out.push_str(&location);
        out.push('\n');
    }
    Ok(out)
}

/// Write the listing of the snapshot live now (read again here, so that of two late writers
/// the last one still lists the newest commit). Returns the live manifest, `None` when
/// nothing is live (no listing then).
pub async fn write_symlink_listing(lake: &dyn Lake) -> Result<Option<Manifest>, LakeError> {
    let Some((live, _)) = state::read_pointer(lake).await? else {
        return Ok(None);
    };
    let listing = symlink_listing(lake, &live)?;
    lake.put(SYMLINK_KEY, listing.into()).await?;
    Ok(Some(live))
}
