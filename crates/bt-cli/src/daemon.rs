//! `bt daemon`: runs a [`bt_daemon::Daemon`] in the foreground with its Web API.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use bt_daemon::{Daemon, DaemonConfig, Settings};

use crate::download::{runtime, stop_signal};

/// Arguments of `bt daemon`.
#[derive(clap::Args)]
pub struct Args {
    /// The state folder: settings, torrents, categories [default: $XDG_DATA_HOME/bt, or
    /// ~/.local/share/bt].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Where torrents are saved by default [settings file, else ~/Downloads].
    #[arg(long, value_name = "DIR")]
    download_dir: Option<PathBuf>,
    /// The address peers connect to [settings file, else 0.0.0.0:6881].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The Web API's address (loopback only) [settings file, else 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    api: Option<SocketAddr>,
    /// Do not run the DHT.
    #[arg(long)]
    no_dht: bool,
    /// DHT nodes to join through instead of the public routers.
    #[arg(long, value_name = "HOST:PORT")]
    dht_bootstrap: Vec<String>,
    /// The watch folder: .torrent and .magnet files dropped there are added (a sub-folder
    /// names the category) [settings file: scan_dir].
    #[arg(long, value_name = "DIR")]
    watch: Option<PathBuf>,
}

/// The default state folder: `$XDG_DATA_HOME/bt`, else `~/.local/share/bt`.
fn default_state_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("bt"));
    }
    let home = std::env::var_os("HOME").context("neither XDG_DATA_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".local/share/bt"))
}

/// Runs the daemon until SIGINT, SIGTERM or `app/shutdown`.
pub fn run(args: Args) -> Result<()> {
    let state_dir = std::path::absolute(match args.state_dir {
        Some(d) => d,
        None => default_state_dir()?,
    })?;
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("state folder {}", state_dir.display()))?;
    let settings_path = state_dir.join("settings.json");
    let mut settings = Settings::load(&settings_path)?;
    if !settings_path.exists() {
        settings.save(&settings_path)?;
    }
    if let Some(d) = args.download_dir {
        settings.save_path = std::path::absolute(d)?;
    }
    if let Some(l) = args.listen {
        settings.listen = l;
    }
    if let Some(a) = args.api {
        settings.api = a;
    }
    if let Some(w) = args.watch {
        settings.scan_dir = Some(std::path::absolute(w)?);
    }
    if args.no_dht {
        settings.dht = false;
    }
    if !args.dht_bootstrap.is_empty() {
        settings.dht_bootstrap = Some(args.dht_bootstrap);
    }
    let api_addr = settings.api;
    bt_daemon::qbt::may_listen(api_addr, &settings)?;
    // A TLS identity that does not load is a fatal error before anything starts.
    bt_daemon::server::tls_acceptor(&settings)?;
    let scheme = if settings.use_https { "https" } else { "http" };
    let rt = runtime()?;
    rt.block_on(async move {
        let stop = stop_signal();
        let listener = tokio::net::TcpListener::bind(api_addr)
            .await
            .with_context(|| format!("cannot listen for the API on {api_addr}"))?;
        let daemon = Daemon::start(DaemonConfig {
            state_dir: state_dir.clone(),
            settings,
        })
        .await?;
        eprintln!(
            "bt daemon: state in {}, peers on {}, API on {scheme}://{}",
            state_dir.display(),
            daemon.peer_addr(),
            listener.local_addr()?
        );
        let server = tokio::spawn(bt_daemon::qbt::serve(daemon.clone(), listener));
        tokio::select! {
            r = stop => r?,
            _ = daemon.shutdown_requested() => {}
        }
        daemon.request_shutdown();
        match server.await {
            Ok(r) => r.context("API server")?,
            Err(e) => return Err(anyhow::anyhow!("API server task: {e}")),
        }
        daemon.shutdown().await;
        eprintln!("bt daemon: stopped");
        Ok(())
    })
}
