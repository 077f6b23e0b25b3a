//! UDP tracker packets (BEP 15) and `udp://` tracker URLs: decoding never panics, what
//! decodes re-encodes to a packet that decodes to the same value, and a parsed URL's
//! host and port come from the URL.
#![no_main]

use bt_tracker::compact::Family;
use bt_tracker::udp::{parse_udp_url, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::decode(data) {
        assert_eq!(Request::decode(&req.encode()).ok(), Some(req));
    }
    for family in [Family::V4, Family::V6] {
        if let Ok(resp) = Response::decode(data, family) {
            // Error messages are decoded lossily, so compare after one round.
            let again = Response::decode(&resp.encode(), family).ok();
            assert_eq!(again, Some(resp));
        }
    }
    if let Ok(url) = std::str::from_utf8(data) {
        if let Ok((host, port)) = parse_udp_url(url) {
            assert!(!host.is_empty() && url.contains(&host), "{url}");
            assert!(url.contains(&port.to_string()), "{url}");
        }
    }
});
