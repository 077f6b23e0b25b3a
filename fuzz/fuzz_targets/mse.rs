//! The MSE/PE handshake (`bt_wire::mse`) on both sides, fed arbitrary bytes in two chunks
//! split where the input's first byte says.
//!
//! Checks: no panic; random bytes never complete a handshake (they would have to contain
//! a SHA-1 preimage or an RC4-encrypted verification constant); once the bytes run past the
//! longest padding the result is an error; after an error every call is `Finished`.
#![no_main]

use bt_wire::mse::{Cipher, CipherSet, MseError, MseHandshake, KEY_LEN, MAX_PAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split) * rest.len() / 256;
    for mut hs in [
        MseHandshake::responder(CipherSet::BOTH, Cipher::Plaintext),
        MseHandshake::responder(CipherSet::RC4, Cipher::Rc4),
        MseHandshake::initiator([7; 20], CipherSet::BOTH, b"initial".to_vec()),
    ] {
        let lookup = |_: &[u8; 20]| Some([7u8; 20]);
        let r = match hs.receive(&rest[..split], lookup) {
            Ok(None) => hs.receive(&rest[split..], lookup),
            other => other,
        };
        assert!(!matches!(r, Ok(Some(_))), "random bytes completed a handshake");
        if rest.len() >= KEY_LEN + MAX_PAD + 20 + 20 + 14 + MAX_PAD + 2 + 4096 {
            assert!(r.is_err());
        }
        if r.is_err() {
            assert_eq!(hs.receive(b"x", lookup).unwrap_err(), MseError::Finished);
        }
        let _ = hs.take_output();
    }
});
