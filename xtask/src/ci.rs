//! `cargo xtask ci`: the checks CI runs, in order, stopping at the first failure.
//!
//! Build profile of the fixture tests: `cargo test` builds the workspace in the dev
//! profile, and the fixture tests build `bt` once more in release. Measured: the release
//! build of bt-cli and its dependencies costs about 4.5 CPU-minutes (about 2.5 minutes on
//! 2 idle cores), while a debug `bt` hashes 64 MiB in 4.1 s against 0.17 s in release.
//! The scenarios push several hundred MiB through `bt` (the swarm alone hashes 320 MiB on
//! 2 cores) and measure what a seed uploads, so a debug `bt` would both cost about as much
//! time as the build saves and distort the swarm's timing. CI budget: the whole
//! pipeline should stay under 30 minutes on 2 cores.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::corpus;
use crate::fixture_test;
use crate::layout::{self, Profile};

/// One cargo invocation of the pipeline.
struct Step {
    /// Arguments after `cargo`.
    args: &'static [&'static str],
    /// Extra environment for this step only.
    env: &'static [(&'static str, &'static str)],
}

const STEPS: &[Step] = &[
    Step {
        args: &["fmt", "--all", "--", "--check"],
        env: &[],
    },
    Step {
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        env: &[],
    },
    Step {
        args: &["test", "--workspace"],
        env: &[],
    },
    Step {
        args: &["doc", "--workspace", "--no-deps"],
        env: &[("RUSTDOCFLAGS", "-D warnings")],
    },
];

/// Runs the whole pipeline.
pub fn run() -> Result<()> {
    let started = Instant::now();
    for step in STEPS {
        let shown = format!("cargo {}", step.args.join(" "));
        let env: String = step
            .env
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\" "))
            .collect();
        section(&format!("{env}{shown}"));
        let t = Instant::now();
        let status = Command::new(layout::cargo())
            .args(step.args)
            .envs(step.env.iter().copied())
            .current_dir(layout::workspace_root())
            .status()
            .with_context(|| format!("cannot start `{shown}`"))?;
        if !status.success() {
            bail!("ci: step `{shown}` failed ({status})");
        }
        println!("ci: `{shown}` ok in {:.0?}", t.elapsed());
    }

    section("cargo xtask corpus");
    corpus().context("ci: step `cargo xtask corpus` failed")?;

    section("cargo xtask fixture-test");
    let opts = fixture_test::Options {
        filter: None,
        profile: Profile::Release,
        bt: None,
    };
    let summary = fixture_test::run(&opts)?;
    summary
        .into_result()
        .context("ci: step `cargo xtask fixture-test` failed")?;
    println!("ci: all steps passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Runs the shared third-party fixtures through our parsers ([`corpus::run`]). Without
/// `../shared/fixtures` it is a loud skip, and a failure under CI.
pub fn corpus() -> Result<()> {
    let dir = layout::shared_fixtures();
    if !dir.is_dir() {
        if layout::is_ci() {
            bail!(
                "shared fixtures not found at {} (CI=true requires them)",
                dir.display()
            );
        }
        println!(
            "corpus: SKIP: shared fixtures not found at {}  <<<<<<<<<<",
            dir.display()
        );
        return Ok(());
    }
    let summary = corpus::run(&dir)?;
    println!("corpus: {summary}");
    Ok(())
}

/// Prints a section header that stands out in CI logs.
fn section(title: &str) {
    println!("\n==> {title}");
}
