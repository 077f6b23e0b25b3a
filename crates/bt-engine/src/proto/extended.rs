//! BEP 10 extensions on a torrent's connections, sans-I/O: what we put in our extended
//! handshake ([`TorrentExtensions::handshake`]) and, per connection, what to do with the
//! peer's extended messages ([`PeerExtensions`]): its handshake (the ids it gave
//! `ut_metadata` and `ut_pex`, its listen port), `ut_metadata` requests (answered by
//! [`MetadataResponder`]) and `ut_pex` messages ([`PexState`]), and the PEX messages we
//! send it.
//!
//! Private torrents (BEP 27) advertise no `ut_pex` and ignore received PEX; they still
//! serve `ut_metadata` (the peer already knows the info-hash). A malformed extended
//! message is logged and ignored: it costs the peer nothing but its own message.

use core::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bt_wire::extension::{PexFlags, PexMessage, PexPeer, UT_METADATA, UT_PEX};
use bt_wire::{ExtendedHandshake, Message, MetadataMessage};
use bytes::Bytes;

use crate::proto::pex::{PexState, OUR_UT_PEX_ID};
use crate::proto::ut_metadata::{MetadataResponder, OUR_UT_METADATA_ID};

/// What a torrent offers through BEP 10.
#[derive(Clone, Debug)]
pub(crate) struct TorrentExtensions {
    /// Our raw info dictionary, served over `ut_metadata`.
    pub info: Option<Bytes>,
    /// BEP 27: no PEX, no DHT.
    pub private: bool,
    /// Our TCP listen port (`p`).
    pub listen_port: u16,
    /// Requests we queue per peer (`reqq`).
    pub reqq: u32,
}

impl TorrentExtensions {
    /// Our extended handshake for a peer at `peer_ip`.
    pub fn handshake(&self, peer_ip: IpAddr) -> Message {
        let mut hs = ExtendedHandshake::default();
        hs.extensions
            .insert(UT_METADATA.to_owned(), OUR_UT_METADATA_ID);
        if !self.private {
            hs.extensions.insert(UT_PEX.to_owned(), OUR_UT_PEX_ID);
        }
        hs.client = Some(format!("bt {}", env!("CARGO_PKG_VERSION")));
        hs.port = (self.listen_port != 0).then_some(self.listen_port);
        hs.reqq = Some(self.reqq);
        hs.your_ip = Some(peer_ip);
        hs.metadata_size = self.info.as_ref().and_then(|i| u32::try_from(i.len()).ok());
        hs.to_message()
    }

    /// Fresh per-connection state.
    pub fn new_peer(&self) -> PeerExtensions {
        PeerExtensions {
            their_metadata: None,
            their_pex: None,
            listen_port: None,
            responder: MetadataResponder::new(self.info.as_ref().map_or(0, Bytes::len)),
            pex: PexState::new(),
            dht_port_seen: false,
        }
    }
}

/// What to do after a peer's extended message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ExtOutcome {
    /// Nothing.
    Nothing,
    /// Send this to the peer.
    Reply(Message),
    /// Addresses learned through PEX, to dial.
    Peers(Vec<SocketAddr>),
}

/// Extension state of one connection.
#[derive(Debug)]
pub(crate) struct PeerExtensions {
    /// The id the peer gave `ut_metadata`.
    their_metadata: Option<u8>,
    /// The id the peer gave `ut_pex`.
    their_pex: Option<u8>,
    /// The peer's listen port from its handshake (`p`).
    listen_port: Option<u16>,
    responder: MetadataResponder,
    pex: PexState,
    /// A `port` message was already acted on.
    dht_port_seen: bool,
}

impl PeerExtensions {
    /// Handles the payload of an extended message with id `id`.
    pub fn handle(
        &mut self,
        torrent: &TorrentExtensions,
        now: Instant,
        id: u8,
        payload: &Bytes,
    ) -> ExtOutcome {
        match id {
            0 => match ExtendedHandshake::decode(payload) {
                Ok(hs) => {
                    self.their_metadata = hs.id(UT_METADATA);
                    self.their_pex = hs.id(UT_PEX);
                    self.listen_port = hs.port.filter(|&p| p != 0);
                }
                Err(e) => tracing::debug!(error = %e, "bad extended handshake ignored"),
            },
            OUR_UT_METADATA_ID => {
                let msg = match MetadataMessage::decode(payload) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::debug!(error = %e, "bad ut_metadata message ignored");
                        return ExtOutcome::Nothing;
                    }
                };
                let (Some(their), Some(reply)) = (
                    self.their_metadata,
                    self.responder.respond(torrent.info.as_ref(), &msg),
                ) else {
                    return ExtOutcome::Nothing;
                };
                return ExtOutcome::Reply(reply.to_message(their));
            }
            OUR_UT_PEX_ID if !torrent.private => match PexMessage::decode(payload) {
                Ok(msg) => {
                    let peers = self.pex.ingest(now, &msg);
                    if !peers.is_empty() {
                        return ExtOutcome::Peers(peers);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "bad ut_pex message ignored"),
            },
            _ => {}
        }
        ExtOutcome::Nothing
    }

    /// The address the peer accepts connections on: where we dialled it, or its
    /// announced port on its address.
    pub fn listen_addr(&self, addr: SocketAddr, outgoing: bool) -> Option<SocketAddr> {
        if outgoing {
            Some(addr)
        } else {
            self.listen_port.map(|p| SocketAddr::new(addr.ip(), p))
        }
    }

    /// Whether a PEX message may be due (the peer takes PEX and the interval passed).
    pub fn pex_due(&self, torrent: &TorrentExtensions, now: Instant) -> bool {
        !torrent.private
            && self.their_pex.is_some()
            && self.pex.next_send_at().is_none_or(|at| at <= now)
    }

    /// The PEX message to send now, given the torrent's other connected peers.
    pub fn poll_pex(
        &mut self,
        torrent: &TorrentExtensions,
        now: Instant,
        connected: &[PexPeer],
    ) -> Option<Message> {
        if torrent.private {
            return None;
        }
        let id = self.their_pex?;
        self.pex
            .poll_message(now, connected)
            .map(|m| m.to_message(id))
    }

    /// Whether to act on a `port` message (only the first of a connection counts).
    pub fn take_dht_port(&mut self) -> bool {
        !std::mem::replace(&mut self.dht_port_seen, true)
    }
}

/// The PEX entry for a connected peer.
pub(crate) fn pex_peer(listen: SocketAddr, outgoing: bool, seed: bool) -> PexPeer {
    let mut flags = 0;
    if outgoing {
        flags |= PexFlags::REACHABLE;
    }
    if seed {
        flags |= PexFlags::SEED;
    }
    PexPeer {
        addr: listen,
        flags: PexFlags(flags),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torrent(info: Option<&[u8]>, private: bool) -> TorrentExtensions {
        TorrentExtensions {
            info: info.map(Bytes::copy_from_slice),
            private,
            listen_port: 6881,
            reqq: 500,
        }
    }

    fn their_handshake(pex: bool, port: Option<u16>) -> Bytes {
        let mut hs = ExtendedHandshake::default();
        hs.extensions.insert(UT_METADATA.into(), 9);
        if pex {
            hs.extensions.insert(UT_PEX.into(), 4);
        }
        hs.port = port;
        hs.encode()
    }

    fn decode_ours(msg: Message) -> ExtendedHandshake {
        let Message::Extended { id: 0, payload } = msg else {
            panic!("not an extended handshake: {msg:?}");
        };
        ExtendedHandshake::decode(&payload).unwrap()
    }

    #[test]
    fn our_handshake_names_what_we_offer() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let hs = decode_ours(torrent(Some(b"d4:name1:xe"), false).handshake(ip));
        assert_eq!(hs.id(UT_METADATA), Some(OUR_UT_METADATA_ID));
        assert_eq!(hs.id(UT_PEX), Some(OUR_UT_PEX_ID));
        assert_eq!(hs.metadata_size, Some(11));
        assert_eq!(
            (hs.port, hs.reqq, hs.your_ip),
            (Some(6881), Some(500), Some(ip))
        );
        let private = decode_ours(torrent(None, true).handshake(ip));
        assert_eq!(private.id(UT_PEX), None);
        assert_eq!(private.metadata_size, None);
    }

    #[test]
    fn metadata_requests_are_answered_under_their_id() {
        let t = torrent(Some(b"d4:name1:xe"), false);
        let mut p = t.new_peer();
        let now = Instant::now();
        let req = MetadataMessage::Request { piece: 0 }.encode();
        // Before their handshake we do not know their id: no answer.
        assert_eq!(
            p.handle(&t, now, OUR_UT_METADATA_ID, &req),
            ExtOutcome::Nothing
        );
        p.handle(&t, now, 0, &their_handshake(false, None));
        let ExtOutcome::Reply(Message::Extended { id: 9, payload }) =
            p.handle(&t, now, OUR_UT_METADATA_ID, &req)
        else {
            panic!("no reply");
        };
        assert_eq!(
            MetadataMessage::decode(&payload).unwrap(),
            MetadataMessage::Data {
                piece: 0,
                total_size: 11,
                data: Bytes::from_static(b"d4:name1:xe")
            }
        );
        // Garbage and unknown ids are ignored.
        let junk = Bytes::from_static(b"not bencode");
        assert_eq!(
            p.handle(&t, now, OUR_UT_METADATA_ID, &junk),
            ExtOutcome::Nothing
        );
        assert_eq!(p.handle(&t, now, 0, &junk), ExtOutcome::Nothing);
        assert_eq!(p.handle(&t, now, 77, &req), ExtOutcome::Nothing);
    }

    #[test]
    fn pex_both_ways_and_never_for_private_torrents() {
        let now = Instant::now();
        let other = pex_peer("10.0.0.7:7000".parse().unwrap(), true, false);
        let received = PexMessage {
            added: vec![other],
            dropped: vec![],
        }
        .encode();
        for private in [false, true] {
            let t = torrent(None, private);
            let mut p = t.new_peer();
            p.handle(&t, now, 0, &their_handshake(true, Some(5000)));
            assert_eq!(p.pex_due(&t, now), !private);
            let sent = p.poll_pex(&t, now, &[other]);
            let got = p.handle(&t, now, OUR_UT_PEX_ID, &received);
            if private {
                assert_eq!(sent, None);
                assert_eq!(got, ExtOutcome::Nothing);
            } else {
                let Some(Message::Extended { id: 4, payload }) = sent else {
                    panic!("no pex sent");
                };
                assert_eq!(PexMessage::decode(&payload).unwrap().added, vec![other]);
                assert!(!p.pex_due(&t, now));
                assert_eq!(got, ExtOutcome::Peers(vec![other.addr]));
            }
        }
    }

    #[test]
    fn listen_address_and_flags() {
        let t = torrent(None, false);
        let mut p = t.new_peer();
        let addr: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        assert_eq!(p.listen_addr(addr, true), Some(addr));
        assert_eq!(p.listen_addr(addr, false), None);
        p.handle(&t, Instant::now(), 0, &their_handshake(true, Some(6000)));
        assert_eq!(
            p.listen_addr(addr, false),
            Some("10.0.0.1:6000".parse().unwrap())
        );
        let flags = pex_peer(addr, true, true).flags;
        assert!(flags.contains(PexFlags::REACHABLE) && flags.contains(PexFlags::SEED));
        assert_eq!(pex_peer(addr, false, false).flags, PexFlags(0));
        assert!(p.take_dht_port());
        assert!(!p.take_dht_port());
    }
}
