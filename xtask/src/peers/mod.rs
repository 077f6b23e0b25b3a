//! Drivers for the BitTorrent programs the fixture tests run on loopback: one module per
//! client. Each start function returns a guard that owns the process (group), kills it on
//! drop, and offers bounded waits for readiness and progress. See REAL-PEERS.md in the
//! shared folder for why the settings are what they are.

pub mod aria2;
pub mod bt;
pub mod libtorrent;
pub mod opentracker;
pub mod qbittorrent_api;
pub mod transmission;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Result;

use crate::deadline::poll_until;

/// Waits at most `timeout` until something accepts TCP connections on `addr`.
pub fn wait_listening(addr: SocketAddr, timeout: Duration) -> Result<()> {
    poll_until(timeout, &format!("a listener on {addr}"), || {
        Ok(
            TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                .ok()
                .map(drop),
        )
    })
}
