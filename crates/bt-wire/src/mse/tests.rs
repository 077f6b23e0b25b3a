use super::*;
use proptest::prelude::*;

const SKEY: [u8; 20] = [7; 20];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[test]
fn rc4_matches_published_vectors() {
    for (key, plain, cipher) in [
        ("Key", "Plaintext", "BBF316E8D940AF0AD3"),
        ("Wiki", "pedia", "1021BF0420"),
        ("Secret", "Attack at dawn", "45A01F645FC35B383552544B9BF5"),
    ] {
        let mut data = plain.as_bytes().to_vec();
        Rc4::new(key.as_bytes()).apply(&mut data);
        assert_eq!(hex(&data), cipher, "key {key:?}");
    }
}

fn serves(req2: &[u8; 20]) -> Option<[u8; 20]> {
    (*req2 == hash(&[b"req2", &SKEY])).then_some(SKEY)
}

/// Runs both sides against each other, delivering bytes in chunks of `chunk` (0: all at
/// once). Returns (initiator result, responder result).
fn exchange(
    mut a: MseHandshake,
    mut b: MseHandshake,
    chunk: usize,
    a_extra: &[u8],
) -> (Result<Established, MseError>, Result<Established, MseError>) {
    let (mut a_done, mut b_done) = (None, None);
    let (mut to_b, mut to_a) = (Vec::new(), Vec::new());
    for _ in 0..10_000 {
        to_b.extend(a.take_output());
        to_a.extend(b.take_output());
        if a_done.is_some() && b_done.is_some() {
            break;
        }
        let step = |buf: &mut Vec<u8>| -> Vec<u8> {
            let n = if chunk == 0 {
                buf.len()
            } else {
                chunk.min(buf.len())
            };
            buf.drain(..n).collect()
        };
        if b_done.is_none() && !to_b.is_empty() {
            let data = step(&mut to_b);
            match b.receive(&data, serves) {
                Ok(Some(est)) => {
                    b_done = Some(Ok(est));
                    to_b.extend_from_slice(a_extra);
                }
                Ok(None) => {}
                Err(e) => b_done = Some(Err(e)),
            }
        } else if a_done.is_none() && !to_a.is_empty() {
            let data = step(&mut to_a);
            match a.receive(&data, |_| None) {
                Ok(Some(est)) => a_done = Some(Ok(est)),
                Ok(None) => {}
                Err(e) => a_done = Some(Err(e)),
            }
        } else if let (Some(Err(_)), _) | (_, Some(Err(_))) = (&a_done, &b_done) {
            break;
        } else if to_a.is_empty() && to_b.is_empty() {
            break;
        }
    }
    (
        a_done.unwrap_or(Err(MseError::Finished)),
        b_done.unwrap_or(Err(MseError::Finished)),
    )
}

fn check_pair(a: &mut Established, b: &mut Established) {
    assert_eq!(a.cipher, b.cipher);
    assert_eq!(a.skey, SKEY);
    assert_eq!(b.skey, SKEY);
    one_way(a, b);
    one_way(b, a);
}

fn one_way(from: &mut Established, to: &mut Established) {
    let mut msg = b"a message after the handshake".to_vec();
    if let Some(rc4) = from.encrypt.as_mut() {
        rc4.apply(&mut msg);
    }
    if from.cipher == Cipher::Rc4 {
        assert_ne!(&msg[..], b"a message after the handshake");
    }
    if let Some(rc4) = to.decrypt.as_mut() {
        rc4.apply(&mut msg);
    }
    assert_eq!(&msg[..], b"a message after the handshake");
}

#[test]
fn both_ciphers_negotiate_as_asked() {
    let cases = [
        (
            CipherSet::BOTH,
            CipherSet::BOTH,
            Cipher::Plaintext,
            Cipher::Plaintext,
        ),
        (CipherSet::BOTH, CipherSet::BOTH, Cipher::Rc4, Cipher::Rc4),
        (
            CipherSet::RC4,
            CipherSet::BOTH,
            Cipher::Plaintext,
            Cipher::Rc4,
        ),
        (
            CipherSet::BOTH,
            CipherSet::RC4,
            Cipher::Plaintext,
            Cipher::Rc4,
        ),
        (
            CipherSet::PLAINTEXT,
            CipherSet::BOTH,
            Cipher::Rc4,
            Cipher::Plaintext,
        ),
    ];
    for (offer, allow, prefer, want) in cases {
        let ia = b"\x13BitTorrent protocol and the rest".to_vec();
        let a = MseHandshake::initiator(SKEY, offer, ia.clone());
        let b = MseHandshake::responder(allow, prefer);
        let (a, b) = exchange(a, b, 0, &[]);
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        assert_eq!(
            a.cipher, want,
            "offer {offer:?} allow {allow:?} prefer {prefer:?}"
        );
        assert_eq!(b.payload, ia);
        assert!(a.payload.is_empty());
        check_pair(&mut a, &mut b);
    }
}

#[test]
fn bytes_behind_the_answer_are_payload() {
    // The responder's stream bytes after its answer reach the initiator decrypted.
    let a = MseHandshake::initiator(SKEY, CipherSet::RC4, b"hi".to_vec());
    let mut b = MseHandshake::responder(CipherSet::BOTH, Cipher::Plaintext);
    let mut a = a;
    let out_a = a.take_output();
    assert!(b.receive(&out_a, serves).unwrap().is_none());
    let out_b = b.take_output();
    assert!(a.receive(&out_b, |_| None).unwrap().is_none());
    let step3 = a.take_output();
    let mut est_b = b.receive(&step3, serves).unwrap().unwrap();
    let mut answer = b.take_output();
    let mut behind = b"bitfield".to_vec();
    est_b.encrypt.as_mut().unwrap().apply(&mut behind);
    answer.extend_from_slice(&behind);
    let est_a = a.receive(&answer, |_| None).unwrap().unwrap();
    assert_eq!(est_a.payload, b"bitfield");
    assert_eq!(est_b.payload, b"hi");
    assert_eq!(a.receive(b"", |_| None).unwrap_err(), MseError::Finished);
}

#[test]
fn unknown_torrent_and_no_common_cipher_are_errors() {
    let a = MseHandshake::initiator([9; 20], CipherSet::BOTH, Vec::new());
    let b = MseHandshake::responder(CipherSet::BOTH, Cipher::Plaintext);
    let (_, b) = exchange(a, b, 0, &[]);
    assert!(matches!(b, Err(MseError::UnknownTorrent { .. })), "{b:?}");

    let a = MseHandshake::initiator(SKEY, CipherSet::PLAINTEXT, Vec::new());
    let b = MseHandshake::responder(CipherSet::RC4, Cipher::Rc4);
    let (_, b) = exchange(a, b, 0, &[]);
    let err = b.unwrap_err();
    assert_eq!(
        err,
        MseError::NoCommonCipher {
            offered: 1,
            allowed: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "mse: peer offers ciphers 0x1, we allow 0x2"
    );
}

#[test]
fn degenerate_keys_are_refused() {
    for key in [
        [0u8; KEY_LEN],
        {
            let mut one = [0u8; KEY_LEN];
            one[KEY_LEN - 1] = 1;
            one
        },
        [0xff; KEY_LEN],
    ] {
        let mut b = MseHandshake::responder(CipherSet::BOTH, Cipher::Plaintext);
        assert_eq!(b.receive(&key, serves).unwrap_err(), MseError::BadPublicKey);
    }
}

#[test]
fn plaintext_handshake_bytes_never_sync() {
    // A plaintext BitTorrent handshake followed by a lot of data: no sync, a bounded error.
    let mut b = MseHandshake::responder(CipherSet::BOTH, Cipher::Plaintext);
    let mut data = vec![19u8];
    data.extend_from_slice(b"BitTorrent protocol");
    data.resize(2000, 0xab);
    // The first 96 bytes are taken as a key; 0xab.. is in range.
    let err = b.receive(&data, serves).unwrap_err();
    assert_eq!(
        err,
        MseError::NoSync {
            what: "req1 hash",
            offset: 96,
            searched: MAX_PAD
        }
    );
    assert_eq!(
        err.to_string(),
        "mse: no req1 hash within 512 bytes after byte 96"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_chunking_gives_the_same_result(chunk in 1usize..300, rc4 in any::<bool>(), extra in proptest::collection::vec(any::<u8>(), 0..64)) {
        let prefer = if rc4 { Cipher::Rc4 } else { Cipher::Plaintext };
        let a = MseHandshake::initiator(SKEY, CipherSet::BOTH, b"IA".to_vec());
        let b = MseHandshake::responder(CipherSet::BOTH, prefer);
        let (a, b) = exchange(a, b, chunk, &extra);
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        prop_assert_eq!(a.cipher, prefer);
        prop_assert_eq!(&b.payload[..], b"IA");
        check_pair(&mut a, &mut b);
    }

    #[test]
    fn garbage_gives_an_error_or_waits(data in proptest::collection::vec(any::<u8>(), 0..2000), split in 0usize..2000) {
        for mut hs in [
            MseHandshake::responder(CipherSet::BOTH, Cipher::Plaintext),
            MseHandshake::initiator(SKEY, CipherSet::BOTH, Vec::new()),
        ] {
            let split = split.min(data.len());
            let first = hs.receive(&data[..split], serves);
            let r = match first {
                Ok(None) => hs.receive(&data[split..], serves),
                other => other,
            };
            // Random bytes never complete a handshake.
            prop_assert!(!matches!(r, Ok(Some(_))));
            if data.len() >= KEY_LEN + MAX_PAD + 20 {
                prop_assert!(r.is_err());
            }
        }
    }
}
