//! The lake's format and state, over the lake port ([`Lake`], in `reviews-ports`): the run
//! layout, Parquet read/write with explicit writer properties, the curated manifest, and the
//! state documents a commit moves (pointer, snapshots, lease, watermark, erased list, run
//! records). The stores that implement the port (a local folder, S3, memory) are in
//! `reviews-stores`: nothing here talks to a concrete service.

pub mod layout;
pub mod manifest;
pub mod parquet_io;
pub mod state;

pub use layout::RunId;
pub use manifest::Manifest;
pub use reviews_ports::lake::{Lake, LakeError, PutCondition, Version, validate_key};
