//! HTTP tracker bodies and the built-in tracker's request parsing: never a panic, and
//! what parses survives a round trip through the matching encoder:
//!
//! - announce and scrape response bodies (client side): parsed, encoded, parsed again;
//! - request heads and query strings (server side): a parsed announce query rebuilt with
//!   the client's `announce_url` parses back to the same request, likewise a scrape
//!   query through `scrape_url_for`; the query of a parsed request line goes through the
//!   same parsers, as the server does.
#![no_main]

use bt_tracker::{http, httpd};
use libfuzzer_sys::fuzz_target;

const TRACKER: &str = "http://127.0.0.1:6969/announce";

/// The query string of a URL the client built.
fn query(url: &str) -> &[u8] {
    url.split_once('?').map_or(&b""[..], |(_, q)| q.as_bytes())
}

fn queries(q: &[u8]) {
    if let Some(v) = httpd::percent_decode(q) {
        assert!(v.len() <= q.len());
    }
    if let Ok((req, _compact)) = httpd::parse_announce_query(q) {
        let url = http::announce_url(TRACKER, &req);
        let (again, compact) = httpd::parse_announce_query(query(&url)).expect("our url parses");
        assert_eq!(again, req, "{url}");
        assert!(compact);
    }
    if let Ok(hashes) = httpd::parse_scrape_query(q) {
        let url = http::scrape_url_for(TRACKER, &hashes).expect("announce has a scrape");
        let again = httpd::parse_scrape_query(query(&url)).expect("our url parses");
        assert_eq!(again, hashes, "{url}");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = http::parse_announce(data) {
        // Dictionary form keeps every peer and id; compact drops ids.
        let again = http::parse_announce(&http::encode_announce(&resp, false));
        assert_eq!(again.ok().map(|r| r.peers.len()), Some(resp.peers.len()));
    }
    if let Ok(files) = http::parse_scrape(data) {
        let again =
            http::parse_scrape(&http::encode_scrape(&files)).expect("encoded scrape parses");
        assert_eq!(again, files);
    }

    if let Some(end) = httpd::head_end(data) {
        assert!(end <= data.len());
    }
    if let Some(line) = httpd::parse_request_line(data) {
        queries(line.query);
    }
    queries(data);
});
