//! libFuzzer entry point; the checks are `reviews_fuzz_checks::readers` (crates/fuzzcheck), which
//! the test suite also runs over every input kept in fuzz/corpus/readers/.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reviews_fuzz_checks::readers::check(data));
