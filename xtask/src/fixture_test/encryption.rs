//! `bt-mse-*` scenarios: encrypted connections (MSE/PE) with libtorrent and Transmission.
//!
//! libtorrent with `--encryption forced` accepts and makes only RC4-encrypted connections,
//! and Transmission with `encryption: 2` only encrypted ones, so a completed transfer with
//! them shows that bt's side of the MSE handshake and its RC4 stream interoperate.

use anyhow::Result;

use super::harness::{CHECK_TIMEOUT, TRANSFER_TIMEOUT, TRANSMISSION_TIMEOUT};
use super::torrents::{Shape, TestTorrent};
use super::{Ctx, Need, Scenario};
use crate::payload::CompareOptions;
use crate::peers::libtorrent::{LtSession, SessionOptions};
use crate::peers::transmission::TransmissionDaemon;

/// The encryption scenarios.
pub static MSE_SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "bt-mse-download-from-libtorrent-requiring-rc4",
        needs: &[Need::Libtorrent, Need::Bt("download")],
        run: |ctx| download_from_forced_libtorrent(ctx, &[]),
    },
    Scenario {
        name: "bt-mse-required-download-from-libtorrent-requiring-rc4",
        needs: &[Need::Libtorrent, Need::Bt("download")],
        run: |ctx| download_from_forced_libtorrent(ctx, &["--encryption", "required"]),
    },
    Scenario {
        name: "bt-mse-seed-to-libtorrent-requiring-rc4",
        needs: &[Need::Libtorrent, Need::Bt("seed")],
        run: seed_to_forced_libtorrent,
    },
    Scenario {
        name: "bt-mse-seed-to-transmission-requiring-encryption",
        needs: &[Need::Libtorrent, Need::Transmission, Need::Bt("seed")],
        run: seed_to_transmission_requiring_encryption,
    },
];

fn forced() -> SessionOptions {
    SessionOptions {
        forced_encryption: true,
        ..SessionOptions::default()
    }
}

/// A libtorrent seeder that takes RC4 connections only; `bt download` with `args` (by
/// default it dials in plaintext, is dropped, and dials again with MSE).
fn download_from_forced_libtorrent(ctx: &Ctx, args: &[&str]) -> Result<()> {
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, Shape::Single, &[])?;
    let mut seeder = LtSession::seed(sb, "lt-seed-rc4", &t.torrent, &t.data_dir, &forced())?;
    seeder.wait_seeding(CHECK_TIMEOUT)?;
    let out = sb.mkdir("download")?;
    let bt = ctx.bt.with_args(args);
    let mut dl = bt.download(
        sb,
        "bt-download",
        &t.torrent,
        &out,
        sb.addr()?,
        &[seeder.addr()],
    )?;
    dl.wait_success(TRANSFER_TIMEOUT)?;
    t.check_copy(&out, CompareOptions::default())?;
    let sent = seeder.fresh_status()?.total_payload_upload;
    ctx.note(format!(
        "the RC4-only libtorrent seeder sent {sent} payload bytes"
    ));
    Ok(())
}

/// `bt seed` (default policy) and a libtorrent leecher that dials with RC4 only.
fn seed_to_forced_libtorrent(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, Shape::Single, &[])?;
    let seed = ctx
        .bt
        .seed(sb, "bt-seed", &t.torrent, &t.data_dir, sb.addr()?, &[])?;
    let out = sb.mkdir("download")?;
    let opts = SessionOptions {
        peers: vec![seed.addr()],
        ..forced()
    };
    let mut lt = LtSession::download(sb, "lt-leech-rc4", &t.torrent, &out, &opts)?;
    lt.wait_seeding(TRANSFER_TIMEOUT)?;
    t.check_copy(&out, CompareOptions::default())
}

/// Transmission requiring encryption never dials loopback peers, so `bt seed` dials it:
/// in plaintext first (refused), then with MSE.
fn seed_to_transmission_requiring_encryption(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, Shape::Single, &[])?;
    let out = sb.mkdir("download")?;
    let mut tr = TransmissionDaemon::start_with_encryption(sb, "transmission-leech", &out, 2)?;
    tr.add(&t.torrent, &out)?;
    let _seed = ctx.bt.seed(
        sb,
        "bt-seed",
        &t.torrent,
        &t.data_dir,
        sb.addr()?,
        &[tr.peer_addr()],
    )?;
    tr.wait_complete(TRANSMISSION_TIMEOUT)?;
    t.check_copy(
        &out,
        CompareOptions {
            missing_empty_files_ok: true,
        },
    )
}
