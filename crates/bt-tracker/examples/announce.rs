//! Announces to (and optionally scrapes) one tracker and prints the answer.
//!
//! `cargo run -p bt-tracker --example announce -- URL INFO_HASH_HEX PORT [LEFT]`

use std::time::Duration;

use bt_meta::{InfoHash, PeerId};
use bt_tracker::{AnnounceRequest, Event, TrackerClient};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, hash, port, rest @ ..] = args.as_slice() else {
        eprintln!("usage: announce URL INFO_HASH_HEX PORT [LEFT]");
        std::process::exit(2);
    };
    let Some(info_hash) = InfoHash::from_hex(hash) else {
        eprintln!("bad info-hash {hash:?}");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("port");
    let mut id = *b"-BT0001-000000000000";
    id[8..].copy_from_slice(format!("{port:012}").as_bytes());
    let mut req = AnnounceRequest::new(info_hash, PeerId(id), port);
    req.left = rest.first().map_or(1, |l| l.parse().expect("left"));
    req.event = Event::Started;
    let client = TrackerClient::default();
    match tokio::time::timeout(Duration::from_secs(60), client.announce(url, &req)).await {
        Ok(Ok(resp)) => println!("announce: {resp:?}"),
        Ok(Err(e)) => println!("announce failed: {e}"),
        Err(_) => println!("announce: no answer in 60 s"),
    }
    match client.scrape(url, &[info_hash]).await {
        Ok(stats) => println!("scrape: {stats:?}"),
        Err(e) => println!("scrape failed: {e}"),
    }
}
