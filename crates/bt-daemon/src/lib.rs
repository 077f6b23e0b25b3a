#![recursion_limit = "256"]
//! `bt daemon`: a long-lived session holding many torrents, persisted in a state folder
//! and driven over HTTP through the qBittorrent Web API v2.
//!
//! - [`daemon`]: the model (torrents, categories, tags) and its verbs, over
//!   `bt_engine::Session`;
//! - [`store`], [`record`], [`settings`]: the state folder, written atomically;
//! - [`qbt`]: the qBittorrent Web API façade (axum);
//! - [`log`]: recent messages for `log/main`.

pub mod daemon;
pub mod log;
pub mod qbt;
pub mod record;
pub mod settings;
pub mod store;

pub use daemon::{AddOptions, Daemon, DaemonConfig, DaemonError, Phase, Source, TorrentSnapshot};
pub use settings::Settings;
