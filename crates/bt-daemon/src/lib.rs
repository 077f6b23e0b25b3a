#![recursion_limit = "256"]
//! `bt daemon`: a long-lived session holding many torrents, persisted in a state folder
//! and driven over HTTP through the qBittorrent Web API v2 and Transmission's RPC.
//!
//! - [`daemon`]: the model (torrents, categories, tags) and its verbs, over
//!   `bt_engine::Session`;
//! - [`store`], [`record`], [`settings`]: the state folder, written atomically;
//! - [`qbt`]: the qBittorrent Web API façade (axum), and [`credentials`] guarding it;
//! - [`trpc`]: the Transmission RPC façade, at `/transmission/rpc` on the same port;
//! - [`priorities`], [`queue`], [`share`], [`speed`]: file priorities, queueing, share
//!   limits and the global speed limits, as qBittorrent defines them;
//! - [`relocate`]: moving data to another folder;
//! - [`watch`]: the watch folder;
//! - [`log`]: recent messages for `log/main`.

pub mod credentials;
pub mod daemon;
pub mod log;
pub mod priorities;
pub mod qbt;
pub mod queue;
pub mod record;
pub mod relocate;
pub mod server;
pub mod settings;
pub mod share;
pub mod speed;
pub mod store;
pub mod trpc;
pub mod watch;

pub use daemon::{
    AddOptions, Changes, Daemon, DaemonConfig, DaemonError, Phase, Shown, Source, TorrentSnapshot,
    Totals,
};
pub use settings::Settings;
