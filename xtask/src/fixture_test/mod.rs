//! `cargo xtask fixture-test [--debug | --bt PATH] [FILTER]`: scenarios against real
//! BitTorrent clients on loopback.
//!
//! A [`Scenario`] has a name, the programs it [`Need`]s and a function returning
//! `Result`. Each runs in its own [`Sandbox`] (temp dir, ports,
//! logs) and prints one line: `ok`, `FAIL: reason` or `SKIP: reason`. A missing external
//! client is a loud skip, and a failure under `CI=true`; a `bt` subcommand that does not
//! exist yet is a skip everywhere. The run ends with the line
//! `fixture-test: N passed, M failed, K skipped`.
//!
//! Scenario lists: [`harness::SCENARIOS`] (the harness and the external clients alone) and
//! [`bt::BT_SCENARIOS`] (our `bt` against them). To add one, write a
//! `fn(&Ctx) -> Result<()>` next to its kind and add a [`Scenario`] entry to the list.
//! Set `XTASK_KEEP_TMP=1` to keep a failed scenario's temp dir (logs in `logs/`).
//!
//! `--bt PATH` tests another binary instead of building `bt`; with
//! `xtask/peers/reference_bt.py` (the planned CLI on top of libtorrent) it checks that
//! the `bt-*` scenarios can pass.

mod bt;
mod daemon;
mod doors;
mod encryption;
mod harness;
mod magnet;
mod reliability;
mod scenario;
mod torrents;
mod trackers;
mod transmission_remote;
pub(crate) mod webui;

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub use scenario::{Ctx, Need, Scenario};

use crate::layout::{self, Profile};
use crate::peers::bt::Bt;
use crate::sandbox::Sandbox;

/// Command-line options of `fixture-test`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Run only scenarios whose name contains this.
    pub filter: Option<String>,
    /// Which build of `bt` to test.
    pub profile: Profile,
    /// Test this binary instead of building `bt`.
    pub bt: Option<PathBuf>,
}

impl Options {
    /// Parses `[--debug | --release | --bt PATH] [FILTER]`.
    pub fn parse(args: &[&str]) -> Result<Self> {
        let mut opts = Options {
            filter: None,
            profile: Profile::Release,
            bt: None,
        };
        let mut args = args.iter().copied();
        while let Some(arg) = args.next() {
            match arg {
                "--debug" => opts.profile = Profile::Debug,
                "--release" => opts.profile = Profile::Release,
                "--bt" => {
                    let path = args.next().context("--bt needs a path")?;
                    let path = std::path::absolute(path)
                        .with_context(|| format!("bad --bt path {path:?}"))?;
                    opts.bt = Some(path);
                }
                flag if flag.starts_with('-') => bail!("unknown fixture-test option {flag:?}"),
                filter if opts.filter.is_none() => opts.filter = Some(filter.to_owned()),
                extra => bail!("unexpected fixture-test argument {extra:?}"),
            }
        }
        Ok(opts)
    }
}

/// Counts of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Scenarios that passed.
    pub passed: usize,
    /// Scenarios that failed (including unmet needs under CI).
    pub failed: usize,
    /// Scenarios skipped.
    pub skipped: usize,
}

impl Summary {
    /// The closing line, exactly `fixture-test: N passed, M failed, K skipped`.
    pub fn line(&self) -> String {
        format!(
            "fixture-test: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }

    /// An error if anything failed.
    pub fn into_result(self) -> Result<()> {
        if self.failed > 0 {
            bail!("{} fixture scenario(s) failed", self.failed);
        }
        Ok(())
    }
}

/// All scenarios, in run order.
pub fn scenarios() -> Vec<&'static Scenario> {
    harness::SCENARIOS
        .iter()
        .chain(bt::BT_SCENARIOS)
        .chain(trackers::TRACKER_SCENARIOS)
        .chain(magnet::MAGNET_SCENARIOS)
        .chain(encryption::MSE_SCENARIOS)
        .chain(reliability::RELIABILITY_SCENARIOS)
        .chain(daemon::DAEMON_SCENARIOS)
        .chain(transmission_remote::TRANSMISSION_REMOTE_SCENARIOS)
        .chain(doors::DOORS_SCENARIOS)
        .chain(webui::WEBUI_SCENARIOS)
        .collect()
}

/// Ends the skip reason of a scenario whose external client is missing.
const NOT_INSTALLED: &str = " not installed  <<<<<<<<<< (a FAIL under CI=true)";

/// How one scenario ended.
enum Outcome {
    /// Passed, with the scenario's notes.
    Passed(Vec<String>),
    Failed(String),
    Skipped(String),
}

/// Runs the selected scenarios, printing one line each and the summary line.
pub fn run(opts: &Options) -> Result<Summary> {
    let selected: Vec<&Scenario> = scenarios()
        .into_iter()
        .filter(|s| opts.filter.as_deref().is_none_or(|f| s.name.contains(f)))
        .collect();
    if selected.is_empty() {
        bail!(
            "no fixture scenario matches {:?}",
            opts.filter.as_deref().unwrap_or("")
        );
    }
    let ci = layout::is_ci();
    let bt = Bt::new(
        opts.bt
            .clone()
            .unwrap_or_else(|| layout::bt_binary(opts.profile)),
    );
    let needs_bt = selected
        .iter()
        .any(|s| s.needs.iter().any(|n| matches!(n, Need::Bt(_))));
    let bt_build = if needs_bt && opts.bt.is_none() {
        build_bt(opts.profile).map_err(|e| format!("{e:#}"))
    } else {
        Ok(())
    };

    println!(
        "fixture-test: {} scenario(s){}; bt = {}; temp dirs under {}",
        selected.len(),
        if ci {
            " (CI: missing clients fail)"
        } else {
            ""
        },
        bt.path().display(),
        std::env::temp_dir().display()
    );
    let width = selected.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut summary = Summary::default();
    let mut not_installed = Vec::new();
    for scenario in selected {
        print!("{:<width$}  ", scenario.name);
        let _ = std::io::stdout().flush();
        let started = Instant::now();
        let outcome = run_one(scenario, &bt, &bt_build, ci);
        let took = format_duration(started.elapsed());
        match outcome {
            Outcome::Passed(notes) if notes.is_empty() => {
                summary.passed += 1;
                println!("ok ({took})");
            }
            Outcome::Passed(notes) => {
                summary.passed += 1;
                println!("ok ({took}): {}", notes.join("; "));
            }
            Outcome::Failed(reason) => {
                summary.failed += 1;
                let mut lines = reason.lines();
                println!("FAIL: {} ({took})", lines.next().unwrap_or(""));
                for line in lines {
                    println!("    {line}");
                }
            }
            Outcome::Skipped(reason) => {
                summary.skipped += 1;
                println!("SKIP: {reason}");
                if let Some(what) = reason.strip_suffix(NOT_INSTALLED) {
                    not_installed.push(what.to_owned());
                }
            }
        }
    }
    if !not_installed.is_empty() {
        not_installed.sort();
        not_installed.dedup();
        println!(
            "fixture-test: WARNING: scenarios skipped because these are not installed: {} \
             (.ci/run installs them: apt packages and a pip venv)",
            not_installed.join(", ")
        );
    }
    println!("{}", summary.line());
    Ok(summary)
}

/// Checks the needs, then runs the scenario in a fresh sandbox, catching panics.
fn run_one(scenario: &Scenario, bt: &Bt, bt_build: &Result<(), String>, ci: bool) -> Outcome {
    for need in scenario.needs {
        if let Need::Bt(_) = need {
            if let Err(err) = bt_build {
                return Outcome::Failed(format!("cannot build bt: {err}"));
            }
        }
        if let Some(unmet) = need.check(bt) {
            return match unmet {
                scenario::Unmet::NotInstalled(what) if ci => Outcome::Failed(format!(
                    "{what} not installed (CI=true requires it; .ci/run installs it)"
                )),
                scenario::Unmet::NotInstalled(what) => {
                    Outcome::Skipped(format!("{what}{NOT_INSTALLED}"))
                }
                scenario::Unmet::NotImplemented(what) => {
                    Outcome::Skipped(format!("{what} not implemented yet"))
                }
            };
        }
    }
    let sandbox = match Sandbox::new(scenario.name) {
        Ok(sandbox) => sandbox,
        Err(err) => return Outcome::Failed(format!("{err:#}")),
    };
    let ctx = Ctx {
        sandbox,
        bt,
        notes: Default::default(),
    };
    let result = catch_unwind(AssertUnwindSafe(|| (scenario.run)(&ctx)));
    let failure = match result {
        Ok(Ok(())) => return Outcome::Passed(ctx.notes.take()),
        Ok(Err(err)) => format!("{err:#}"),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            format!("panicked: {msg}")
        }
    };
    let mut report = failure;
    report.push('\n');
    report.push_str(&ctx.sandbox.log_tails(15));
    if std::env::var_os("XTASK_KEEP_TMP").is_some() {
        let kept = ctx.sandbox.keep();
        report.push_str(&format!("temp dir kept: {}\n", kept.display()));
    }
    Outcome::Failed(report.trim_end().to_owned())
}

/// `cargo build [--release] -p bt-cli`, once per run.
fn build_bt(profile: Profile) -> Result<()> {
    let mut cmd = Command::new(layout::cargo());
    cmd.args(["build", "-p", "bt-cli"])
        .current_dir(layout::workspace_root());
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    println!("fixture-test: building bt ({})", profile.dir_name());
    let started = Instant::now();
    let status = cmd.status().context("cannot run cargo build")?;
    if !status.success() {
        bail!("`cargo build -p bt-cli` failed ({status})");
    }
    println!(
        "fixture-test: bt built in {}",
        format_duration(started.elapsed())
    );
    Ok(())
}

fn format_duration(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn summary_line_has_the_exact_format() {
        let summary = Summary {
            passed: 3,
            failed: 1,
            skipped: 2,
        };
        assert_eq!(
            summary.line(),
            "fixture-test: 3 passed, 1 failed, 2 skipped"
        );
        assert!(summary.into_result().is_err());
        assert!(Summary::default().into_result().is_ok());
    }

    #[test]
    fn options_parse() {
        let opts = Options::parse(&["--debug", "harness"]).unwrap();
        assert_eq!(opts.profile, Profile::Debug);
        assert_eq!(opts.filter.as_deref(), Some("harness"));
        assert_eq!(Options::parse(&[]).unwrap().profile, Profile::Release);
        assert!(Options::parse(&["--bogus"]).is_err());
        assert!(Options::parse(&["a", "b"]).is_err());
        let opts = Options::parse(&["--bt", "/x/bt", "seed"]).unwrap();
        assert_eq!(opts.bt.as_deref(), Some(std::path::Path::new("/x/bt")));
        assert_eq!(opts.filter.as_deref(), Some("seed"));
        assert!(Options::parse(&["--bt"]).is_err());
    }

    #[test]
    fn scenario_names_are_unique_and_kebab_case() {
        let mut seen = HashSet::new();
        for s in scenarios() {
            assert!(seen.insert(s.name), "duplicate scenario {}", s.name);
            assert!(
                s.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn harness_scenarios_never_need_bt_and_bt_scenarios_always_do() {
        let needs_bt = |s: &Scenario| s.needs.iter().any(|n| matches!(n, Need::Bt(_)));
        assert!(harness::SCENARIOS.iter().all(|s| !needs_bt(s)));
        assert!(bt::BT_SCENARIOS.iter().all(needs_bt));
        assert!(harness::SCENARIOS
            .iter()
            .all(|s| !s.name.starts_with("bt-")));
    }
}
