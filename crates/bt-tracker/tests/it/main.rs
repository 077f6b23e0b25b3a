//! Cross-module tests: our clients against our server, hostile servers and dead
//! ports, all on 127.0.0.1.

mod hostile_http;
mod hostile_udp;
mod loopback;
mod server_limits;
mod swarm_time;

use std::net::SocketAddr;
use std::time::Duration;

use bt_meta::{InfoHash, PeerId};
use bt_tracker::{
    AnnounceRequest, HttpConfig, ServerConfig, TrackerClient, TrackerConfig, TrackerServer,
    UdpConfig,
};

/// Aborts a spawned fake server when the test ends, pass or fail.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Limits small enough that failing cases end in a second or two.
pub fn fast_config() -> TrackerConfig {
    TrackerConfig {
        http: HttpConfig {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_millis(1500),
            ..HttpConfig::default()
        },
        udp: UdpConfig {
            base_timeout: Duration::from_millis(50),
            max_tries: 3,
            ..UdpConfig::default()
        },
    }
}

/// A client with [`fast_config`].
pub fn client() -> TrackerClient {
    TrackerClient::new(fast_config())
}

/// An announce for torrent `[1; 20]` from peer `[id; 20]` listening on `port`.
pub fn request(id: u8, port: u16) -> AnnounceRequest {
    let mut r = AnnounceRequest::new(InfoHash([1; 20]), PeerId([id; 20]), port);
    r.left = 100;
    r
}

/// A loopback port with nothing listening (TCP and UDP): bound, then released.
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// A loopback UDP port with nothing bound: bound, then released.
pub fn closed_udp_port() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    drop(s);
    addr
}

/// Our own tracker on 127.0.0.1 with a 5 s interval.
pub async fn loopback_server() -> TrackerServer {
    let config = ServerConfig {
        interval: Duration::from_secs(5),
        ..ServerConfig::default()
    };
    TrackerServer::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}
