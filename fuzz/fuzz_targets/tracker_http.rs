//! HTTP tracker bodies and the built-in tracker's request parsing: never a panic,
//! and a parsed announce response survives an encode/parse round trip.
#![no_main]

use bt_tracker::{http, httpd};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = http::parse_announce(data) {
        // Dictionary form keeps every peer and id; compact drops ids.
        let again = http::parse_announce(&http::encode_announce(&resp, false));
        assert_eq!(again.ok().map(|r| r.peers.len()), Some(resp.peers.len()));
    }
    let _ = http::parse_scrape(data);
    let _ = httpd::parse_request_line(data);
    let _ = httpd::parse_announce_query(data);
    let _ = httpd::parse_scrape_query(data);
});
