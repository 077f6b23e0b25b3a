//! bt-dht's saved-nodes file (`nodes_file::decode`) on arbitrary bytes: never a panic;
//! what decodes holds no more nodes than the bytes can carry and encodes to a file that
//! decodes to the same nodes.
#![no_main]

use std::path::Path;

use bt_dht::nodes_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("dht.nodes");
    match nodes_file::decode(data, path) {
        Ok(nodes) => {
            assert!(nodes.len() * 26 <= data.len());
            let bytes = nodes_file::encode(&nodes);
            let again = nodes_file::decode(&bytes, path).expect("an encoded file decodes");
            assert_eq!(again, nodes);
        }
        Err(e) => assert!(e.to_string().contains("dht.nodes"), "{e}"),
    }
});
