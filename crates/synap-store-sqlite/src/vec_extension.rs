//! Registers the sqlite-vec extension (`vec_distance_cosine` and friends) with
//! every SQLite connection this process opens, so the nearest-neighbour query of
//! [`crate::vectors`] runs inside SQLite. This module holds the workspace's only
//! `unsafe` code: one call into SQLite's C API, made once.

#![allow(unsafe_code)]

use rusqlite::ffi;
use std::ffi::{c_char, c_int};
use std::sync::Once;

// The entry point the `sqlite-vec` crate compiles (with `SQLITE_CORE`, so it
// calls the SQLite that rusqlite bundles). The crate declares it as `fn()`;
// this is its real C signature, which SQLite's auto-extension hook expects.
unsafe extern "C" {
    fn sqlite3_vec_init(
        db: *mut ffi::sqlite3,
        error: *mut *mut c_char,
        api: *const ffi::sqlite3_api_routines,
    ) -> c_int;
}

static REGISTER: Once = Once::new();

/// Makes sqlite-vec load into every connection opened from now on. Idempotent.
pub(crate) fn register() {
    // Links the crate's static library, which defines `sqlite3_vec_init`.
    use ::sqlite_vec as _;
    REGISTER.call_once(|| {
        // SAFETY: `sqlite3_auto_extension` only stores the function pointer, and
        // `sqlite3_vec_init` has exactly the signature SQLite calls it with (see
        // sqlite-vec.c). Registration is process-wide and thread-safe in SQLite.
        let status = unsafe { ffi::sqlite3_auto_extension(Some(sqlite3_vec_init)) };
        debug_assert_eq!(status, ffi::SQLITE_OK, "sqlite-vec registers");
    });
}
