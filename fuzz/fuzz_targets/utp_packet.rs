//! uTP (`bt_utp`): arbitrary bytes as one packet, then as a run of datagrams fed to a
//! dialing connection, an accepting connection with data in flight, and an endpoint.
//!
//! The input is a sequence of chunks `[flags, len, bytes...]`: `flags` picks the target,
//! advances virtual time, and may patch the connection id so packets reach the state
//! machine instead of being refused at the door.
//!
//! Then the same bytes drive a network between a real client and server: for each
//! datagram one input byte says drop, hold back, duplicate or deliver, and how much time
//! passes.
//!
//! Checks: no panic (the connections check their own invariants in debug builds); what
//! decodes re-encodes to a datagram that decodes the same and is no longer; every
//! datagram the state machines send decodes; what the fuzzer's datagrams make the
//! accepting side read never exceeds its receive buffer; over the chosen network, what
//! the server reads is always exactly a prefix of what the client wrote.
#![no_main]

use core::net::SocketAddr;
use core::time::Duration;

use bt_utp::{Config, Connection, Endpoint, EndpointConfig, Packet};
use libfuzzer_sys::fuzz_target;

fn drain(conn: &mut Connection, now: Duration, buf: &mut Vec<u8>) {
    for _ in 0..64 {
        if conn.poll_transmit(now, buf).is_none() {
            break;
        }
        assert!(Packet::decode(buf).is_ok(), "we sent an undecodable packet");
    }
    while conn.poll_event().is_some() {}
    let mut read = [0u8; 4096];
    let mut total = 0;
    while let Ok(n) = conn.read(&mut read) {
        total += n;
        assert!(total <= Config::default().recv_buffer_len);
    }
}

/// The byte the client writes at stream offset `i`.
fn pattern(i: usize) -> u8 {
    (i * 31 + i / 1021) as u8
}

/// A client and a server over a network the input controls; checks stream integrity.
fn lossy_exchange(data: &[u8]) {
    let mut now = Duration::from_secs(5000);
    let mut buf = Vec::new();
    let mut client = Connection::connect(now, Config::default(), 7, 60_000);
    client.poll_transmit(now, &mut buf).expect("a dial starts with a SYN");
    let syn = Packet::decode(&buf).expect("our SYN decodes").header;
    let mut server = Connection::accept(now, Config::default(), &syn, 65_000);
    let (mut written, mut read) = (0, 0);
    let mut chunk = Vec::with_capacity(4096);
    let mut held: Vec<(bool, Vec<u8>)> = Vec::new();
    let mut out = [0u8; 8192];
    let mut decisions = data.iter().copied();
    for _ in 0..2000 {
        let Some(d) = decisions.next() else { break };
        now += Duration::from_millis(u64::from(d >> 2));
        chunk.clear();
        chunk.extend((written..written + 4096).map(pattern));
        written += client.write(&chunk).unwrap_or(0);
        let mut sent = Vec::new();
        while client.poll_transmit(now, &mut buf).is_some() {
            sent.push((true, buf.clone()));
        }
        while server.poll_transmit(now, &mut buf).is_some() {
            sent.push((false, buf.clone()));
        }
        let mut deliver = std::mem::take(&mut held);
        for (to_server, datagram) in sent {
            match decisions.next().unwrap_or(3) & 3 {
                0 => {}
                1 => held.push((to_server, datagram)),
                2 => {
                    deliver.push((to_server, datagram.clone()));
                    deliver.push((to_server, datagram));
                }
                _ => deliver.push((to_server, datagram)),
            }
        }
        for (to_server, datagram) in deliver {
            let target = if to_server { &mut server } else { &mut client };
            let _ = target.handle_datagram(now, &datagram);
        }
        client.handle_timeout(now);
        server.handle_timeout(now);
        while let Ok(n) = server.read(&mut out) {
            for &byte in &out[..n] {
                assert_eq!(byte, pattern(read), "stream corrupted at {read}");
                read += 1;
            }
        }
        while client.poll_event().is_some() {}
        while server.poll_event().is_some() {}
    }
    assert!(read <= written);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::decode(data) {
        let mut out = Vec::new();
        packet.encode(&mut out);
        assert_eq!(Packet::decode(&out), Ok(packet));
        assert!(out.len() <= data.len());
    }

    let mut now = Duration::from_secs(1000);
    let mut buf = Vec::new();
    let mut client = Connection::connect(now, Config::default(), 100, 5000);
    client.poll_transmit(now, &mut buf).expect("a dial starts with a SYN");
    let syn = Packet::decode(&buf).expect("our SYN decodes").header;
    let mut server = Connection::accept(now, Config::default(), &syn, 9000);
    server.write(&[7; 20_000]).expect("fresh connection takes data");
    drain(&mut server, now, &mut buf);
    let mut endpoint = Endpoint::new(EndpointConfig::default(), 7);
    let peer = SocketAddr::from(([192, 0, 2, 1], 6881));
    endpoint.connect(now, peer);

    let mut rest = data;
    while let [flags, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let mut datagram = tail[..len].to_vec();
        rest = &tail[len..];
        now += Duration::from_millis(u64::from(flags >> 3) * 37);
        let target = flags & 3;
        if flags & 4 != 0 && datagram.len() >= 4 {
            let id: u16 = if target == 0 { 100 } else { 101 };
            datagram[2..4].copy_from_slice(&id.to_be_bytes());
        }
        match target {
            0 => {
                let _ = client.handle_datagram(now, &datagram);
                client.handle_timeout(now);
                drain(&mut client, now, &mut buf);
            }
            1 | 2 => {
                let _ = server.handle_datagram(now, &datagram);
                server.handle_timeout(now);
                let _ = server.write(&[8; 3000]);
                drain(&mut server, now, &mut buf);
            }
            _ => {
                let _ = endpoint.handle_datagram(now, peer, &datagram);
                endpoint.handle_timeout(now);
                for _ in 0..256 {
                    if endpoint.poll_transmit(now, &mut buf).is_none() {
                        break;
                    }
                    assert!(Packet::decode(&buf).is_ok());
                }
                while endpoint.poll_event().is_some() {}
                while let Some(h) = endpoint.accept() {
                    let _ = endpoint.connection_mut(h).map(|c| c.write(b"hi"));
                }
            }
        }
    }

    lossy_exchange(data);
});
