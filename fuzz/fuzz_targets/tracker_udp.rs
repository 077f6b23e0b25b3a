//! UDP tracker packets (BEP 15): decoding never panics, and what decodes
//! re-encodes to a packet that decodes to the same value.
#![no_main]

use bt_tracker::compact::Family;
use bt_tracker::udp::{Request, Response};
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
});
