//! tokio-util codecs: [`HandshakeCodec`] for the first 68 bytes of a connection,
//! [`MessageCodec`] for everything after. Both delegate to the plain
//! [`Handshake::decode`]/[`Handshake::encode`] and [`Message::decode`]/[`Message::encode`].

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::WireError;
use crate::handshake::Handshake;
use crate::message::Message;

/// Decodes and encodes the 68-byte handshake.
///
/// Consumes exactly one handshake; bytes the peer sent after it stay in the read buffer
/// and are decoded by the [`MessageCodec`] that replaces this one through
/// `Framed::map_codec` (see the crate documentation).
#[derive(Clone, Copy, Debug, Default)]
pub struct HandshakeCodec;

impl HandshakeCodec {
    /// A new handshake codec.
    pub fn new() -> Self {
        HandshakeCodec
    }
}

impl Decoder for HandshakeCodec {
    type Item = Handshake;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Handshake>, WireError> {
        Handshake::decode(src)
    }
}

impl Encoder<Handshake> for HandshakeCodec {
    type Error = WireError;

    fn encode(&mut self, item: Handshake, dst: &mut BytesMut) -> Result<(), WireError> {
        item.encode(dst);
        Ok(())
    }
}

impl Encoder<&Handshake> for HandshakeCodec {
    type Error = WireError;

    fn encode(&mut self, item: &Handshake, dst: &mut BytesMut) -> Result<(), WireError> {
        item.encode(dst);
        Ok(())
    }
}

/// Decodes and encodes length-prefixed peer wire messages.
///
/// Every length prefix is checked against a maximum frame length before anything is
/// reserved for the frame (see [`Message::decode`]). The limit also applies to outgoing
/// messages: encoding a larger one is a [`WireError::FrameTooLarge`] error, not a panic.
///
/// Keep-alives are yielded as [`Message::KeepAlive`]; the engine decides what to do with
/// them (usually: nothing but note the peer is alive).
#[derive(Clone, Copy, Debug)]
pub struct MessageCodec {
    max_frame_len: u32,
}

impl MessageCodec {
    /// The default maximum frame length: 1 MiB of payload plus 1 KiB for the id and any
    /// header, that is 1,049,600 bytes.
    ///
    /// The largest frames in practice are `bitfield`s: 1 MiB holds a bit for each of
    /// 8,388,608 pieces, more than any real torrent has (a 16 TiB torrent with 2 MiB pieces
    /// needs 1 MiB). A `piece` carrying the usual 16 KiB block is 16,393 bytes; BEP 9
    /// metadata messages are a 16 KiB block plus a small dictionary. Peers that send larger
    /// blocks (some send up to 128 KiB on request) are accepted too.
    pub const DEFAULT_MAX_FRAME_LEN: u32 = (1 << 20) + 1024;

    /// A codec with [`MessageCodec::DEFAULT_MAX_FRAME_LEN`].
    pub fn new() -> Self {
        MessageCodec {
            max_frame_len: Self::DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// A codec accepting frames up to `max_frame_len` bytes (counting the id byte and the
    /// payload, not the 4-byte length prefix). At most `4 + max_frame_len` bytes are ever
    /// reserved for one frame.
    ///
    /// A limit under 16,393 cannot receive a 16 KiB block; one under 13 cannot receive a
    /// `request`.
    pub fn with_max_frame_len(max_frame_len: u32) -> Self {
        MessageCodec { max_frame_len }
    }

    /// The limit in force.
    pub fn max_frame_len(&self) -> u32 {
        self.max_frame_len
    }

    fn encode_ref(&self, item: &Message, dst: &mut BytesMut) -> Result<(), WireError> {
        let len = item.frame_len();
        if len > self.max_frame_len as usize {
            return Err(WireError::FrameTooLarge {
                len: len as u64,
                max: self.max_frame_len,
            });
        }
        item.encode(dst);
        Ok(())
    }
}

impl Default for MessageCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for MessageCodec {
    type Item = Message;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, WireError> {
        Message::decode(src, self.max_frame_len)
    }
}

impl Encoder<Message> for MessageCodec {
    type Error = WireError;

    /// Writes the frame into `dst`. A `piece` block is copied once, into `dst`; for
    /// zero-copy sends use [`piece_header`](crate::piece_header) with a vectored write.
    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), WireError> {
        self.encode_ref(&item, dst)
    }
}

impl Encoder<&Message> for MessageCodec {
    type Error = WireError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), WireError> {
        self.encode_ref(item, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn outgoing_limit() {
        let mut codec = MessageCodec::with_max_frame_len(100);
        let mut buf = BytesMut::new();
        let ok = Message::Bitfield(Bytes::from(vec![0; 99]));
        codec.encode(&ok, &mut buf).unwrap();
        assert_eq!(buf.len(), 104);
        let too_big = Message::Bitfield(Bytes::from(vec![0; 100]));
        assert!(matches!(
            codec.encode(too_big, &mut buf),
            Err(WireError::FrameTooLarge { len: 101, max: 100 })
        ));
        assert_eq!(buf.len(), 104, "nothing written on error");
    }

    #[test]
    fn handshake_then_messages_in_one_buffer() {
        use bt_meta::{InfoHash, PeerId};
        let hs = Handshake::new(InfoHash([1; 20]), PeerId([2; 20]));
        let mut buf = BytesMut::new();
        HandshakeCodec.encode(hs, &mut buf).unwrap();
        MessageCodec::new()
            .encode(Message::HaveAll, &mut buf)
            .unwrap();
        MessageCodec::new()
            .encode(Message::Unchoke, &mut buf)
            .unwrap();
        assert_eq!(HandshakeCodec.decode(&mut buf).unwrap(), Some(hs));
        let mut codec = MessageCodec::new();
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Message::HaveAll));
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Message::Unchoke));
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
    }
}
