//! Two endpoints over the simulated path in virtual time: transfers, loss, LEDBAT, MTU,
//! timeouts, closing.

use core::time::Duration;

use crate::endpoint::SplitMix64;
use crate::sim::{LinkConfig, Sim};
use crate::{CloseReason, ConnectionHandle, EndpointConfig, Event, PacketType, Stats, StreamError};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A one-way transfer of `data` from endpoint 0 to endpoint 1, then FIN both ways.
struct Transfer {
    data: Vec<u8>,
    written: usize,
    received: Vec<u8>,
    a: ConnectionHandle,
    b: Option<ConnectionHandle>,
    eof: bool,
    closed: [Option<CloseReason>; 2],
    connected_at: Option<Duration>,
    done_at: Option<Duration>,
    buf: Vec<u8>,
}

impl Transfer {
    fn start(sim: &mut Sim, data: Vec<u8>) -> Self {
        let a = sim.eps[0].connect(sim.now, sim.addrs[1]);
        Self {
            data,
            written: 0,
            received: Vec::new(),
            a,
            b: None,
            eof: false,
            closed: [None; 2],
            connected_at: None,
            done_at: None,
            buf: vec![0; 64 * 1024],
        }
    }

    /// Moves bytes in and out; true once both sides closed.
    fn pump(&mut self, sim: &mut Sim) -> bool {
        if let Some(c) = sim.eps[0].connection_mut(self.a) {
            while self.written < self.data.len() {
                match c.write(&self.data[self.written..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.written += n,
                }
            }
            if self.written == self.data.len() {
                c.close();
            }
        }
        if self.b.is_none() {
            self.b = sim.eps[1].accept();
        }
        if let Some(c) = self.b.and_then(|b| sim.eps[1].connection_mut(b)) {
            loop {
                match c.read(&mut self.buf) {
                    Ok(n) => self.received.extend_from_slice(&self.buf[..n]),
                    Err(StreamError::Finished) => {
                        self.eof = true;
                        c.close();
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        for side in 0..2 {
            while let Some((_, event)) = sim.eps[side].poll_event() {
                match event {
                    Event::Connected if side == 0 => self.connected_at = Some(sim.now),
                    Event::Closed(reason) => self.closed[side] = Some(reason),
                    _ => {}
                }
            }
        }
        let done = self.eof && self.closed.iter().all(Option::is_some);
        if done && self.done_at.is_none() {
            self.done_at = Some(sim.now);
        }
        done
    }

    fn stats(&self, sim: &Sim) -> [Stats; 2] {
        [
            sim.eps[0].connection(self.a).unwrap().stats(),
            sim.eps[1].connection(self.b.unwrap()).unwrap().stats(),
        ]
    }
}

/// Runs a transfer of `len` random bytes over `sim` and checks it arrived whole.
fn transfer(sim: &mut Sim, len: usize, timeout: Duration) -> (Transfer, Duration) {
    let start = sim.now;
    let mut t = Transfer::start(sim, random_bytes(len as u64, len));
    let done = sim.run_until(timeout, |sim| t.pump(sim));
    assert!(
        done,
        "transfer unfinished after {:?}: {} of {} bytes, closed {:?}",
        sim.now - start,
        t.received.len(),
        len,
        t.closed
    );
    assert!(t.received == t.data, "bytes differ");
    assert_eq!(t.closed, [Some(CloseReason::Finished); 2]);
    let elapsed = t.done_at.unwrap() - start;
    (t, elapsed)
}

fn rate(bytes: usize, over: Duration) -> f64 {
    bytes as f64 / over.as_secs_f64() / (1 << 20) as f64
}

#[test]
fn small_transfer_then_fin_closes_both_sides() {
    let mut sim = Sim::symmetric(1, LinkConfig::default());
    let (t, elapsed) = transfer(&mut sim, 10_000, secs(10));
    assert!(elapsed < ms(200), "{elapsed:?}");
    let [a, b] = t.stats(&sim);
    assert_eq!((a.retransmits, b.retransmits), (0, 0));
    assert_eq!(b.payload_received, 10_000);
    // Closed connections still answer a retransmitted FIN, then go quiet.
    assert_eq!(sim.eps[0].poll_timeout(), None);
    assert_eq!(sim.eps[1].poll_timeout(), None);
}

#[test]
fn several_mib_arrive_intact_under_50ms_delay_and_1pct_loss() {
    let link = LinkConfig {
        delay: ms(50),
        loss: 0.01,
        ..LinkConfig::default()
    };
    let mut sim = Sim::symmetric(2, link);
    let len = 4 << 20;
    let (t, elapsed) = transfer(&mut sim, len, secs(300));
    let [a, b] = t.stats(&sim);
    println!(
        "4 MiB over 50 ms + 1% loss: {elapsed:?} virtual, {:.2} MiB/s; sender {a:?}; receiver sent {} packets",
        rate(len, elapsed),
        b.packets_sent
    );
    assert!(a.retransmits > 0 && a.fast_losses > 0, "{a:?}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let link = LinkConfig {
            delay: ms(30),
            loss: 0.02,
            reorder: 0.1,
            jitter: ms(20),
            duplicate: 0.02,
            ..LinkConfig::default()
        };
        let mut sim = Sim::symmetric(seed, link);
        let (t, elapsed) = transfer(&mut sim, 300_000, secs(120));
        (elapsed, t.stats(&sim), sim.links[0].sent, sim.links[1].sent)
    };
    assert_eq!(run(17), run(17));
    assert_ne!(run(17), run(18));
}

#[test]
fn reordering_and_duplication_do_not_corrupt_the_stream() {
    let link = LinkConfig {
        delay: ms(20),
        reorder: 0.2,
        jitter: ms(30),
        duplicate: 0.05,
        loss: 0.005,
        ..LinkConfig::default()
    };
    let mut sim = Sim::symmetric(3, link);
    let (t, elapsed) = transfer(&mut sim, 1 << 20, secs(120));
    let [a, _] = t.stats(&sim);
    println!("1 MiB with 20% reordering, 5% duplicates: {elapsed:?}; {a:?}");
}

#[test]
fn a_lost_packet_is_resent_without_waiting_for_the_timer() {
    let mut sim = Sim::symmetric(4, LinkConfig::default());
    let mut first_data = None;
    let mut dropped = false;
    sim.links[0].filter = Some(Box::new(move |p| {
        if p.header.packet_type != PacketType::Data {
            return false;
        }
        let first = *first_data.get_or_insert(p.header.seq_nr);
        if !dropped && p.header.seq_nr == first.wrapping_add(5) {
            dropped = true;
            return true;
        }
        false
    }));
    let (t, _) = transfer(&mut sim, 200_000, secs(30));
    let [a, _] = t.stats(&sim);
    assert_eq!(sim.links[0].dropped, 1);
    assert_eq!(a.retransmits, 1, "{a:?}");
    assert_eq!(a.timeouts, 0, "{a:?}");
}

#[test]
fn selective_acks_recover_several_holes_in_one_window() {
    let mut sim = Sim::symmetric(5, LinkConfig::default());
    let mut first_data = None;
    let mut holes = vec![3u16, 7, 12, 13, 30];
    sim.links[0].filter = Some(Box::new(move |p| {
        if p.header.packet_type != PacketType::Data {
            return false;
        }
        let first = *first_data.get_or_insert(p.header.seq_nr);
        let index = p.header.seq_nr.wrapping_sub(first);
        if let Some(i) = holes.iter().position(|&h| h == index) {
            holes.remove(i);
            return true;
        }
        false
    }));
    let (t, _) = transfer(&mut sim, 300_000, secs(30));
    let [a, b] = t.stats(&sim);
    assert_eq!(sim.links[0].dropped, 5);
    assert_eq!(a.retransmits, 5, "each hole resent once: {a:?}");
    assert_eq!(a.timeouts, 0, "{a:?}");
    assert_eq!(b.payload_received, 300_000);
}

#[test]
fn a_lost_tail_is_recovered_by_the_timer_with_backoff() {
    // Nothing follows a lost FIN to reveal the loss: only the timer can.
    let mut sim = Sim::symmetric(6, LinkConfig::default());
    let mut drops = 0;
    sim.links[0].filter = Some(Box::new(move |p| {
        let drop = p.header.packet_type == PacketType::Fin && drops < 2;
        drops += u32::from(drop);
        drop
    }));
    let start = sim.now;
    let (t, elapsed) = transfer(&mut sim, 100_000, secs(30));
    let [a, _] = t.stats(&sim);
    assert_eq!(a.timeouts, 2, "{a:?}");
    assert_eq!(a.retransmits, 2, "{a:?}");
    // 500 ms (the floor over a 20 ms RTT), then 1 s.
    assert!(
        elapsed > ms(1500) && elapsed < ms(1700),
        "{elapsed:?} from {start:?}"
    );
}

#[test]
fn ledbat_keeps_queueing_delay_near_the_target_over_a_bottleneck() {
    let forward = LinkConfig {
        delay: ms(20),
        rate: Some(256 * 1024),
        queue_limit: secs(2),
        ..LinkConfig::default()
    };
    let back = LinkConfig {
        delay: ms(20),
        ..LinkConfig::default()
    };
    let mut sim = Sim::new(7, forward, back, EndpointConfig::default());
    // The receiver's clock is 30 ms short of a whole turn of the 32-bit microsecond
    // clock ahead: one-way delay samples straddle the wrap.
    sim.clocks[1] = Duration::from_micros(1 << 32) - ms(30);
    let start = sim.now;
    let mut t = Transfer::start(&mut sim, random_bytes(7, 12 << 20));
    sim.run_until(secs(40), |sim| {
        t.pump(sim);
        false
    });
    let from = start + secs(20);
    let queueing = sim.links[0].mean_queueing(from, sim.now);
    let [a, _] = t.stats(&sim);
    let got = t.received.len();
    println!(
        "bottleneck 256 KiB/s, 20 ms each way: mean queueing delay {queueing:?} after 20 s, \
         {:.1} KiB/s overall, cwnd {}, srtt {:?}, LEDBAT's estimate {:?}",
        got as f64 / 40.0 / 1024.0,
        a.cwnd,
        a.srtt,
        a.queueing_delay
    );
    assert!(
        queueing > ms(50) && queueing < ms(150),
        "queueing delay {queueing:?} should sit near the 100 ms target"
    );
    assert!(
        got as f64 > 0.8 * 256.0 * 1024.0 * 35.0,
        "the link stays busy: {got}"
    );
    assert_eq!(sim.links[0].dropped, 0, "no drops at a 2 s queue");
}

#[test]
fn ledbat_yields_to_traffic_that_fills_the_queue() {
    let forward = LinkConfig {
        delay: ms(20),
        rate: Some(256 * 1024),
        queue_limit: ms(500),
        ..LinkConfig::default()
    };
    let back = LinkConfig {
        delay: ms(20),
        ..LinkConfig::default()
    };
    let mut sim = Sim::new(8, forward, back, EndpointConfig::default());
    let mut t = Transfer::start(&mut sim, random_bytes(8, 12 << 20));
    let run = |sim: &mut Sim, t: &mut Transfer, d: Duration| {
        sim.run_until(d, |sim| {
            t.pump(sim);
            false
        });
    };
    run(&mut sim, &mut t, secs(20));
    let cwnd_alone = t.stats(&sim)[0].cwnd;
    let before = t.received.len();
    // Another flow starts and keeps the queue full, as TCP does.
    sim.links[0].config.cross_rate = 256 * 1024;
    run(&mut sim, &mut t, secs(10));
    let mid = t.received.len();
    let cross_before = sim.links[0].cross_bytes;
    run(&mut sim, &mut t, secs(20));
    let ours = t.received.len() - mid;
    let cross = sim.links[0].cross_bytes - cross_before;
    let a = t.stats(&sim)[0];
    println!(
        "alone: {:.1} KiB/s, cwnd {cwnd_alone}; beside a queue-filling flow: ours {:.1} KiB/s, \
         theirs {:.1} KiB/s, cwnd {}, queueing estimate {:?}",
        before as f64 / 20.0 / 1024.0,
        ours as f64 / 20.0 / 1024.0,
        cross as f64 / 20.0 / 1024.0,
        a.cwnd,
        a.queueing_delay
    );
    assert!(a.cwnd < cwnd_alone / 2, "cwnd {} vs {cwnd_alone}", a.cwnd);
    assert!(
        (ours as f64) < 0.2 * (ours + cross as usize) as f64,
        "ours {ours}, theirs {cross}"
    );
}

#[test]
fn two_flows_share_a_bottleneck_and_its_delay_budget() {
    let forward = LinkConfig {
        delay: ms(20),
        rate: Some(512 * 1024),
        queue_limit: secs(2),
        ..LinkConfig::default()
    };
    let back = LinkConfig {
        delay: ms(20),
        ..LinkConfig::default()
    };
    let mut sim = Sim::new(16, forward, back, EndpointConfig::default());
    let dials = [
        sim.eps[0].connect(sim.now, sim.addrs[1]),
        sim.eps[0].connect(sim.now, sim.addrs[1]),
    ];
    let chunk = vec![0x5a; 64 * 1024];
    let mut received = [0usize; 2];
    let mut accepted = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    let start = sim.now;
    sim.run_until(secs(60), |sim| {
        for &h in &dials {
            let c = sim.eps[0].connection_mut(h).unwrap();
            while c.write(&chunk).unwrap() > 0 {}
        }
        while let Some(h) = sim.eps[1].accept() {
            accepted.push(h);
        }
        for (i, &h) in accepted.iter().enumerate() {
            let c = sim.eps[1].connection_mut(h).unwrap();
            while let Ok(n) = c.read(&mut buf) {
                received[i] += n;
            }
        }
        false
    });
    let queueing = sim.links[0].mean_queueing(start + secs(30), sim.now);
    let total = (received[0] + received[1]) as f64;
    println!(
        "two flows through 512 KiB/s: {:.1} and {:.1} KiB/s, mean queueing delay {queueing:?} \
         after 30 s",
        received[0] as f64 / 60.0 / 1024.0,
        received[1] as f64 / 60.0 / 1024.0,
    );
    assert!(
        total > 0.8 * 512.0 * 1024.0 * 55.0,
        "the link stays busy: {total}"
    );
    assert!(
        received.iter().all(|&r| r as f64 > 0.2 * total),
        "neither flow starves: {received:?}"
    );
    assert!(
        queueing < ms(200),
        "both flows keep the queue near one target: {queueing:?}"
    );
}

#[test]
fn mtu_probing_finds_the_path_mtu() {
    let link = LinkConfig {
        mtu: 1400,
        ..LinkConfig::default()
    };
    let mut sim = Sim::symmetric(9, link);
    let (t, _) = transfer(&mut sim, 1 << 20, secs(60));
    let [a, _] = t.stats(&sim);
    assert!(
        a.packet_len <= 1400 && a.packet_len > 1400 - 16,
        "packet length {}",
        a.packet_len
    );
    let mut sim = Sim::symmetric(9, LinkConfig::default());
    let (t, _) = transfer(&mut sim, 1 << 20, secs(60));
    assert!(t.stats(&sim)[0].packet_len > 1452 - 16, "up to the ceiling");
}

#[test]
fn the_connection_times_out_when_the_peer_vanishes() {
    let mut sim = Sim::symmetric(10, LinkConfig::default());
    let mut t = Transfer::start(&mut sim, random_bytes(10, 4 << 20));
    sim.run_until(secs(10), |sim| {
        t.pump(sim);
        t.received.len() > 100_000
    });
    let vanished = sim.now;
    for link in &mut sim.links {
        link.config.loss = 1.0;
    }
    let mut closed_at = [None; 2];
    sim.run_until(secs(300), |sim| {
        t.pump(sim);
        for (closed, at) in t.closed.iter().zip(&mut closed_at) {
            if closed.is_some() && at.is_none() {
                *at = Some(sim.now - vanished);
            }
        }
        t.closed.iter().all(Option::is_some)
    });
    println!(
        "peer vanished: sender gave up after {:?}, receiver after {:?}",
        closed_at[0], closed_at[1]
    );
    assert_eq!(t.closed, [Some(CloseReason::TimedOut); 2]);
    assert!(closed_at[0].unwrap() < secs(130), "{closed_at:?}");
    let a = sim.eps[0].connection(t.a).unwrap();
    assert!(a.stats().timeouts >= 6);
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn a_dial_to_nobody_gives_up_after_the_syn_retransmits() {
    let link = LinkConfig {
        loss: 1.0,
        ..LinkConfig::default()
    };
    let mut sim = Sim::symmetric(11, link);
    let mut t = Transfer::start(&mut sim, vec![1; 10]);
    let start = sim.now;
    sim.run_until(secs(60), |sim| {
        t.pump(sim);
        t.closed[0].is_some()
    });
    assert_eq!(t.closed[0], Some(CloseReason::TimedOut));
    let took = sim.now - start;
    assert_eq!(sim.links[0].sent, 3, "one SYN and two retransmits");
    assert!(took >= secs(7) && took < secs(8), "1 + 2 + 4 s: {took:?}");
}

#[test]
fn idle_connections_keep_alive() {
    let mut sim = Sim::symmetric(12, LinkConfig::default());
    let a = sim.eps[0].connect(sim.now, sim.addrs[1]);
    sim.run_until(secs(600), |_| false);
    let conn = sim.eps[0].connection(a).unwrap();
    assert!(!conn.is_closed());
    let keepalives = conn.stats().packets_sent;
    assert!(
        (20..=22).contains(&keepalives),
        "one every 29 s: {keepalives}"
    );
}

#[test]
fn a_full_receive_buffer_stalls_the_sender_until_read() {
    let mut config = EndpointConfig::default();
    config.connection.recv_buffer_len = 64 * 1024;
    let mut sim = Sim::new(13, LinkConfig::default(), LinkConfig::default(), config);
    let a = sim.eps[0].connect(sim.now, sim.addrs[1]);
    let data = random_bytes(13, 300_000);
    let mut written = 0;
    sim.run_until(secs(5), |sim| {
        let c = sim.eps[0].connection_mut(a).unwrap();
        written += c.write(&data[written..]).unwrap();
        false
    });
    let b = sim.eps[1].accept().unwrap();
    let held = sim.eps[1].connection(b).unwrap().readable_len();
    assert!(
        held <= 64 * 1024 && held > 64 * 1024 - 1452,
        "the receiver holds its window, less than a packet short: {held}"
    );
    let mut received = Vec::new();
    let mut buf = vec![0; 4096];
    sim.run_until(secs(60), |sim| {
        let c = sim.eps[0].connection_mut(a).unwrap();
        written += c.write(&data[written..]).unwrap();
        let c = sim.eps[1].connection_mut(b).unwrap();
        while let Ok(n) = c.read(&mut buf) {
            received.extend_from_slice(&buf[..n]);
        }
        received.len() == data.len()
    });
    assert!(received == data);
    assert_eq!(sim.eps[0].connection(a).unwrap().stats().timeouts, 0);
}

#[test]
fn both_sides_send_at_once() {
    let link = LinkConfig {
        delay: ms(30),
        loss: 0.01,
        ..LinkConfig::default()
    };
    let mut sim = Sim::symmetric(14, link);
    let a = sim.eps[0].connect(sim.now, sim.addrs[1]);
    let data = [random_bytes(140, 500_000), random_bytes(141, 500_000)];
    let mut written = [0, 0];
    let mut received = [Vec::new(), Vec::new()];
    let mut b = None;
    let mut buf = vec![0; 8192];
    let done = sim.run_until(secs(120), |sim| {
        if b.is_none() {
            b = sim.eps[1].accept();
        }
        let handles = [Some(a), b];
        for side in 0..2 {
            let Some(c) = handles[side].and_then(|h| sim.eps[side].connection_mut(h)) else {
                continue;
            };
            written[side] += c.write(&data[side][written[side]..]).unwrap_or(0);
            while let Ok(n) = c.read(&mut buf) {
                received[side].extend_from_slice(&buf[..n]);
            }
        }
        received[0].len() == 500_000 && received[1].len() == 500_000
    });
    assert!(done);
    assert!(received[1] == data[0] && received[0] == data[1]);
}

/// CPU time of this thread, from Linux's schedstat, or wall time where there is none.
fn thread_cpu_time(wall_start: std::time::Instant) -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or_else(|| wall_start.elapsed(), Duration::from_nanos)
}

#[test]
fn throughput_per_cpu_second_on_a_clean_link() {
    let mut config = EndpointConfig::default();
    config.connection.recv_buffer_len = 4 << 20;
    config.connection.send_buffer_len = 4 << 20;
    let link = LinkConfig {
        delay: ms(1),
        ..LinkConfig::default()
    };
    let mut sim = Sim::new(15, link.clone(), link, config);
    let len: usize = if cfg!(debug_assertions) {
        8 << 20
    } else {
        512 << 20
    };
    // One random MiB written over and over, checked as it is read: the test's own work
    // stays small beside the endpoints'.
    let block = random_bytes(15, 1 << 20);
    let a = sim.eps[0].connect(sim.now, sim.addrs[1]);
    let mut b = None;
    let (mut written, mut read) = (0usize, 0usize);
    let mut buf = vec![0; 256 * 1024];
    let start = sim.now;
    let wall = std::time::Instant::now();
    let cpu_before = thread_cpu_time(wall);
    let done = sim.run_until(secs(600), |sim| {
        let c = sim.eps[0].connection_mut(a).unwrap();
        while written < len {
            let at = written % block.len();
            let end = block.len().min(at + len - written);
            match c.write(&block[at..end]) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        if b.is_none() {
            b = sim.eps[1].accept();
        }
        if let Some(c) = b.and_then(|b| sim.eps[1].connection_mut(b)) {
            while let Ok(n) = c.read(&mut buf) {
                for chunk in buf[..n].chunks(block.len()) {
                    let at = read % block.len();
                    let first = chunk.len().min(block.len() - at);
                    assert!(
                        chunk[..first] == block[at..at + first],
                        "bytes differ at {read}"
                    );
                    assert!(chunk[first..] == block[..chunk.len() - first]);
                    read += chunk.len();
                }
            }
        }
        read == len
    });
    let cpu = thread_cpu_time(wall) - cpu_before;
    assert!(done, "{read} of {len} bytes");
    let elapsed = sim.now - start;
    println!(
        "{} MiB on a 1 ms link: {:.1} MiB/s of virtual time, {:.1} MiB per CPU second for both \
         endpoints and the simulated link ({} build)",
        len >> 20,
        rate(len, elapsed),
        rate(len, cpu),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
}
