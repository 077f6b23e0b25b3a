//! [`ReadBuffers`]: socket read buffers shared by the connections and reused once the
//! blocks cut from them are gone.
//!
//! A `piece` message's payload is a `Bytes` slice of the read buffer it arrived in, and
//! the disk threads keep it until it is written and hashed. So when a connection's read
//! buffer fills up, the old one is still in use and `BytesMut` would allocate a new
//! one. Fresh allocations are handed back to the OS by the allocator and come back as
//! page faults (55,000 to 137,000 per GiB downloaded from libtorrent, measured; about
//! 3,300 with this pool). Instead, a full buffer is retired here and handed to the next
//! connection that needs one once nothing else refers to it.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::BytesMut;

/// Capacity of each read buffer.
pub(crate) const READ_BUF_CAPACITY: usize = 256 * 1024;
/// Below this much free room a read buffer with no whole frame left is swapped for
/// another: one 16 KiB block message and then some.
const MIN_ROOM: usize = 32 * 1024;
/// Most retired buffers kept; older ones are let go.
const MAX_RETIRED: usize = 64;

/// The read buffers of every connection in the process.
pub(crate) static SHARED: ReadBuffers = ReadBuffers::new(MAX_RETIRED);

/// A bounded pool of retired read buffers.
pub(crate) struct ReadBuffers {
    retired: Mutex<VecDeque<BytesMut>>,
    max: usize,
}

impl ReadBuffers {
    /// An empty pool keeping at most `max` retired buffers.
    pub(crate) const fn new(max: usize) -> Self {
        Self {
            retired: Mutex::new(VecDeque::new()),
            max,
        }
    }

    /// Before a read into `buf`, which holds unread bytes of length-prefixed frames:
    /// if it has no complete frame left and less than [`MIN_ROOM`] free, it is
    /// reclaimed in place if nothing else uses it, else swapped for a free buffer (a
    /// retired one if any is free, a new one if not) holding the same unread bytes, and
    /// retired. So what is copied is at most one partial frame. A long frame (over half
    /// a buffer) is left to grow as it must.
    pub(crate) fn ensure_room(&self, buf: &mut BytesMut) {
        if buf.capacity() - buf.len() >= MIN_ROOM
            || holds_a_frame(buf)
            || buf.len() > READ_BUF_CAPACITY / 2
        {
            return;
        }
        if buf.try_reclaim(READ_BUF_CAPACITY - buf.len()) {
            return;
        }
        let mut fresh = self.take();
        fresh.extend_from_slice(buf);
        let mut old = std::mem::replace(buf, fresh);
        old.clear();
        self.retire(old);
    }

    /// A free buffer of [`READ_BUF_CAPACITY`]: a retired one nothing else uses any
    /// more, else a new one.
    pub(crate) fn take(&self) -> BytesMut {
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        let free = retired
            .iter_mut()
            .position(|b| b.try_reclaim(READ_BUF_CAPACITY));
        match free.and_then(|i| retired.remove(i)) {
            Some(buf) => buf,
            None => BytesMut::with_capacity(READ_BUF_CAPACITY),
        }
    }

    /// Keeps `buf` (empty) for reuse, letting the oldest retired buffer go if full.
    fn retire(&self, buf: BytesMut) {
        if self.max == 0 {
            return;
        }
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        if retired.len() >= self.max {
            retired.pop_front();
        }
        retired.push_back(buf);
    }

    /// How many retired buffers are kept now.
    #[cfg(test)]
    fn retired(&self) -> usize {
        self.retired.lock().unwrap().len()
    }
}

/// Whether `buf` starts with a whole frame (a 4-byte big-endian length and that many
/// bytes).
fn holds_a_frame(buf: &[u8]) -> bool {
    match buf.get(..4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]) as usize <= buf.len() - 4,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 10 bytes of a `piece` message.
    const PARTIAL: [u8; 10] = [0, 0, 0x40, 0x09, 7, 0, 0, 0, 1, 0];

    /// A buffer filled to `len`, with a block's worth cut off the front and kept and
    /// everything else read but the start of a message, [`PARTIAL`].
    fn filled(len: usize) -> (BytesMut, bytes::Bytes) {
        let mut buf = BytesMut::with_capacity(READ_BUF_CAPACITY);
        buf.extend((0..len - PARTIAL.len()).map(|i| i as u8));
        buf.extend_from_slice(&PARTIAL);
        let block = buf.split_to(16 * 1024).freeze();
        let _ = buf.split_to(buf.len() - PARTIAL.len());
        (buf, block)
    }

    #[test]
    fn a_buffer_with_room_is_left_alone() {
        let pool = ReadBuffers::new(4);
        let mut buf = BytesMut::with_capacity(READ_BUF_CAPACITY);
        buf.extend_from_slice(&[1; 100 * 1024]);
        let _block = buf.split_to(16 * 1024).freeze();
        let at = buf.as_ptr();
        pool.ensure_room(&mut buf);
        assert_eq!(buf.as_ptr(), at);
        assert_eq!(pool.retired(), 0);
    }

    #[test]
    fn a_full_buffer_whose_blocks_are_gone_is_reclaimed_in_place() {
        let pool = ReadBuffers::new(4);
        let (mut buf, block) = filled(READ_BUF_CAPACITY - 1000);
        let start = block.as_ptr();
        drop(block);
        let tail = buf.to_vec();
        pool.ensure_room(&mut buf);
        assert_eq!(buf.as_ptr(), start, "same allocation, from its start");
        assert_eq!(&buf[..], &tail[..]);
        assert!(buf.capacity() >= READ_BUF_CAPACITY);
        assert_eq!(pool.retired(), 0);
    }

    #[test]
    fn a_full_buffer_still_in_use_is_swapped_then_reused_once_free() {
        let pool = ReadBuffers::new(4);
        let (mut buf, block) = filled(READ_BUF_CAPACITY - 1000);
        let first = block.as_ptr();
        let tail = buf.to_vec();
        pool.ensure_room(&mut buf);
        assert_ne!(buf.as_ptr(), first);
        assert_eq!(&buf[..], &tail[..], "unread bytes carried over");
        assert_eq!(pool.retired(), 1);

        // Another connection needs a buffer while the block is still held: a new one.
        let (mut other, other_block) = filled(READ_BUF_CAPACITY - 1000);
        pool.ensure_room(&mut other);
        assert_ne!(other.as_ptr(), first);
        assert_eq!(pool.retired(), 2);

        // Once the block is dropped, the first buffer is the one handed out next.
        drop(block);
        let (mut third, _third_block) = filled(READ_BUF_CAPACITY - 1000);
        pool.ensure_room(&mut third);
        assert_eq!(third.as_ptr(), first);
        assert!(third.capacity() >= READ_BUF_CAPACITY);
        drop(other_block);
    }

    #[test]
    fn the_pool_keeps_at_most_its_bound() {
        let pool = ReadBuffers::new(2);
        let mut held = Vec::new();
        for _ in 0..5 {
            let (mut buf, block) = filled(READ_BUF_CAPACITY - 1000);
            held.push(block);
            pool.ensure_room(&mut buf);
            assert!(pool.retired() <= 2);
        }
        assert_eq!(pool.retired(), 2);
    }

    #[test]
    fn a_full_buffer_with_whole_frames_left_to_decode_is_left_alone() {
        let pool = ReadBuffers::new(2);
        let mut buf = BytesMut::with_capacity(READ_BUF_CAPACITY);
        let frame = [&[0, 0, 0, 5, 4][..], &[0, 0, 0, 9]].concat(); // a `have`
        while buf.len() + frame.len() <= READ_BUF_CAPACITY {
            buf.extend_from_slice(&frame);
        }
        let at = buf.as_ptr();
        pool.ensure_room(&mut buf);
        assert_eq!(buf.as_ptr(), at, "nothing copied while frames are left");
        assert_eq!(pool.retired(), 0);
        assert!(holds_a_frame(&[0, 0, 0, 0]), "a keep-alive");
        assert!(!holds_a_frame(&[0, 0, 0, 1]));
        assert!(!holds_a_frame(&[0, 0]));
    }

    #[test]
    fn a_long_message_in_progress_is_left_to_grow() {
        let pool = ReadBuffers::new(2);
        let mut buf = BytesMut::with_capacity(READ_BUF_CAPACITY);
        buf.extend(std::iter::repeat_n(7u8, READ_BUF_CAPACITY - 100));
        let at = buf.as_ptr();
        pool.ensure_room(&mut buf);
        assert_eq!(buf.as_ptr(), at);
        assert_eq!(pool.retired(), 0);
    }
}
