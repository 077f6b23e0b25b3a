//! The Transmission RPC request parser (`bt_daemon::trpc::request`) on arbitrary bytes:
//! never panics; a request that parses has its `ids` and typed arguments read without
//! panicking, and an `ids` it accepts names at least one torrent or all of them.
#![no_main]

use bt_daemon::trpc::request::{self, Selector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = request::parse(data) else {
        return;
    };
    let a = &req.arguments;
    if let Ok(Selector::Some(refs)) = request::selector(a) {
        assert_eq!(
            refs.len(),
            a["ids"].as_array().map_or(1, Vec::len),
            "every id is kept"
        );
    }
    let _ = request::opt_indices(a, "files-wanted");
    let _ = request::opt_strings(a, "fields");
    let _ = request::opt_bool(a, "paused");
    let _ = request::opt_i64(a, "downloadLimit");
    let _ = request::opt_f64(a, "seedRatioLimit");
    let _ = request::opt_str(a, "filename");
});
