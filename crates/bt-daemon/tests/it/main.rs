//! The daemon over its qBittorrent Web API, on loopback, fed by a bt seeder.

mod api;
mod edits;
