//! The daemon over its qBittorrent Web API and Transmission RPC, on loopback, fed by a bt seeder.

mod api;
mod edits;
mod security;
mod trpc;
mod webui;
