//! The invariants the fuzz targets check (fuzz/, `scripts/fuzz.sh`), as plain functions: the
//! libFuzzer entry points call them, and `tests/replay.rs` runs every kept input of
//! fuzz/corpus/ through them in the ordinary test suite, so a regression of a past crash fails
//! the tests without a fuzzer.

pub mod cleaning;
pub mod http;
pub mod readers;
