//! `Magnet::parse` on arbitrary text: never panics, and what it accepts formats to a
//! link that parses back to the same value.
#![no_main]

use bt_meta::Magnet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = Magnet::parse(text) {
        let uri = m.to_uri();
        let again = Magnet::parse(&uri).expect("a formatted link parses");
        assert_eq!(again, m, "{uri}");
    }
});
