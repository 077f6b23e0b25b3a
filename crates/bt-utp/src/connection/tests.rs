//! One connection driven by hand: the handshake's fields, hostile packets, buffers.

use super::*;

fn t(ms: u64) -> Duration {
    Duration::from_secs(100) + Duration::from_millis(ms)
}

fn transmit(conn: &mut Connection, now: Duration) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    conn.poll_transmit(now, &mut buf).map(|_| buf)
}

fn header_of(datagram: &[u8]) -> Header {
    Packet::decode(datagram).unwrap().header
}

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// A client (recv id 100, first seq 5000) and a server (first seq 9000) after the
/// handshake.
fn pair() -> (Connection, Connection) {
    let mut client = Connection::connect(t(0), Config::default(), 100, 5000);
    let syn = transmit(&mut client, t(0)).unwrap();
    let mut server = Connection::accept(t(10), Config::default(), &header_of(&syn), 9000);
    let state = transmit(&mut server, t(10)).unwrap();
    client.handle_datagram(t(20), &state).unwrap();
    (client, server)
}

#[test]
fn the_handshake_follows_bep_29() {
    let mut client = Connection::connect(t(0), Config::default(), 100, 5000);
    let syn = transmit(&mut client, t(0)).unwrap();
    let h = header_of(&syn);
    assert_eq!(
        (h.packet_type, h.connection_id, h.seq_nr, h.ack_nr),
        (PacketType::Syn, 100, 5000, 0)
    );
    assert_eq!(
        transmit(&mut client, t(0)),
        None,
        "one SYN until the timer fires"
    );
    let mut server = Connection::accept(t(10), Config::default(), &h, 9000);
    assert_eq!((server.recv_id(), server.send_id()), (101, 100));
    assert_eq!(events(&mut server), [Event::Connected]);
    let state = transmit(&mut server, t(10)).unwrap();
    let h = header_of(&state);
    assert_eq!(
        (h.packet_type, h.connection_id, h.seq_nr, h.ack_nr),
        (PacketType::State, 100, 9000, 5000),
        "a STATE carries the next sequence number and acknowledges the SYN"
    );
    assert_eq!(h.timestamp_difference_micros, 10_000, "the SYN took 10 ms");
    client.handle_datagram(t(20), &state).unwrap();
    assert_eq!(events(&mut client), [Event::Connected]);
    assert_eq!(client.stats().srtt, Some(Duration::from_millis(20)));

    assert_eq!(client.write(b"hello").unwrap(), 5);
    let data = transmit(&mut client, t(20)).unwrap();
    let p = Packet::decode(&data).unwrap();
    assert_eq!(
        (
            p.header.packet_type,
            p.header.connection_id,
            p.header.seq_nr,
            p.header.ack_nr
        ),
        (PacketType::Data, 101, 5001, 8999)
    );
    assert_eq!(p.payload, b"hello");
    server.handle_datagram(t(30), &data).unwrap();
    assert_eq!(events(&mut server), [Event::Readable]);
    let mut buf = [0; 16];
    assert_eq!(server.read(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(server.read(&mut buf), Err(StreamError::Blocked));
    let ack = header_of(&transmit(&mut server, t(30)).unwrap());
    assert_eq!(
        (ack.packet_type, ack.seq_nr, ack.ack_nr),
        (PacketType::State, 9000, 5001)
    );
}

#[test]
fn a_retransmitted_syn_is_acknowledged_again() {
    let mut client = Connection::connect(t(0), Config::default(), 100, 5000);
    let syn = transmit(&mut client, t(0)).unwrap();
    let mut server = Connection::accept(t(10), Config::default(), &header_of(&syn), 9000);
    transmit(&mut server, t(10)).unwrap(); // lost
    client.handle_timeout(t(1000));
    let again = transmit(&mut client, t(1000)).unwrap();
    assert_eq!(again, {
        let mut s = syn.clone();
        s[4..8].copy_from_slice(&micros(t(1000)).to_be_bytes());
        s
    });
    server.handle_datagram(t(1010), &again).unwrap();
    let state = transmit(&mut server, t(1010)).unwrap();
    client.handle_datagram(t(1020), &state).unwrap();
    assert_eq!(events(&mut client), [Event::Connected]);
    assert_eq!(
        client.stats().srtt,
        None,
        "no sample from a retransmitted packet"
    );
}

fn encode(header: Header, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Packet {
        header,
        sack: None,
        payload,
    }
    .encode(&mut out);
    out
}

#[test]
fn hostile_packets_are_rejected_and_change_nothing() {
    let (mut client, mut server) = pair();
    let good = Header {
        packet_type: PacketType::Data,
        connection_id: 101,
        timestamp_micros: 0,
        timestamp_difference_micros: 0,
        wnd_size: 1 << 20,
        seq_nr: 5001,
        ack_nr: 8999,
    };
    let mut bad_version = encode(good, b"x");
    bad_version[0] = 0x02;
    let mut huge_extension = encode(good, b"xyz");
    huge_extension[1] = 1;
    huge_extension.splice(20..20, [0, 255]);
    let cases: Vec<(Vec<u8>, Error)> = vec![
        (bad_version, Error::Version { version: 2 }),
        (
            huge_extension,
            Error::ExtensionLength {
                extension: 1,
                len: 255,
                offset: 20,
                left: 3,
            },
        ),
        (
            encode(
                Header {
                    connection_id: 7,
                    ..good
                },
                b"x",
            ),
            Error::ConnectionId {
                got: 7,
                expected: 101,
            },
        ),
        (
            encode(
                Header {
                    ack_nr: 9000,
                    ..good
                },
                b"x",
            ),
            Error::AckOfUnsent {
                ack_nr: 9000,
                next_seq: 9000,
            },
        ),
        (
            encode(
                Header {
                    packet_type: PacketType::Syn,
                    connection_id: 100,
                    seq_nr: 1234,
                    ..good
                },
                b"",
            ),
            Error::Unexpected {
                packet_type: PacketType::Syn,
                state: "connected",
            },
        ),
        (vec![0x41; 3], Error::TooShort { len: 3 }),
    ];
    events(&mut server);
    let before = server.stats();
    for (datagram, error) in cases {
        assert_eq!(server.handle_datagram(t(30), &datagram), Err(error));
    }
    assert_eq!(server.stats(), before);
    assert_eq!(transmit(&mut server, t(30)), None, "nothing to acknowledge");
    assert!(events(&mut server).is_empty());
    // The connection still works.
    client.write(b"ok").unwrap();
    let data = transmit(&mut client, t(40)).unwrap();
    server.handle_datagram(t(50), &data).unwrap();
    let mut buf = [0; 4];
    assert_eq!(server.read(&mut buf), Ok(2));
}

#[test]
fn a_reset_closes_the_connection() {
    let (mut client, mut server) = pair();
    events(&mut client);
    client.write(b"pending").unwrap();
    server.abort();
    assert_eq!(
        events(&mut server),
        [Event::Connected, Event::Closed(CloseReason::Aborted)]
    );
    let reset = transmit(&mut server, t(30)).unwrap();
    let h = header_of(&reset);
    assert_eq!((h.packet_type, h.connection_id), (PacketType::Reset, 100));
    assert_eq!(transmit(&mut server, t(30)), None);
    // A RESET acknowledging what the client never sent is not believed.
    let mut blind = reset.clone();
    blind[18..20].copy_from_slice(&5005u16.to_be_bytes());
    assert_eq!(
        client.handle_datagram(t(40), &blind),
        Err(Error::AckOfUnsent {
            ack_nr: 5005,
            next_seq: 5001,
        })
    );
    client.handle_datagram(t(40), &reset).unwrap();
    assert_eq!(events(&mut client), [Event::Closed(CloseReason::Reset)]);
    assert_eq!(
        client.write(b"x"),
        Err(StreamError::Closed(CloseReason::Reset))
    );
    assert_eq!(
        client.read(&mut [0; 4]),
        Err(StreamError::Closed(CloseReason::Reset))
    );
    assert_eq!(transmit(&mut client, t(40)), None);
    assert_eq!(client.poll_timeout(), None);
    assert_eq!(client.handle_datagram(t(50), &reset), Err(Error::Closed));
}

#[test]
fn writes_are_bounded_by_the_send_buffer() {
    let config = Config {
        send_buffer_len: 3000,
        ..Config::default()
    };
    let mut client = Connection::connect(t(0), config, 100, 5000);
    let syn = transmit(&mut client, t(0)).unwrap();
    let mut server = Connection::accept(t(10), Config::default(), &header_of(&syn), 9000);
    client
        .handle_datagram(t(20), &transmit(&mut server, t(10)).unwrap())
        .unwrap();
    events(&mut client);
    assert_eq!(client.write(&[7; 5000]), Ok(3000));
    assert_eq!(client.write(&[7; 10]), Ok(0));
    let mut now = t(20);
    while !client.events.contains(&Event::Writable) {
        now += Duration::from_millis(10);
        while let Some(d) = transmit(&mut client, now) {
            server.handle_datagram(now, &d).unwrap();
        }
        while let Some(d) = transmit(&mut server, now) {
            client.handle_datagram(now, &d).unwrap();
        }
        assert!(now < t(1000));
    }
    assert_eq!(client.unacked_len(), 0);
    assert_eq!(client.write(&[7; 5000]), Ok(3000));
    client.close();
    assert_eq!(client.write(b"x"), Err(StreamError::WriteClosed));
}

#[test]
fn early_packets_wait_in_the_reorder_buffer_within_the_window() {
    let config = Config {
        recv_buffer_len: 2500,
        ..Config::default()
    };
    let mut client = Connection::connect(t(0), Config::default(), 100, 5000);
    let syn = transmit(&mut client, t(0)).unwrap();
    let mut server = Connection::accept(t(10), config, &header_of(&syn), 9000);
    transmit(&mut server, t(10)).unwrap();
    let data = |seq: u16, len: usize| {
        encode(
            Header {
                packet_type: PacketType::Data,
                connection_id: 101,
                timestamp_micros: 0,
                timestamp_difference_micros: 0,
                wnd_size: 1 << 20,
                seq_nr: seq,
                ack_nr: 8999,
            },
            &vec![seq as u8; len],
        )
    };
    server.handle_datagram(t(20), &data(5003, 1000)).unwrap();
    server.handle_datagram(t(20), &data(5004, 1000)).unwrap();
    server.handle_datagram(t(20), &data(5005, 1000)).unwrap(); // past the window: dropped
    server
        .handle_datagram(t(20), &data(5001 + 8000, 1))
        .unwrap(); // past the reorder limit
    let ack = transmit(&mut server, t(20)).unwrap();
    let p = Packet::decode(&ack).unwrap();
    assert_eq!(p.header.ack_nr, 5000);
    assert_eq!(p.header.wnd_size, 500);
    assert_eq!(p.sack.unwrap().offsets().collect::<Vec<_>>(), [1, 2]);
    server.handle_datagram(t(30), &data(5001, 200)).unwrap();
    server.handle_datagram(t(30), &data(5002, 300)).unwrap();
    let mut buf = vec![0; 4000];
    assert_eq!(server.read(&mut buf), Ok(2500));
    assert_eq!(
        &buf[..2500],
        [&[0x89; 200][..], &[0x8a; 300], &[0x8b; 1000], &[0x8c; 1000]].concat()
    );
    let ack = header_of(&transmit(&mut server, t(30)).unwrap());
    assert_eq!((ack.ack_nr, ack.wnd_size), (5004, 2500));
}

#[test]
fn fin_ends_the_stream_after_the_bytes_before_it() {
    let (mut client, mut server) = pair();
    client.write(b"last words").unwrap();
    client.close();
    let data = transmit(&mut client, t(30)).unwrap();
    let fin = transmit(&mut client, t(30)).unwrap();
    assert_eq!(header_of(&fin).packet_type, PacketType::Fin);
    // Data past the end, then the FIN overtaking the data before it.
    let mut beyond = data.clone();
    beyond[16..18].copy_from_slice(&5003u16.to_be_bytes());
    server.handle_datagram(t(40), &beyond).unwrap();
    assert_eq!(server.reorder_bytes, 10);
    server.handle_datagram(t(40), &fin).unwrap();
    assert_eq!(server.reorder_bytes, 0, "dropped at the FIN");
    let mut buf = [0; 32];
    assert_eq!(server.read(&mut buf), Err(StreamError::Blocked));
    server.handle_datagram(t(40), &data).unwrap();
    assert_eq!(server.read(&mut buf), Ok(10));
    assert_eq!(server.read(&mut buf), Err(StreamError::Finished));
    server.close();
    while let Some(d) = transmit(&mut server, t(50)) {
        client.handle_datagram(t(60), &d).unwrap();
    }
    while let Some(d) = transmit(&mut client, t(60)) {
        server.handle_datagram(t(70), &d).unwrap();
    }
    assert_eq!(client.close_reason(), Some(CloseReason::Finished));
    assert_eq!(server.close_reason(), Some(CloseReason::Finished));
    // A FIN sent again (our ACK was lost) is acknowledged again.
    client.handle_datagram(t(80), &fin).unwrap_err();
    server.handle_datagram(t(80), &fin).unwrap();
    assert_eq!(
        header_of(&transmit(&mut server, t(80)).unwrap()).packet_type,
        PacketType::State
    );
}

/// Moves datagrams between two connections until neither sends; returns the bytes read.
fn exchange(a: &mut Connection, b: &mut Connection, now: &mut Duration, read: &mut Vec<u8>) {
    let mut buf = vec![0; 65536];
    loop {
        *now += Duration::from_millis(5);
        let mut moved = false;
        while let Some(d) = transmit(a, *now) {
            b.handle_datagram(*now, &d).unwrap();
            moved = true;
        }
        while let Some(d) = transmit(b, *now) {
            a.handle_datagram(*now, &d).unwrap();
            moved = true;
        }
        while let Ok(n) = b.read(&mut buf) {
            read.extend_from_slice(&buf[..n]);
        }
        if !moved {
            return;
        }
    }
}

#[test]
fn sequence_numbers_wrap() {
    let mut now = t(0);
    let mut client = Connection::connect(now, Config::default(), 0xffff, 0xfff0);
    assert_eq!(client.send_id(), 0, "the send id wraps too");
    let syn = transmit(&mut client, now).unwrap();
    let mut server = Connection::accept(now, Config::default(), &header_of(&syn), 0xffe0);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut written = 0;
    let mut read = Vec::new();
    while read.len() < data.len() {
        written += client.write(&data[written..]).unwrap();
        exchange(&mut client, &mut server, &mut now, &mut read);
        assert!(now < t(60_000));
    }
    assert!(read == data);
    assert!(client.seq_nr < 0x1000, "crossed zero: {}", client.seq_nr);
}

#[test]
fn a_lost_syn_ack_costs_no_data_sent_meanwhile() {
    let mut client = Connection::connect(t(0), Config::default(), 100, 5000);
    let syn = transmit(&mut client, t(0)).unwrap();
    let mut server = Connection::accept(t(10), Config::default(), &header_of(&syn), 9000);
    server.write(b"first").unwrap();
    let _lost_state = transmit(&mut server, t(10)).unwrap();
    let first = transmit(&mut server, t(10)).unwrap();
    server.write(b"second").unwrap();
    let second = transmit(&mut server, t(10)).unwrap();
    assert_eq!(header_of(&second).seq_nr, 9001);
    // Data before the handshake's STATE does not open the connection.
    let refused = Error::Unexpected {
        packet_type: PacketType::Data,
        state: "syn-sent",
    };
    assert_eq!(client.handle_datagram(t(20), &second), Err(refused));
    client.handle_timeout(t(1000));
    let again = transmit(&mut client, t(1000)).unwrap();
    server.handle_datagram(t(1010), &again).unwrap();
    let state = transmit(&mut server, t(1010)).unwrap();
    assert_eq!(
        header_of(&state).seq_nr,
        9000,
        "the first packet not acknowledged"
    );
    client.handle_datagram(t(1020), &state).unwrap();
    client.handle_datagram(t(1020), &second).unwrap();
    client.handle_datagram(t(1020), &first).unwrap();
    let mut buf = [0; 32];
    assert_eq!(client.read(&mut buf), Ok(11));
    assert_eq!(&buf[..11], b"firstsecond");
}
