//! `ResumeState::decode` (bt-engine's resume file) on arbitrary bytes: never a panic;
//! what decodes has one flag per piece the file claims, matches its own file stamps, and
//! encodes to bytes that decode to the same state (and encode to the very same bytes
//! again, so the encoding is canonical).
#![no_main]

use bt_engine::resume::ResumeState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = ResumeState::decode(data) else {
        return;
    };
    assert!(state.pieces.len() <= 8 * data.len());
    assert!(state.files.len() <= data.len());
    assert!(state.matches_files(&state.files));
    let bytes = state.encode();
    let again = ResumeState::decode(&bytes).expect("an encoded state decodes");
    assert_eq!(again, state);
    assert_eq!(again.encode(), bytes);
});
