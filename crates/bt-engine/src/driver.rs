//! The tokio side: sockets, disk threads, timers and channels. It makes no decisions of
//! its own; it carries out what the [`crate::proto`] state machines ask for.
//!
//! - [`torrent`]: the task that runs a torrent's state machine, and its handle;
//! - [`transport`]: where connections come from (TCP), and the one dial path;
//! - [`peer`]: a connection's reader and writer tasks;
//! - [`encryption`]: MSE/PE over a socket and the RC4 stream;
//! - [`disk`]: a torrent's writer, hasher and syncer threads (with [`reorder`]);
//! - [`upload`]: batched reads of blocks to serve; [`readbuf`]: pooled read buffers;
//! - [`metadata`]: fetching a magnet link's metadata from peers.

pub(crate) mod disk;
pub(crate) mod encryption;
pub(crate) mod metadata;
pub(crate) mod peer;
pub(crate) mod ratelimit;
pub(crate) mod readbuf;
pub(crate) mod reorder;
pub(crate) mod torrent;
pub(crate) mod transport;
pub(crate) mod upload;
