//! Message stream encryption (MSE, also called PE): the obfuscated handshake that
//! libtorrent, Transmission and qBittorrent try before (or instead of) a plaintext one, and
//! the RC4 cipher it may negotiate for the rest of the connection.
//!
//! The exchange, with `A` the side that dialled:
//!
//! ```text
//! A -> B  Ya, PadA
//! B -> A  Yb, PadB
//! A -> B  HASH("req1", S), HASH("req2", SKEY) ^ HASH("req3", S),
//!         RC4a(VC, crypto_provide, len(PadC), PadC, len(IA)), RC4a(IA)
//! B -> A  RC4b(VC, crypto_select, len(PadD), PadD), then the stream in the chosen cipher
//! ```
//!
//! `Y` are 768-bit Diffie-Hellman public keys, `S` the shared secret, `SKEY` the torrent's
//! info-hash, `VC` eight zero bytes, `IA` the initial payload (our BitTorrent handshake),
//! and RC4 is keyed with `HASH("keyA" | "keyB", S, SKEY)` with its first 1024 bytes
//! discarded.
//!
//! [`MseHandshake`] is sans-I/O: feed it what arrives with [`MseHandshake::receive`], send
//! what [`MseHandshake::take_output`] gives, until `receive` returns [`Established`]. Its
//! input buffer never holds more than one pad, key and header beyond what the caller
//! passes in at once, and every length field is checked against its limit before use.

use num_bigint::BigUint;
use rand::{Rng, RngCore};
use sha1::{Digest, Sha1};

/// Length of a Diffie-Hellman public key on the wire (768 bits).
pub const KEY_LEN: usize = 96;
/// Longest padding either side may send.
pub const MAX_PAD: usize = 512;
/// Longest initial payload (IA) accepted from the dialling side.
pub const MAX_INITIAL_PAYLOAD: usize = 4096;
/// The verification constant: eight zero bytes.
const VC: [u8; 8] = [0; 8];
/// Bytes of RC4 keystream thrown away before use.
const RC4_DISCARD: usize = 1024;
/// The 768-bit safe prime of the key exchange; the generator is 2.
const PRIME_HEX: &[u8] = b"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563";

/// A stream cipher MSE can negotiate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    /// After the handshake the stream is sent as is.
    Plaintext,
    /// The stream is RC4-encrypted in each direction.
    Rc4,
}

impl Cipher {
    fn bit(self) -> u32 {
        match self {
            Cipher::Plaintext => 1,
            Cipher::Rc4 => 2,
        }
    }
}

/// A set of ciphers, as in `crypto_provide` and `crypto_select`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CipherSet(u32);

impl CipherSet {
    /// Plaintext only.
    pub const PLAINTEXT: Self = Self(1);
    /// RC4 only.
    pub const RC4: Self = Self(2);
    /// Plaintext or RC4.
    pub const BOTH: Self = Self(3);

    /// The set with these `crypto_provide` bits (unknown bits are kept, never chosen).
    pub fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The bits as sent on the wire.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether `cipher` is in the set.
    pub fn contains(self, cipher: Cipher) -> bool {
        self.0 & cipher.bit() != 0
    }
}

/// An RC4 keystream (used here only as MSE uses it, for obfuscation).
#[derive(Clone)]
pub struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl std::fmt::Debug for Rc4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rc4 { .. }")
    }
}

impl Rc4 {
    /// The keystream for `key` (1 to 256 bytes; longer keys use their first 256).
    pub fn new(key: &[u8]) -> Self {
        let mut s = [0u8; 256];
        for (i, v) in s.iter_mut().enumerate() {
            *v = i as u8;
        }
        if !key.is_empty() {
            let mut j = 0u8;
            for i in 0..256 {
                j = j
                    .wrapping_add(s[i])
                    .wrapping_add(key[i % key.len().min(256)]);
                s.swap(i, usize::from(j));
            }
        }
        Rc4 { s, i: 0, j: 0 }
    }

    /// The MSE keystream for `key`: the first 1024 bytes are discarded.
    fn mse(key: &[u8; 20]) -> Self {
        let mut rc4 = Rc4::new(key);
        rc4.apply(&mut [0u8; RC4_DISCARD]);
        rc4
    }

    /// Encrypts or decrypts `data` in place, advancing the keystream.
    pub fn apply(&mut self, data: &mut [u8]) {
        let (mut i, mut j, s) = (self.i, self.j, &mut self.s);
        for b in data {
            i = i.wrapping_add(1);
            j = j.wrapping_add(s[usize::from(i)]);
            s.swap(usize::from(i), usize::from(j));
            let k = s[usize::from(s[usize::from(i)].wrapping_add(s[usize::from(j)]))];
            *b ^= k;
        }
        self.i = i;
        self.j = j;
    }
}

/// Why an MSE handshake failed. `offset` counts the bytes received before the fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MseError {
    /// The other side's public key is 0, 1, p-1 or not below p.
    #[error("mse: public key out of range")]
    BadPublicKey,
    /// The synchronisation bytes did not show up within the longest padding.
    #[error("mse: no {what} within {searched} bytes after byte {offset}")]
    NoSync {
        /// What was looked for.
        what: &'static str,
        /// Where the search began.
        offset: u64,
        /// How far it looked.
        searched: usize,
    },
    /// The obfuscated info-hash names no torrent we serve.
    #[error("mse: obfuscated info-hash at byte {offset} matches no torrent")]
    UnknownTorrent {
        /// Where it was.
        offset: u64,
    },
    /// The decrypted verification constant was not zero (wrong key).
    #[error("mse: verification constant at byte {offset} is not zero")]
    BadVerification {
        /// Where it was.
        offset: u64,
    },
    /// A padding length above [`MAX_PAD`].
    #[error("mse: {which} length {len} at byte {offset} exceeds {MAX_PAD}")]
    PadTooLong {
        /// `PadC` or `PadD`.
        which: &'static str,
        /// The declared length.
        len: usize,
        /// Where it was.
        offset: u64,
    },
    /// An initial payload above [`MAX_INITIAL_PAYLOAD`].
    #[error("mse: initial payload length {len} at byte {offset} exceeds {MAX_INITIAL_PAYLOAD}")]
    InitialPayloadTooLong {
        /// The declared length.
        len: usize,
        /// Where it was.
        offset: u64,
    },
    /// No cipher both sides allow.
    #[error("mse: peer offers ciphers {offered:#x}, we allow {allowed:#x}")]
    NoCommonCipher {
        /// The peer's `crypto_provide`.
        offered: u32,
        /// Ours.
        allowed: u32,
    },
    /// The answer selected a cipher we did not offer, or several.
    #[error("mse: peer selected ciphers {selected:#x}, we offered {offered:#x}")]
    BadSelect {
        /// The peer's `crypto_select`.
        selected: u32,
        /// What we offered.
        offered: u32,
    },
    /// [`MseHandshake::receive`] was called after the handshake ended.
    #[error("mse: handshake already finished")]
    Finished,
}

/// A finished handshake: the cipher and its state for the rest of the stream.
#[derive(Debug)]
pub struct Established {
    /// The chosen cipher.
    pub cipher: Cipher,
    /// The torrent's info-hash (`SKEY`).
    pub skey: [u8; 20],
    /// Encrypts what we send (`None` for plaintext).
    pub encrypt: Option<Rc4>,
    /// Decrypts what we receive (`None` for plaintext).
    pub decrypt: Option<Rc4>,
    /// Stream bytes received after the handshake, decrypted: for the answering side this
    /// starts with the dialler's initial payload (its BitTorrent handshake).
    pub payload: Vec<u8>,
}

/// Which side of the exchange we are.
#[derive(Debug)]
enum Role {
    Initiator {
        skey: [u8; 20],
        offer: CipherSet,
        initial: Vec<u8>,
    },
    Responder {
        allow: CipherSet,
        prefer: Cipher,
    },
}

/// Where the handshake is.
#[derive(Debug)]
enum State {
    /// Waiting for the other side's public key.
    Key,
    /// Initiator: scanning `PadB` for the encrypted VC.
    SyncVc { expected: [u8; 8] },
    /// Initiator: waiting for `crypto_select` and `len(PadD)`.
    Select,
    /// Initiator: skipping `PadD`.
    PadD { len: usize, cipher: Cipher },
    /// Responder: scanning `PadA` for `HASH("req1", S)`.
    SyncReq1 { expected: [u8; 20] },
    /// Responder: waiting for the obfuscated info-hash.
    Skey,
    /// Responder: waiting for VC, `crypto_provide` and `len(PadC)`.
    Provide,
    /// Responder: skipping `PadC`, then `len(IA)`.
    PadC { len: usize, offer: u32 },
    /// Responder: waiting for the initial payload.
    Initial { len: usize, offer: u32 },
    /// Over, one way or the other.
    Done,
}

/// One side of an MSE handshake, sans-I/O.
#[derive(Debug)]
pub struct MseHandshake {
    role: Role,
    state: State,
    private: BigUint,
    input: Vec<u8>,
    /// Bytes of the stream consumed so far (for error offsets).
    consumed: u64,
    output: Vec<u8>,
    secret: [u8; KEY_LEN],
    skey: [u8; 20],
    encrypt: Option<Rc4>,
    decrypt: Option<Rc4>,
}

fn prime() -> BigUint {
    // ok: a constant valid hex string
    BigUint::parse_bytes(PRIME_HEX, 16).unwrap_or_default()
}

fn to_key_bytes(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    let skip = bytes.len().saturating_sub(KEY_LEN);
    let src = &bytes[skip..];
    out[KEY_LEN - src.len()..].copy_from_slice(src);
    out
}

fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn random_pad(rng: &mut impl RngCore) -> Vec<u8> {
    let len = rng.gen_range(0..=MAX_PAD);
    let mut pad = vec![0u8; len];
    rng.fill_bytes(&mut pad);
    pad
}

impl MseHandshake {
    /// The dialling side for the torrent `skey`, offering `offer`, that sends `initial`
    /// (normally its BitTorrent handshake, at most [`MAX_INITIAL_PAYLOAD`] bytes) inside the
    /// handshake. Its public key is ready in [`take_output`](Self::take_output).
    pub fn initiator(skey: [u8; 20], offer: CipherSet, initial: Vec<u8>) -> Self {
        let mut initial = initial;
        initial.truncate(MAX_INITIAL_PAYLOAD);
        Self::new(Role::Initiator {
            skey,
            offer,
            initial,
        })
    }

    /// The answering side, allowing `allow` and choosing `prefer` when the dialler offers
    /// both. Nothing is sent until the dialler's key has arrived.
    pub fn responder(allow: CipherSet, prefer: Cipher) -> Self {
        Self::new(Role::Responder { allow, prefer })
    }

    fn new(role: Role) -> Self {
        let mut rng = rand::thread_rng();
        let mut x = [0u8; 20];
        rng.fill_bytes(&mut x);
        let private = BigUint::from_bytes_be(&x);
        let mut hs = MseHandshake {
            role,
            state: State::Key,
            private,
            input: Vec::new(),
            consumed: 0,
            output: Vec::new(),
            secret: [0; KEY_LEN],
            skey: [0; 20],
            encrypt: None,
            decrypt: None,
        };
        if matches!(hs.role, Role::Initiator { .. }) {
            hs.send_key(&mut rng);
        }
        hs
    }

    fn send_key(&mut self, rng: &mut impl RngCore) {
        let public = BigUint::from(2u32).modpow(&self.private, &prime());
        self.output.extend_from_slice(&to_key_bytes(&public));
        self.output.extend_from_slice(&random_pad(rng));
    }

    /// Bytes to send now (empty when there is nothing).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Feeds bytes received from the peer. `lookup` maps `HASH("req2", SKEY)` to the
    /// info-hash `SKEY` of a torrent we serve (only the answering side asks). Returns the
    /// result once the handshake is over; send [`take_output`](Self::take_output) after
    /// every call, including the last.
    pub fn receive(
        &mut self,
        data: &[u8],
        mut lookup: impl FnMut(&[u8; 20]) -> Option<[u8; 20]>,
    ) -> Result<Option<Established>, MseError> {
        if matches!(self.state, State::Done) {
            return Err(MseError::Finished);
        }
        self.input.extend_from_slice(data);
        let result = self.advance(&mut lookup);
        if result.is_err() {
            self.state = State::Done;
            self.input.clear();
        }
        result
    }

    fn eat(&mut self, n: usize) -> Vec<u8> {
        self.consumed += n as u64;
        self.input.drain(..n).collect()
    }

    fn decrypted(&mut self, n: usize) -> Vec<u8> {
        let mut bytes = self.eat(n);
        if let Some(rc4) = self.decrypt.as_mut() {
            rc4.apply(&mut bytes);
        }
        bytes
    }

    fn advance(
        &mut self,
        lookup: &mut dyn FnMut(&[u8; 20]) -> Option<[u8; 20]>,
    ) -> Result<Option<Established>, MseError> {
        loop {
            let have = self.input.len();
            match std::mem::replace(&mut self.state, State::Done) {
                State::Key => {
                    if have < KEY_LEN {
                        self.state = State::Key;
                        return Ok(None);
                    }
                    let theirs = BigUint::from_bytes_be(&self.eat(KEY_LEN));
                    let p = prime();
                    if theirs <= BigUint::from(1u32) || theirs >= &p - 1u32 {
                        return Err(MseError::BadPublicKey);
                    }
                    self.secret = to_key_bytes(&theirs.modpow(&self.private, &p));
                    self.state = match &self.role {
                        Role::Initiator {
                            skey,
                            offer,
                            initial,
                        } => {
                            let (skey, offer, initial) = (*skey, *offer, initial.clone());
                            self.start_initiator(skey, offer, &initial)
                        }
                        Role::Responder { .. } => {
                            self.send_key(&mut rand::thread_rng());
                            State::SyncReq1 {
                                expected: hash(&[b"req1", &self.secret]),
                            }
                        }
                    };
                }
                State::SyncVc { expected } => match find(&self.input, &expected) {
                    Some(at) if at <= MAX_PAD => {
                        self.eat(at + VC.len());
                        if let Some(rc4) = self.decrypt.as_mut() {
                            rc4.apply(&mut [0u8; 8]);
                        }
                        self.state = State::Select;
                    }
                    _ if have >= MAX_PAD + VC.len() => {
                        return Err(self.no_sync("encrypted verification constant"));
                    }
                    _ => {
                        self.state = State::SyncVc { expected };
                        return Ok(None);
                    }
                },
                State::Select => {
                    if have < 6 {
                        self.state = State::Select;
                        return Ok(None);
                    }
                    let offset = self.consumed;
                    let b = self.decrypted(6);
                    let selected = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    let len = usize::from(u16::from_be_bytes([b[4], b[5]]));
                    let offered = match &self.role {
                        Role::Initiator { offer, .. } => offer.bits(),
                        Role::Responder { .. } => 0,
                    };
                    let cipher = match selected {
                        1 => Cipher::Plaintext,
                        2 => Cipher::Rc4,
                        _ => return Err(MseError::BadSelect { selected, offered }),
                    };
                    if offered & selected == 0 {
                        return Err(MseError::BadSelect { selected, offered });
                    }
                    if len > MAX_PAD {
                        return Err(MseError::PadTooLong {
                            which: "PadD",
                            len,
                            offset: offset + 4,
                        });
                    }
                    self.state = State::PadD { len, cipher };
                }
                State::PadD { len, cipher } => {
                    if have < len {
                        self.state = State::PadD { len, cipher };
                        return Ok(None);
                    }
                    self.decrypted(len);
                    return Ok(Some(self.finish(cipher, Vec::new())));
                }
                State::SyncReq1 { expected } => match find(&self.input, &expected) {
                    Some(at) if at <= MAX_PAD => {
                        self.eat(at + expected.len());
                        self.state = State::Skey;
                    }
                    _ if have >= MAX_PAD + expected.len() => {
                        return Err(self.no_sync("req1 hash"));
                    }
                    _ => {
                        self.state = State::SyncReq1 { expected };
                        return Ok(None);
                    }
                },
                State::Skey => {
                    if have < 20 {
                        self.state = State::Skey;
                        return Ok(None);
                    }
                    let offset = self.consumed;
                    let req3 = hash(&[b"req3", &self.secret]);
                    let mut req2 = [0u8; 20];
                    for ((out, a), b) in req2.iter_mut().zip(self.eat(20)).zip(req3) {
                        *out = a ^ b;
                    }
                    let skey = lookup(&req2).ok_or(MseError::UnknownTorrent { offset })?;
                    self.skey = skey;
                    self.decrypt = Some(Rc4::mse(&hash(&[b"keyA", &self.secret, &skey])));
                    self.encrypt = Some(Rc4::mse(&hash(&[b"keyB", &self.secret, &skey])));
                    self.state = State::Provide;
                }
                State::Provide => {
                    if have < 14 {
                        self.state = State::Provide;
                        return Ok(None);
                    }
                    let offset = self.consumed;
                    let b = self.decrypted(14);
                    if b[..8] != VC {
                        return Err(MseError::BadVerification { offset });
                    }
                    let offer = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
                    let len = usize::from(u16::from_be_bytes([b[12], b[13]]));
                    if len > MAX_PAD {
                        return Err(MseError::PadTooLong {
                            which: "PadC",
                            len,
                            offset: offset + 12,
                        });
                    }
                    self.state = State::PadC { len, offer };
                }
                State::PadC { len, offer } => {
                    if have < len + 2 {
                        self.state = State::PadC { len, offer };
                        return Ok(None);
                    }
                    let offset = self.consumed + len as u64;
                    let b = self.decrypted(len + 2);
                    let ia_len = usize::from(u16::from_be_bytes([b[len], b[len + 1]]));
                    if ia_len > MAX_INITIAL_PAYLOAD {
                        return Err(MseError::InitialPayloadTooLong {
                            len: ia_len,
                            offset,
                        });
                    }
                    self.state = State::Initial { len: ia_len, offer };
                }
                State::Initial { len, offer } => {
                    if have < len {
                        self.state = State::Initial { len, offer };
                        return Ok(None);
                    }
                    let initial = self.decrypted(len);
                    let Role::Responder { allow, prefer } = self.role else {
                        return Err(MseError::Finished);
                    };
                    let offered = CipherSet::from_bits(offer);
                    let both = |c| offered.contains(c) && allow.contains(c);
                    let other = match prefer {
                        Cipher::Plaintext => Cipher::Rc4,
                        Cipher::Rc4 => Cipher::Plaintext,
                    };
                    let cipher = if both(prefer) {
                        prefer
                    } else if both(other) {
                        other
                    } else {
                        return Err(MseError::NoCommonCipher {
                            offered: offer,
                            allowed: allow.bits(),
                        });
                    };
                    let mut answer = Vec::with_capacity(14);
                    answer.extend_from_slice(&VC);
                    answer.extend_from_slice(&cipher.bit().to_be_bytes());
                    answer.extend_from_slice(&0u16.to_be_bytes());
                    if let Some(rc4) = self.encrypt.as_mut() {
                        rc4.apply(&mut answer);
                    }
                    self.output.extend_from_slice(&answer);
                    return Ok(Some(self.finish(cipher, initial)));
                }
                State::Done => return Err(MseError::Finished),
            }
        }
    }

    /// Queues step 3 and sets up the keys; the next state scans for the answer.
    fn start_initiator(&mut self, skey: [u8; 20], offer: CipherSet, initial: &[u8]) -> State {
        self.skey = skey;
        let mut encrypt = Rc4::mse(&hash(&[b"keyA", &self.secret, &skey]));
        let decrypt = Rc4::mse(&hash(&[b"keyB", &self.secret, &skey]));
        let req2 = hash(&[b"req2", &skey]);
        let req3 = hash(&[b"req3", &self.secret]);
        self.output
            .extend_from_slice(&hash(&[b"req1", &self.secret]));
        self.output
            .extend(req2.iter().zip(req3).map(|(a, b)| a ^ b));
        let mut header = Vec::with_capacity(16 + initial.len());
        header.extend_from_slice(&VC);
        header.extend_from_slice(&offer.bits().to_be_bytes());
        header.extend_from_slice(&0u16.to_be_bytes());
        // ok: initial was truncated to MAX_INITIAL_PAYLOAD (< 65536) at construction
        header.extend_from_slice(&(initial.len() as u16).to_be_bytes());
        header.extend_from_slice(initial);
        encrypt.apply(&mut header);
        self.output.extend_from_slice(&header);
        let mut expected = VC;
        decrypt.clone().apply(&mut expected);
        self.encrypt = Some(encrypt);
        self.decrypt = Some(decrypt);
        State::SyncVc { expected }
    }

    fn no_sync(&self, what: &'static str) -> MseError {
        MseError::NoSync {
            what,
            offset: self.consumed,
            searched: MAX_PAD,
        }
    }

    /// Ends the handshake: whatever is left of the input is stream payload.
    fn finish(&mut self, cipher: Cipher, mut payload: Vec<u8>) -> Established {
        self.state = State::Done;
        let (mut encrypt, mut decrypt) = (self.encrypt.take(), self.decrypt.take());
        if cipher == Cipher::Plaintext {
            encrypt = None;
            decrypt = None;
        }
        let mut rest = std::mem::take(&mut self.input);
        if let Some(rc4) = decrypt.as_mut() {
            rc4.apply(&mut rest);
        }
        payload.extend_from_slice(&rest);
        Established {
            cipher,
            skey: self.skey,
            encrypt,
            decrypt,
            payload,
        }
    }
}

#[cfg(test)]
mod tests;
