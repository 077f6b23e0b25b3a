//! Project automation, run as `cargo xtask <command>`:
//!
//! - `ci`: fmt, clippy, test, doc, corpus, then the fixture tests; stops at the first
//!   failure.
//! - `fixture-test [--debug | --bt PATH] [FILTER]`: scenarios against real BitTorrent
//!   clients on loopback (libtorrent, Transmission, aria2, opentracker) and against `bt`.
//! - `corpus`: the shared third-party fixtures through bt-bencode and bt-meta.
//! - `bench [--quick] [--micro] ...`: bt against other clients on loopback, or the
//!   criterion micro-benches (`cargo xtask bench --help`); `bench parse`: what loading
//!   a `.torrent` costs, beside libtorrent; `bench daemon`: bt daemon, qbittorrent-nox
//!   and transmission-daemon holding many torrents.
//! - `sim [ARGS]`: the swarm simulator in release (`cargo xtask sim --help`).
//!
//! Map: [`ci`] the CI pipeline; [`corpus`] the shared-fixtures corpus check;
//! [`fixture_test`] the scenario runner and the scenarios; [`peers`] one driver per
//! external client; [`process`] child-process guards; [`sandbox`] a scenario's temp dir
//! and ports; [`payload`] deterministic test data; [`http`] a tiny loopback HTTP client;
//! [`bdecode`] minimal bencode for checks; [`layout`] where things are in the workspace;
//! [`sim`] runs the swarm simulator.

mod bdecode;
mod bench;
mod ci;
mod corpus;
mod deadline;
mod fixture_test;
mod http;
mod layout;
mod payload;
mod peers;
mod process;
mod sandbox;
mod sim;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                             fmt, clippy, test, doc, corpus, fixture-test
                                 (stops at the first failure)
  fixture-test [--debug | --bt PATH] [FILTER]
                                 run real-peer scenarios whose name contains FILTER
                                 (--debug: test a debug build of bt instead of release;
                                 --bt PATH: test PATH, e.g. xtask/peers/reference_bt.py)
  corpus                         run ../shared/fixtures through bt-bencode and bt-meta
  bench [--quick | --micro | --help ...]
                                 bt against libtorrent, aria2, Transmission on
                                 loopback (table + target/bench/*.json); --micro:
                                 the criterion micro-benches
  bench parse [--files N] [--runs N]
                                 Metainfo::from_bytes, `bt info` and libtorrent
                                 on a torrent of a million one-byte files and a
                                 typical one: time, peak memory, resident bytes
  bench daemon [--torrents N] [--idle-secs S] [--help ...]
                                 bt daemon, qbittorrent-nox and transmission-daemon
                                 given N small torrents through their APIs: add,
                                 idle, list, restart (table + target/bench/*.json)
  sim [--scenario NAME] [--peers N] [--seed S] [--json] [--help ...]
                                 the swarm simulator: bt-engine's core for N
                                 peers in virtual time (table, or JSON lines)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["ci"] => ci::run(),
        ["fixture-test", rest @ ..] => fixture_test::Options::parse(rest).and_then(|opts| {
            let summary = fixture_test::run(&opts)?;
            summary.into_result()
        }),
        ["corpus"] => ci::corpus(),
        ["bench", rest @ ..] => bench::run(rest),
        ["sim", rest @ ..] => sim::run(rest),
        ["help" | "--help" | "-h"] => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
