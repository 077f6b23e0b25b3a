//! Where a torrent's peers come from, besides the ones it is given: its trackers
//! ([`announce`]), the DHT ([`dht`]) and, for a magnet link, the metadata fetch
//! ([`magnet`]). The [`Session`](crate::Session) starts and stops them; PEX lives inside
//! each torrent's state machine.

pub mod announce;
pub mod dht;
pub mod magnet;
