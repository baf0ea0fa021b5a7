//! libFuzzer entry point; the checks are `reviews_fuzz_checks::cleaning` (crates/fuzzcheck), which
//! the test suite also runs over every input kept in fuzz/corpus/cleaning/.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reviews_fuzz_checks::cleaning::check(data));
