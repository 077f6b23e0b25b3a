//! `cargo xtask bench`: placeholder until the benchmark suite exists.

use anyhow::{bail, Result};

/// Runs the benchmarks; not written yet, so it always fails.
pub fn run() -> Result<()> {
    println!("bench: not yet implemented");
    bail!("bench not yet implemented")
}
