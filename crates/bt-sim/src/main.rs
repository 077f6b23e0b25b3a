//! `bt-sim`: runs the swarm scenarios and prints their figures (`cargo xtask sim` runs
//! it in release).
//!
//! ```text
//! bt-sim [--scenario NAME] [--peers N] [--seed S] [--size BYTES] [--piece-len BYTES]
//!        [--up BYTES_PER_S] [--seed-up BYTES_PER_S] [--loss FRACTION]
//!        [--super-seed] [--leave-when-done] [--json]
//! ```
//!
//! With `--json` it prints one JSON object per scenario run (one line each); without, a
//! table of every scenario asked for (all of them unless `--scenario`).

use std::process::ExitCode;

use bt_sim::report::{table, Report};
use bt_sim::scenario::{Params, Scenario};

const USAGE: &str = "\
usage: bt-sim [--scenario NAME] [--peers N] [--seed S] [--size BYTES] [--piece-len BYTES]
              [--up BYTES_PER_S] [--seed-up BYTES_PER_S] [--loss FRACTION]
              [--super-seed] [--leave-when-done] [--json]
scenarios: flash-crowd heterogeneous free-riders seed-leaves churn (default: all)
defaults: --peers 100 --seed 1 --size 67108864 --piece-len 262144 --up 1048576
          (every node, the seed too, uploads at --up and downloads at 4x) --loss 0
";

fn parse(args: &[String]) -> Result<(Vec<Scenario>, Params, bool), String> {
    let mut params = Params::default();
    let mut scenarios = Scenario::ALL.to_vec();
    let mut json = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{name}: {v:?} is not a number"))
        };
        match arg.as_str() {
            "--scenario" => {
                let v = value("--scenario")?;
                let s = Scenario::parse(&v).ok_or_else(|| format!("unknown scenario {v:?}"))?;
                scenarios = vec![s];
            }
            "--peers" => params.peers = number("--peers", value("--peers")?)? as usize,
            "--seed" => params.seed = number("--seed", value("--seed")?)?,
            "--size" => params.size = number("--size", value("--size")?)?,
            "--piece-len" => {
                let v = number("--piece-len", value("--piece-len")?)?;
                params.piece_len =
                    u32::try_from(v).map_err(|_| format!("--piece-len {v} is too large"))?;
            }
            "--up" => params.up = number("--up", value("--up")?)?,
            "--seed-up" => params.seed_up = Some(number("--seed-up", value("--seed-up")?)?),
            "--loss" => {
                let v = value("--loss")?;
                params.loss = v
                    .parse::<f64>()
                    .ok()
                    .filter(|l| (0.0..1.0).contains(l))
                    .ok_or_else(|| format!("--loss {v:?} is not a fraction below 1"))?;
            }
            "--json" => json = true,
            "--super-seed" => params.super_seeding = true,
            "--leave-when-done" => params.leave_when_done = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if params.peers == 0 || params.size == 0 || params.piece_len == 0 || params.up == 0 {
        return Err("--peers, --size, --piece-len and --up must be above 0".into());
    }
    Ok((scenarios, params, json))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (scenarios, params, json) = match parse(&args) {
        Ok(p) => p,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprint!("bt-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut reports: Vec<Report> = Vec::new();
    for scenario in scenarios {
        let report = bt_sim::run(scenario, &params);
        if json {
            match serde_json::to_string(&report) {
                Ok(line) => println!("{line}"),
                Err(e) => {
                    eprintln!("bt-sim: {e}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            eprintln!(
                "bt-sim: {} done in {:.1} s of wall time",
                report.scenario, report.wall_s
            );
        }
        reports.push(report);
    }
    if !json {
        print!("{}", table(&reports));
    }
    ExitCode::SUCCESS
}
