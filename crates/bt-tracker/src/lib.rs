//! Tracker clients (HTTP BEP 3/23/7/48, UDP BEP 15, multitracker BEP 12), an
//! announce scheduler, and a built-in tracker.
//!
//! Client side:
//! - [`TrackerClient`] announces and scrapes to any `http://`, `https://` or `udp://`
//!   URL (it holds an [`HttpTracker`] on `ureq`, run on tokio's blocking pool, and a
//!   [`UdpTracker`] on a tokio `UdpSocket`). Requests are [`AnnounceRequest`]s,
//!   answers [`AnnounceResponse`]s and [`ScrapeStats`].
//! - [`Tiers`] orders a torrent's trackers (BEP 12) and walks them until one answers,
//!   returning a [`Walk`] with the answer and every failure on the way.
//! - [`AnnounceSchedule`] decides when to announce and with which [`Event`]: a sans-I/O
//!   state machine with an explicit clock.
//!
//! Server side:
//! - [`TrackerServer`] serves HTTP and UDP on one port, keeping peers in [`Swarms`]
//!   (sans-I/O, explicit clock, bounded).
//!
//! Codecs are pure functions, usable on their own: [`http`] (URLs, response bodies),
//! [`udp`] (packets), [`compact`] (peer lists), [`httpd`] (the server's request parsing).
//!
//! Wiring, in short:
//! ```no_run
//! # async fn demo(info_hash: bt_meta::InfoHash, peer_id: bt_meta::PeerId) {
//! use bt_tracker::{AnnounceRequest, Event, Tiers, TrackerClient};
//! let client = TrackerClient::default();
//! let mut tiers = Tiers::new(Some("udp://tracker.example:6969"), &[], &mut rand::thread_rng());
//! let mut req = AnnounceRequest::new(info_hash, peer_id, 6881);
//! req.event = Event::Started;
//! let walk = tiers.announce(&client, &req).await;
//! for (url, err) in &walk.errors {
//!     eprintln!("{url}: {err}");
//! }
//! if let Some((url, resp)) = walk.answered {
//!     println!("{url} gave {} peers", resp.peers.len());
//! }
//! # }
//! ```
//!
//! Not done here: peer connections, DHT and PEX, WebSocket trackers, BEP 41 URL data
//! in UDP announces, host names in dictionary peers (skipped), and announcing to
//! every tier at once (the walk stops at the first answer, as BEP 12 says).

pub mod announce;
pub mod client;
pub mod compact;
pub mod error;
pub mod http;
pub mod httpd;
pub mod schedule;
pub mod server;
pub mod swarm;
pub mod tiers;
pub mod udp;

pub use announce::{AnnounceRequest, AnnounceResponse, Event, Peer, ScrapeStats};
pub use client::{Scheme, TrackerClient, TrackerConfig};
pub use error::{Error, Result};
pub use http::{HttpConfig, HttpTracker};
pub use schedule::{AnnounceSchedule, ScheduleConfig};
pub use server::{ServerConfig, TrackerServer};
pub use swarm::{SwarmAnnounce, SwarmConfig, SwarmReply, Swarms};
pub use tiers::{Tiers, Walk};
pub use udp::{UdpConfig, UdpTracker};
