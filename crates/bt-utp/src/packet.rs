//! uTP packets (BEP 29): the 20-byte header, the extension chain and the payload.
//!
//! ```text
//! 0       4       8               16              24              32
//! +-------+-------+---------------+---------------+---------------+
//! | type  | ver   | extension     | connection_id                 |
//! +-------+-------+---------------+---------------+---------------+
//! | timestamp_microseconds                                        |
//! +---------------+---------------+---------------+---------------+
//! | timestamp_difference_microseconds                             |
//! +---------------+---------------+---------------+---------------+
//! | wnd_size                                                      |
//! +---------------+---------------+---------------+---------------+
//! | seq_nr                        | ack_nr                        |
//! +---------------+---------------+---------------+---------------+
//! ```
//!
//! Each extension is `next extension (u8), length (u8), bytes`; the chain ends at type 0.
//! Decoding borrows from the datagram and allocates nothing.

use crate::sack::SelectiveAck;
use crate::{Error, Result};

/// The uTP version this crate speaks (BEP 29's only one).
pub const VERSION: u8 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 20;
/// Extension type of the selective ACK bitmask.
pub const EXTENSION_SACK: u8 = 1;

/// What a packet is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PacketType {
    /// Stream bytes (`ST_DATA`).
    Data = 0,
    /// The sender's last sequence number (`ST_FIN`).
    Fin = 1,
    /// An acknowledgement without payload (`ST_STATE`).
    State = 2,
    /// Terminates the connection at once (`ST_RESET`).
    Reset = 3,
    /// Opens a connection (`ST_SYN`).
    Syn = 4,
}

impl PacketType {
    /// The type for the 4-bit wire value, if it is one.
    pub fn from_wire(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Data,
            1 => Self::Fin,
            2 => Self::State,
            3 => Self::Reset,
            4 => Self::Syn,
            _ => return None,
        })
    }
}

/// The fixed 20-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The packet's type.
    pub packet_type: PacketType,
    /// The receiver's id for this connection (the SYN carries the sender's receive id).
    pub connection_id: u16,
    /// The sender's clock, in microseconds, when it sent the packet.
    pub timestamp_micros: u32,
    /// The sender's last measured one-way delay from the receiver, in microseconds.
    pub timestamp_difference_micros: u32,
    /// Bytes the sender can still take into its receive buffer.
    pub wnd_size: u32,
    /// Sequence number of this packet (the next one to be sent, for `State`).
    pub seq_nr: u16,
    /// Last sequence number the sender received in order.
    pub ack_nr: u16,
}

/// A decoded packet, borrowing its selective ACK and payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The fixed header.
    pub header: Header,
    /// The selective ACK extension, if present.
    pub sack: Option<SelectiveAck<'a>>,
    /// Stream bytes (only `Data` packets carry any).
    pub payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Decodes one datagram strictly: version 1, a known type, a well-formed extension
    /// chain inside the datagram, at most one selective ACK (not empty), and no payload on
    /// anything but `Data`. Unknown extensions are skipped.
    pub fn decode(datagram: &'a [u8]) -> Result<Self> {
        if datagram.len() < HEADER_LEN {
            return Err(Error::TooShort {
                len: datagram.len(),
            });
        }
        let version = datagram[0] & 0x0f;
        if version != VERSION {
            return Err(Error::Version { version });
        }
        let type_value = datagram[0] >> 4;
        let packet_type =
            PacketType::from_wire(type_value).ok_or(Error::PacketType { value: type_value })?;
        let u16_at = |i: usize| u16::from_be_bytes([datagram[i], datagram[i + 1]]);
        let u32_at = |i: usize| {
            u32::from_be_bytes([
                datagram[i],
                datagram[i + 1],
                datagram[i + 2],
                datagram[i + 3],
            ])
        };
        let header = Header {
            packet_type,
            connection_id: u16_at(2),
            timestamp_micros: u32_at(4),
            timestamp_difference_micros: u32_at(8),
            wnd_size: u32_at(12),
            seq_nr: u16_at(16),
            ack_nr: u16_at(18),
        };
        let mut next = datagram[1];
        let mut offset = HEADER_LEN;
        let mut sack = None;
        while next != 0 {
            let extension = next;
            let Some(&[kind, len]) = datagram.get(offset..offset + 2) else {
                return Err(Error::ExtensionTruncated { offset });
            };
            let len = usize::from(len);
            let body =
                datagram
                    .get(offset + 2..offset + 2 + len)
                    .ok_or(Error::ExtensionLength {
                        extension,
                        len,
                        offset,
                        left: datagram.len() - offset - 2,
                    })?;
            if extension == EXTENSION_SACK {
                if sack.is_some() {
                    return Err(Error::DuplicateSack { offset });
                }
                sack = Some(SelectiveAck::new(body)?);
            }
            next = kind;
            offset += 2 + len;
        }
        let payload = &datagram[offset..];
        if !payload.is_empty() && packet_type != PacketType::Data {
            return Err(Error::UnexpectedPayload {
                packet_type,
                len: payload.len(),
            });
        }
        Ok(Self {
            header,
            sack,
            payload,
        })
    }

    /// The datagram length [`Packet::encode`] produces.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.sack.map_or(0, |s| 2 + s.bitmask().len()) + self.payload.len()
    }

    /// Appends the packet's datagram to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let h = &self.header;
        out.reserve(self.encoded_len());
        out.push(((h.packet_type as u8) << 4) | VERSION);
        out.push(if self.sack.is_some() {
            EXTENSION_SACK
        } else {
            0
        });
        out.extend_from_slice(&h.connection_id.to_be_bytes());
        out.extend_from_slice(&h.timestamp_micros.to_be_bytes());
        out.extend_from_slice(&h.timestamp_difference_micros.to_be_bytes());
        out.extend_from_slice(&h.wnd_size.to_be_bytes());
        out.extend_from_slice(&h.seq_nr.to_be_bytes());
        out.extend_from_slice(&h.ack_nr.to_be_bytes());
        if let Some(sack) = self.sack {
            let bits = sack.bitmask();
            out.push(0);
            out.push(bits.len() as u8);
            out.extend_from_slice(bits);
        }
        out.extend_from_slice(self.payload);
    }
}

/// Sequence numbers are 16 bits and wrap: `a` is before `b` if `b` is less than half the
/// space ahead of it.
pub(crate) fn seq_less(a: u16, b: u16) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000
}

#[cfg(test)]
mod tests;
