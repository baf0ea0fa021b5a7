//! Allocator settings for the batch commands.

use std::ffi::{c_int, c_long};

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (the version libmimalloc-sys
/// builds by default); the test below checks that the index still names it.
const MI_OPTION_PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    #[cfg(test)]
    fn mi_option_get(option: c_int) -> c_long;
}

/// Keep freed memory instead of handing it back to the kernel. A pipeline run frees and
/// re-allocates hundreds of MiB per raw part; with mimalloc's default purge, the kernel
/// zeroed those pages again on every fault (`clear_page_erms`, a fifth of the transform in
/// perf; `reviews bench` ran about a tenth faster without purging). Resident memory then
/// stays at the run's peak until the process exits, which a batch command does anyway;
/// `reviews serve` keeps the default, so that its memory follows its cache.
pub fn keep_freed_memory() {
    // SAFETY: mimalloc's options are process-global atomics, safe to set at any time.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_index_names_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the environment overrides the default this test recognises it by
        }
        // SAFETY: reading a process-global option.
        let default = unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) };
        // v3's documented default purge delay; its neighbours default to 1 and 0.
        assert_eq!(
            default, 1000,
            "option {MI_OPTION_PURGE_DELAY} is not the purge delay"
        );
    }
}
