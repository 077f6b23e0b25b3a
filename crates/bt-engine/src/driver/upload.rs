//! The upload path's reads: approved requests are read from storage a batch at a time,
//! straight into framed `piece` messages, by one blocking job per batch.
//!
//! A [`Batch`] is a reusable buffer that holds whole `piece` messages back to back (13-byte
//! header, then the block), so a connection's writer sends it with one `write` and no
//! block is copied between the page cache and the socket. Buffers keep their memory from
//! batch to batch: nothing is zeroed or allocated per block, and a connection holds at
//! most a few of them.

use std::io;
use std::sync::Arc;

use bt_meta::BlockInfo;
use bt_meta::PieceIndex;
use bt_wire::{piece_header, PIECE_HEADER_LEN};

use crate::driver::disk::Store;

/// Most bytes (headers included) put in one batch, unless a single block is larger.
pub(crate) const BATCH_LEN: usize = 256 * 1024;

/// Reads blocks of verified pieces for upload. Every method blocks.
pub(crate) trait BlockSource: Send + Sync + 'static {
    /// Fills `buf` with the bytes of `piece` from offset `begin`.
    fn read_into(&self, piece: u32, begin: u32, buf: &mut [u8]) -> io::Result<()>;
}

impl BlockSource for Store {
    fn read_into(&self, piece: u32, begin: u32, buf: &mut [u8]) -> io::Result<()> {
        self.storage
            .read_block_into(PieceIndex(piece), begin, buf)
            .map_err(io::Error::other)
    }
}

/// A torrent's block source, shared by its connections.
pub(crate) type Uploads = Arc<dyn BlockSource>;

/// A block that could not be read, and why.
#[derive(Debug)]
pub(crate) struct ReadError {
    /// The request being read.
    pub req: BlockInfo,
    /// What storage said.
    pub source: io::Error,
}

/// Requests and the `piece` messages read for them.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Initialised bytes; grown when needed and never shrunk, so reuse costs nothing.
    buf: Vec<u8>,
    /// Bytes of `buf` the messages take (once read; planned until then).
    len: usize,
    /// The requests, in the order their messages appear.
    reqs: Vec<BlockInfo>,
}

impl Batch {
    /// Whether a block of `length` bytes still fits. An empty batch takes any block.
    pub(crate) fn has_room(&self, length: u32) -> bool {
        self.reqs.is_empty() || self.len + framed_len(length) <= BATCH_LEN
    }

    /// Adds a request to read.
    pub(crate) fn push(&mut self, req: BlockInfo) {
        self.len += framed_len(req.len);
        self.reqs.push(req);
    }

    /// The requests, in order.
    pub(crate) fn requests(&self) -> &[BlockInfo] {
        &self.reqs
    }

    /// Payload bytes of its blocks.
    pub(crate) fn payload_len(&self) -> u64 {
        self.reqs.iter().map(|r| u64::from(r.len)).sum()
    }

    /// The framed messages (valid after a successful [`read`](Self::read)).
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Forgets the requests and keeps the buffer.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.reqs.clear();
    }

    /// Reads every request from `source` into its `piece` message. The caller keeps
    /// request lengths bounded (the torrent actor refuses requests over 16 KiB), which
    /// bounds the buffer. Blocks.
    pub(crate) fn read(&mut self, source: &dyn BlockSource) -> Result<(), ReadError> {
        if self.buf.len() < self.len {
            self.buf.resize(self.len, 0);
        }
        let mut rest = self.buf.as_mut_slice();
        for req in &self.reqs {
            let (frame, tail) = rest.split_at_mut(framed_len(req.len)); // ok: buf holds len = sum of frames
            rest = tail;
            let (header, payload) = frame.split_at_mut(PIECE_HEADER_LEN); // ok: frame is header + length
            header.copy_from_slice(&piece_header(req.piece.0, req.begin, req.len));
            source
                .read_into(req.piece.0, req.begin, payload)
                .map_err(|source| ReadError { req: *req, source })?;
        }
        Ok(())
    }
}

/// Bytes of a `piece` message carrying `length` bytes.
fn framed_len(length: u32) -> usize {
    PIECE_HEADER_LEN + length as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use bt_meta::PieceIndex;
    use bt_wire::MessageCodec;
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    /// Byte `i` of piece `p` is `p * 31 + i` (mod 256); piece 7 fails to read.
    struct Pattern;

    impl BlockSource for Pattern {
        fn read_into(&self, piece: u32, begin: u32, buf: &mut [u8]) -> io::Result<()> {
            if piece == 7 {
                return Err(io::Error::other("bad sector"));
            }
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (piece as usize * 31 + begin as usize + i) as u8;
            }
            Ok(())
        }
    }

    fn req(index: u32, begin: u32, length: u32) -> BlockInfo {
        BlockInfo {
            piece: PieceIndex(index),
            begin,
            len: length,
        }
    }

    #[test]
    fn a_batch_reads_framed_piece_messages_in_request_order() {
        let mut batch = Batch::default();
        let reqs = [req(3, 16384, 16384), req(0, 0, 100), req(3, 0, 16384)];
        for r in reqs {
            assert!(batch.has_room(r.len));
            batch.push(r);
        }
        batch.read(&Pattern).unwrap();
        assert_eq!(batch.payload_len(), 32868);
        let mut wire = BytesMut::from(batch.bytes());
        let mut codec = MessageCodec::new();
        for r in reqs {
            let msg = codec.decode(&mut wire).unwrap().unwrap();
            let mut want = vec![0; r.len as usize];
            Pattern.read_into(r.piece.0, r.begin, &mut want).unwrap();
            assert_eq!(
                msg,
                bt_wire::Message::Piece {
                    index: r.piece.0,
                    begin: r.begin,
                    data: want.into(),
                }
            );
        }
        assert!(wire.is_empty());
    }

    #[test]
    fn a_reused_batch_holds_only_its_new_requests() {
        let mut batch = Batch::default();
        for i in 0..10 {
            batch.push(req(10 + i, 0, 16384));
        }
        batch.read(&Pattern).unwrap();
        batch.clear();
        assert!(batch.requests().is_empty());
        batch.push(req(1, 5, 10));
        batch.read(&Pattern).unwrap();
        assert_eq!(batch.bytes().len(), PIECE_HEADER_LEN + 10);
        assert_eq!(batch.requests(), &[req(1, 5, 10)]);
        let expect: Vec<u8> = (0..10).map(|i| (31 + 5 + i) as u8).collect();
        assert_eq!(&batch.bytes()[PIECE_HEADER_LEN..], &expect[..]);
    }

    #[test]
    fn a_batch_stops_at_its_length_but_always_takes_one_block() {
        let mut batch = Batch::default();
        let mut n = 0;
        while batch.has_room(16384) {
            batch.push(req(0, n * 16384, 16384));
            n += 1;
        }
        assert_eq!(n as usize, BATCH_LEN / framed_len(16384));
        batch.read(&Pattern).unwrap();
        assert_eq!(batch.bytes().len(), n as usize * framed_len(16384));
        let mut big = Batch::default();
        assert!(big.has_room(BATCH_LEN as u32));
        big.push(req(0, 0, BATCH_LEN as u32));
        assert!(!big.has_room(1));
    }

    #[test]
    fn a_failed_read_names_the_block() {
        let mut batch = Batch::default();
        batch.push(req(1, 0, 16));
        batch.push(req(7, 32, 16));
        let err = batch.read(&Pattern).unwrap_err();
        assert_eq!(err.req, req(7, 32, 16));
        assert_eq!(err.source.to_string(), "bad sector");
    }
}
