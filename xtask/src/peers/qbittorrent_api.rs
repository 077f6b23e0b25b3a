//! The `qbittorrent-api` package from PyPI: a third-party client of the qBittorrent Web
//! API, installed in a virtual environment that `.ci/run` makes (`/usr/bin/python3 -m venv`,
//! then `pip install qbittorrent-api`). Its place is `$XTASK_QBT_VENV`, else
//! `<target dir>/venv-qbt`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::layout;
use crate::process;

/// The environment variable naming the venv (`.ci/run` sets it).
pub const VENV_VAR: &str = "XTASK_QBT_VENV";

/// The venv's folder.
pub fn venv() -> PathBuf {
    match std::env::var_os(VENV_VAR).filter(|v| !v.is_empty()) {
        Some(dir) => layout::workspace_root().join(dir),
        None => layout::target_dir().join("venv-qbt"),
    }
}

/// The venv's python.
pub fn python() -> PathBuf {
    venv().join("bin").join("python")
}

/// The installed package's version, if the venv's python imports `qbittorrentapi`
/// (checked once per run).
pub fn version() -> Option<String> {
    static VERSION: OnceLock<Option<String>> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            let mut cmd = Command::new(python());
            cmd.args([
                "-c",
                "import importlib.metadata, qbittorrentapi; \
                 print(importlib.metadata.version('qbittorrent-api'))",
            ]);
            process::run("qbittorrent-api check", &cmd, Duration::from_secs(30))
                .ok()
                .map(|out| out.trim().to_owned())
                .filter(|v| !v.is_empty())
        })
        .clone()
}
