//! `cargo xtask sim [ARGS]`: the swarm simulator (crate `bt-sim`), built in release and run
//! with `ARGS` (`--scenario NAME --peers N --seed S --json`, ...; `--help` lists them).
//! Without arguments it runs every scenario at its defaults and prints the table.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::layout;

/// Runs `cargo xtask sim <args>`.
pub fn run(args: &[&str]) -> Result<()> {
    let status = Command::new(layout::cargo())
        .args(["run", "--quiet", "--release", "-p", "bt-sim", "--"])
        .args(args)
        .current_dir(layout::workspace_root())
        .status()
        .context("cannot start `cargo run -p bt-sim`")?;
    if !status.success() {
        bail!("bt-sim failed ({status})");
    }
    Ok(())
}
