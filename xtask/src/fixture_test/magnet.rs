//! `bt-magnet-*` scenarios: magnet links, the DHT and PEX with real clients on loopback.
//!
//! - metadata from a libtorrent and from a Transmission seeder: `bt download` of a
//!   magnet link whose only peer is the seeder's `x.pe` completes byte-identical, and
//!   its `--save-torrent` file has the seeder's info-hash;
//!
//! Every `bt` here runs with `--no-dht` unless the scenario is about the DHT, and then
//! with `--dht-bootstrap` naming a loopback node only.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Result};

use super::harness::{CHECK_TIMEOUT, TRANSFER_TIMEOUT, TRANSMISSION_TIMEOUT};
use super::torrents::{Shape, TestTorrent};
use super::{Ctx, Need, Scenario};
use crate::payload::CompareOptions;
use crate::peers::libtorrent::{self, LtSession, SessionOptions};
use crate::peers::transmission::TransmissionDaemon;
use crate::process::Proc;

/// The magnet, DHT and PEX scenarios.
pub static MAGNET_SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "bt-magnet-metadata-from-libtorrent",
        needs: &[Need::Libtorrent, Need::Bt("download")],
        run: |ctx| metadata_from(ctx, Seeder::Libtorrent),
    },
    Scenario {
        name: "bt-magnet-metadata-from-transmission",
        needs: &[Need::Libtorrent, Need::Transmission, Need::Bt("download")],
        run: |ctx| metadata_from(ctx, Seeder::Transmission),
    },
];

/// Who serves the metadata and the data.
#[derive(Clone, Copy, Debug)]
enum Seeder {
    Libtorrent,
    Transmission,
}

/// A running seeder; killed on drop. Held only to keep it alive.
#[allow(dead_code)]
enum Running {
    Libtorrent(LtSession),
    Transmission(TransmissionDaemon),
}

/// `magnet:?xt=urn:btih:<hash>&dn=<name>` plus `extra` parameters (already escaped).
fn magnet_link(t: &TestTorrent, extra: &[String]) -> String {
    let mut link = format!(
        "magnet:?xt=urn:btih:{}&dn={}",
        t.info.info_hash, t.info.name
    );
    for e in extra {
        link.push('&');
        link.push_str(e);
    }
    link
}

/// Starts `bt download <link> -o <out> --listen <listen> <extra...>`.
fn bt_download(
    ctx: &Ctx,
    name: &str,
    link: &str,
    out: &Path,
    listen: SocketAddr,
    extra: &[&str],
) -> Result<Proc> {
    let mut cmd = Command::new(ctx.bt.path());
    cmd.env("RUST_BACKTRACE", "1")
        .arg("download")
        .arg(link)
        .arg("-o")
        .arg(out)
        .arg("--listen")
        .arg(listen.to_string())
        .args(extra);
    ctx.sandbox.spawn(name, &cmd)
}

/// `seeder` seeds; `bt download` of a magnet link naming only the seeder (`x.pe`) fetches
/// the metadata, completes byte-identical and saves a `.torrent` with the same info-hash.
fn metadata_from(ctx: &Ctx, seeder: Seeder) -> Result<()> {
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, Shape::MultiFile, &[])?;
    let (_running, addr, timeout) = match seeder {
        Seeder::Libtorrent => {
            let mut lt = LtSession::seed(
                sb,
                "lt-seed",
                &t.torrent,
                &t.data_dir,
                &SessionOptions::default(),
            )?;
            lt.wait_seeding(CHECK_TIMEOUT)?;
            let addr = lt.addr();
            (Running::Libtorrent(lt), addr, TRANSFER_TIMEOUT)
        }
        Seeder::Transmission => {
            let mut tr = TransmissionDaemon::start(sb, "transmission-seed", &t.data_dir)?;
            tr.add(&t.torrent, &t.data_dir)?;
            tr.wait_complete(CHECK_TIMEOUT)?;
            let addr = tr.peer_addr();
            (Running::Transmission(tr), addr, TRANSMISSION_TIMEOUT)
        }
    };
    let link = magnet_link(&t, &[format!("x.pe={addr}")]);
    let out = sb.mkdir("download")?;
    let saved = sb.path().join("saved.torrent");
    let saved_arg = saved.to_string_lossy().into_owned();
    let mut bt = bt_download(
        ctx,
        "bt-download",
        &link,
        &out,
        sb.addr()?,
        &["--no-dht", "--save-torrent", &saved_arg],
    )?;
    bt.wait_success(timeout)?;
    t.check_copy(&out, CompareOptions::default())?;
    let info = libtorrent::info(&saved)?;
    ensure!(
        info.info_hash == t.info.info_hash && info.piece_hashes == t.info.piece_hashes,
        "the saved torrent has info-hash {}, the seeder's is {}",
        info.info_hash,
        t.info.info_hash
    );
    Ok(())
}
