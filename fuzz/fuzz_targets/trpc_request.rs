//! The Transmission RPC request parser (`bt_daemon::trpc::request`) on arbitrary bytes:
//! never panics; a request that parses has its `ids`, typed arguments and tracker edits
//! read (and the edits applied) without panicking, an `ids` it accepts keeps every id, and
//! tracker edits never leave an empty tier.
#![no_main]

use bt_daemon::trpc::request::{self, Selector};
use bt_daemon::trpc::trackers::TrackerEdits;
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
    if let Ok(edits) = TrackerEdits::read(a) {
        let mut tiers = vec![vec!["http://127.0.0.1:1/announce".to_string()]];
        let _ = edits.apply(&mut tiers);
        assert!(tiers.iter().all(|t| !t.is_empty()), "no empty tier is kept");
    }
});
