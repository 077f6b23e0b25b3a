//! Where things are: the workspace root, the target dir, the `bt` binary, the shared
//! fixtures, the peer helper scripts; and whether we run under CI.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The cargo target dir: `$CARGO_TARGET_DIR` if set, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// Build profile of the `bt` binary under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `cargo build -p bt-cli` into `target/debug`.
    Debug,
    /// `cargo build --release -p bt-cli` into `target/release`.
    Release,
}

impl Profile {
    /// The target subdirectory this profile builds into.
    pub fn dir_name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// Path of the `bt` binary built with `profile`.
pub fn bt_binary(profile: Profile) -> PathBuf {
    target_dir().join(profile.dir_name()).join("bt")
}

/// The third-party fixtures shared between projects: `<root>/../shared/fixtures`.
pub fn shared_fixtures() -> PathBuf {
    let root = workspace_root();
    root.parent()
        .unwrap_or(&root)
        .join("shared")
        .join("fixtures")
}

/// The python helper scripts that drive libtorrent: `xtask/peers/`.
pub fn peer_scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// The cargo to call back into: `$CARGO` (set by `cargo run`) or `cargo`.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// True under CI (`CI=true` or `CI=1`), where a missing external client is a failure.
pub fn is_ci() -> bool {
    matches!(
        std::env::var("CI")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Ok("true" | "1" | "yes")
    )
}

/// Finds `program` on `$PATH` (or checks it directly if it holds a `/`).
pub fn which(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exe = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_exe(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_exe(p))
}
