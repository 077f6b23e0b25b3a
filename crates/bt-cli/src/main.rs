//! `bt`: the command-line BitTorrent client.
//!
//! Each subcommand is a module with an `Args` struct (clap) and a
//! `run(Args) -> anyhow::Result<()>`; adding one is a variant of [`Command`] plus its
//! module. Errors are printed as one line, `error: <what>: <problem>`, with exit
//! status 2. Logs go to stderr, filtered by `RUST_LOG` (default: warnings).

mod create;
mod daemon;
mod demo;
mod dht;
mod download;
mod encryption;
mod format;
mod info;
mod magnet;
mod progress;
mod remote;
mod seed;
mod tracker;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A BitTorrent client.
#[derive(Parser)]
#[command(name = "bt", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
enum Command {
    /// Show what a .torrent file or a magnet link holds.
    Info(info::Args),
    /// Create a .torrent from a file or a folder.
    Create(create::Args),
    /// Download a torrent from the given peers (and keep seeding with --seed).
    Download(download::Args),
    /// Check data against a torrent, then serve it to peers until interrupted.
    Seed(seed::Args),
    /// Check which pieces of downloaded data are intact.
    Verify(verify::Args),
    /// Run a seeder and a few leechers on 127.0.0.1 in a temporary folder.
    Demo(demo::Args),
    /// Query the DHT: ping a node, look up a torrent's peers.
    Dht(dht::Args),
    /// Run a tracker (HTTP /announce, /scrape and UDP on one port) until interrupted.
    Tracker(tracker::Args),
    /// Run a long-lived session holding many torrents, driven through the qBittorrent Web
    /// API.
    Daemon(daemon::Args),
    /// Add torrents to a running daemon and print their info-hashes.
    Add(remote::add::Args),
    /// List a running daemon's torrents.
    Ls(remote::list::Args),
    /// Show one of a running daemon's torrents: properties, files, trackers.
    Show(remote::show::Args),
    /// Stop torrents in a running daemon.
    Stop(remote::control::Targets),
    /// Start torrents in a running daemon.
    Start(remote::control::Targets),
    /// Remove torrents from a running daemon (and their files with --delete-data).
    Rm(remote::control::RmArgs),
    /// Change the category and tags of torrents in a running daemon.
    Set(remote::set::Args),
}

/// Exit status for any error.
const EXIT_ERROR: u8 = 2;

fn init_logging(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// A bug should still end in one line and the error status, not a backtrace.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error (a bug in bt): {msg}{place}");
        std::process::exit(EXIT_ERROR.into());
    }));
}

fn main() -> ExitCode {
    install_panic_hook();
    let cli = Cli::parse();
    // A daemon's log is how its user sees what it does.
    init_logging(if matches!(cli.command, Command::Daemon(_)) {
        "info"
    } else {
        "warn"
    });
    let result = match cli.command {
        Command::Info(args) => info::run(args),
        Command::Create(args) => create::run(args),
        Command::Download(args) => download::run(args),
        Command::Seed(args) => seed::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Dht(args) => dht::run(args),
        Command::Tracker(args) => tracker::run(args),
        Command::Daemon(args) => daemon::run(args),
        Command::Add(args) => remote::add::run(args),
        Command::Ls(args) => remote::list::run(args),
        Command::Show(args) => remote::show::run(args),
        Command::Stop(args) => remote::control::stop(args),
        Command::Start(args) => remote::control::start(args),
        Command::Rm(args) => remote::control::remove(args),
        Command::Set(args) => remote::set::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format::error_line(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
