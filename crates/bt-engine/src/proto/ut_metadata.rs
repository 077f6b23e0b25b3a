//! Serving our info dictionary to peers (BEP 9): [`MetadataResponder`], one per connection.
//!
//! Sans-I/O: given our raw info bytes (or none yet) and a received [`MetadataMessage`],
//! it says what to send back. Only `request`s get an answer: a `data` message with the
//! 16 KiB piece sliced out of the info bytes (no copy), or a `reject` when we have no
//! metadata, the piece does not exist, or the peer has used up its budget. `data`,
//! `reject` and unknown messages from the peer are ignored here (fetching is
//! [`crate::proto::metadata`]'s job).
//!
//! Bound: a connection gets at most [`MetadataResponder::budget_for`] pieces (twice the
//! piece count plus a little), so a peer asking for the same pieces in a loop costs at
//! most a few copies of the dictionary; further requests are rejected.

use bt_wire::extension::METADATA_PIECE_LEN;
use bt_wire::MetadataMessage;
use bytes::Bytes;

/// The extended id we ask peers to send `ut_metadata` messages under (the value of
/// `ut_metadata` in the `m` dictionary of our extended handshake).
pub const OUR_UT_METADATA_ID: u8 = 3;

/// Pieces served to one connection beyond twice the piece count.
const EXTRA_BUDGET: u32 = 8;

/// Answers one peer's `ut_metadata` requests; see the module documentation.
#[derive(Clone, Debug)]
pub struct MetadataResponder {
    /// Pieces this connection may still be sent.
    budget: u32,
}

impl MetadataResponder {
    /// A responder for a dictionary of `info_len` bytes (0 if we have none).
    pub fn new(info_len: usize) -> Self {
        MetadataResponder {
            budget: Self::budget_for(info_len),
        }
    }

    /// How many pieces one connection may be sent for a dictionary of `info_len` bytes.
    pub fn budget_for(info_len: usize) -> u32 {
        let pieces = u32::try_from(info_len.div_ceil(METADATA_PIECE_LEN)).unwrap_or(u32::MAX);
        pieces.saturating_mul(2).saturating_add(EXTRA_BUDGET)
    }

    /// Pieces this connection may still be sent.
    pub fn remaining(&self) -> u32 {
        self.budget
    }

    /// The reply to `msg`, if it calls for one. `info` is our raw info dictionary.
    pub fn respond(
        &mut self,
        info: Option<&Bytes>,
        msg: &MetadataMessage,
    ) -> Option<MetadataMessage> {
        let &MetadataMessage::Request { piece } = msg else {
            return None;
        };
        let reject = Some(MetadataMessage::Reject { piece });
        let Some(info) = info else {
            return reject;
        };
        let Ok(total_size) = u32::try_from(info.len()) else {
            return reject;
        };
        let start = (piece as usize).saturating_mul(METADATA_PIECE_LEN);
        if start >= info.len() || self.budget == 0 {
            return reject;
        }
        self.budget -= 1;
        let end = start.saturating_add(METADATA_PIECE_LEN).min(info.len());
        Some(MetadataMessage::Data {
            piece,
            total_size,
            data: info.slice(start..end),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(len: usize) -> Bytes {
        Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
    }

    fn check(info_len: Option<usize>, msg: MetadataMessage, expected: Option<MetadataMessage>) {
        let info = info_len.map(info);
        let mut r = MetadataResponder::new(info.as_ref().map_or(0, Bytes::len));
        assert_eq!(
            r.respond(info.as_ref(), &msg),
            expected,
            "{info_len:?} {msg:?}"
        );
    }

    fn data(len: usize, piece: u32, range: std::ops::Range<usize>) -> Option<MetadataMessage> {
        Some(MetadataMessage::Data {
            piece,
            total_size: len as u32,
            data: info(len).slice(range),
        })
    }

    const K16: usize = METADATA_PIECE_LEN;

    #[test]
    fn requests_are_answered_with_the_right_slice() {
        use MetadataMessage::*;
        check(Some(100), Request { piece: 0 }, data(100, 0, 0..100));
        check(Some(K16), Request { piece: 0 }, data(K16, 0, 0..K16));
        check(Some(K16), Request { piece: 1 }, Some(Reject { piece: 1 }));
        check(
            Some(K16 + 1),
            Request { piece: 1 },
            data(K16 + 1, 1, K16..K16 + 1),
        );
        check(
            Some(3 * K16 - 5),
            Request { piece: 2 },
            data(3 * K16 - 5, 2, 2 * K16..3 * K16 - 5),
        );
        check(
            Some(100),
            Request { piece: u32::MAX },
            Some(Reject { piece: u32::MAX }),
        );
        check(None, Request { piece: 0 }, Some(Reject { piece: 0 }));
    }

    #[test]
    fn other_messages_get_no_reply() {
        use MetadataMessage::*;
        check(Some(100), Reject { piece: 0 }, None);
        check(Some(100), Unknown { msg_type: 9 }, None);
        check(
            Some(100),
            Data {
                piece: 0,
                total_size: 100,
                data: Bytes::new(),
            },
            None,
        );
    }

    #[test]
    fn data_is_sliced_without_copy() {
        let info = info(3 * K16);
        let mut r = MetadataResponder::new(info.len());
        let Some(MetadataMessage::Data { data, .. }) =
            r.respond(Some(&info), &MetadataMessage::Request { piece: 1 })
        else {
            panic!("no data");
        };
        assert_eq!(data.as_ptr(), info[K16..].as_ptr());
    }

    #[test]
    fn a_looping_peer_runs_out_of_budget() {
        let info = info(2 * K16);
        let mut r = MetadataResponder::new(info.len());
        let budget = MetadataResponder::budget_for(info.len());
        assert_eq!(budget, 2 * 2 + EXTRA_BUDGET);
        for i in 0..budget {
            let reply = r.respond(Some(&info), &MetadataMessage::Request { piece: i % 2 });
            assert!(
                matches!(reply, Some(MetadataMessage::Data { .. })),
                "request {i}"
            );
        }
        assert_eq!(r.remaining(), 0);
        assert_eq!(
            r.respond(Some(&info), &MetadataMessage::Request { piece: 0 }),
            Some(MetadataMessage::Reject { piece: 0 })
        );
    }
}
