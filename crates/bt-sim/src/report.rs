//! What a run measured, against the fluid lower bound of Kumar and Ross.
//!
//! For a file of F bytes, a seed uploading at u_s and N leechers downloading at most
//! d_min and uploading u_i in all, no schedule finishes everyone before
//! T* = max(F/u_s, F/d_min, N·F/(u_s + Σu_i)): the seed must send every byte once, the
//! slowest leecher must receive them, and all N copies must go through the uplinks.
//! Free riders upload nothing, so their capacity is left out of Σu_i. The efficiency of a
//! run is T*/T_last, T_last being when the last leecher finished (measured from the
//! start, which keeps T* a lower bound when leechers arrive over time too).

use serde::Serialize;

use crate::network::{Outcome, Role};
use crate::scenario::{Params, Scenario};

/// One scenario's figures; the JSON object `cargo xtask sim --json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: &'static str,
    /// Leechers.
    pub peers: usize,
    /// The simulation's seed.
    pub seed: u64,
    /// The torrent's size.
    pub size_bytes: u64,
    /// Its piece length.
    pub piece_len: u32,
    /// The fluid lower bound T*, seconds.
    pub bound_s: f64,
    /// When the last leecher finished, seconds from the start.
    pub last_finish_s: f64,
    /// T* / T_last.
    pub efficiency: f64,
    /// T* over when the last contributing (not free-riding) leecher finished.
    pub contributor_efficiency: f64,
    /// What the seed uploaded, in copies of the torrent.
    pub seed_upload_copies: f64,
    /// Mean time from joining to finishing, seconds.
    pub mean_finish_s: f64,
    /// 95th percentile of the same.
    pub p95_finish_s: f64,
    /// The first leecher's time from joining to finishing, seconds.
    pub first_finish_s: f64,
    /// The median of the same.
    pub median_finish_s: f64,
    /// When every piece had reached some leecher (the seed's first copy was out),
    /// seconds from the start.
    pub all_pieces_out_s: Option<f64>,
    /// Free riders' mean finishing time over the contributors' (`None`: no free riders).
    pub free_rider_slowdown: Option<f64>,
    /// Leechers that never finished (the run hit its time limit).
    pub unfinished: usize,
    /// Events simulated.
    pub events: u64,
    /// Wall-clock seconds the run took.
    pub wall_s: f64,
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// The `q` quantile (0..=1) of sorted `xs`, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Report {
    /// The figures of `outcome`, a run of `scenario` with `params`.
    pub fn new(scenario: Scenario, params: &Params, outcome: &Outcome, wall_s: f64) -> Report {
        let f = params.size as f64;
        let leechers: Vec<_> = outcome
            .nodes
            .iter()
            .filter(|n| n.role != Role::Seed)
            .collect();
        let seeds: Vec<_> = outcome
            .nodes
            .iter()
            .filter(|n| n.role == Role::Seed)
            .collect();
        let u_s: f64 = seeds.iter().map(|n| n.up as f64).sum();
        let u_sum: f64 = leechers
            .iter()
            .filter(|n| n.role == Role::Leecher)
            .map(|n| n.up as f64)
            .sum();
        let d_min = leechers
            .iter()
            .map(|n| n.down as f64)
            .fold(f64::INFINITY, f64::min);
        let n = leechers.len() as f64;
        let bound_s = (f / u_s).max(f / d_min).max(n * f / (u_s + u_sum));
        let durations = |role: Option<Role>| -> Vec<f64> {
            leechers
                .iter()
                .filter(|l| role.is_none_or(|r| l.role == r))
                .filter_map(|l| l.finished_s.map(|t| t - l.joined_s))
                .collect()
        };
        let mut all = durations(None);
        all.sort_by(f64::total_cmp);
        let last_of = |role: Option<Role>| {
            leechers
                .iter()
                .filter(|l| role.is_none_or(|r| l.role == r))
                .filter_map(|l| l.finished_s)
                .fold(0.0, f64::max)
        };
        let unfinished = leechers.iter().filter(|l| l.finished_s.is_none()).count();
        let last_finish_s = if unfinished > 0 {
            outcome.end_s
        } else {
            last_of(None)
        };
        let last_contributor = last_of(Some(Role::Leecher));
        let riders = durations(Some(Role::FreeRider));
        let contributors = durations(Some(Role::Leecher));
        Report {
            scenario: scenario.name(),
            peers: params.peers,
            seed: params.seed,
            size_bytes: params.size,
            piece_len: params.piece_len,
            bound_s,
            last_finish_s,
            efficiency: bound_s / last_finish_s,
            contributor_efficiency: bound_s / last_contributor,
            seed_upload_copies: seeds.iter().map(|s| s.uploaded as f64).sum::<f64>() / f,
            mean_finish_s: mean(&all),
            p95_finish_s: quantile(&all, 0.95),
            first_finish_s: quantile(&all, 0.0),
            median_finish_s: quantile(&all, 0.5),
            all_pieces_out_s: outcome.all_pieces_out_s,
            free_rider_slowdown: (!riders.is_empty()).then(|| mean(&riders) / mean(&contributors)),
            unfinished,
            events: outcome.events,
            wall_s,
        }
    }
}

/// The reports as a table, one row per scenario.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<14} {:>5} {:>8} {:>8} {:>6} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>7}\n",
        "scenario",
        "peers",
        "bound s",
        "last s",
        "eff",
        "seed x",
        "mean s",
        "p95 s",
        "first s",
        "out s",
        "rider x",
        "events",
        "wall s"
    ));
    for r in reports {
        let out_s = r
            .all_pieces_out_s
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}"));
        let rider = r
            .free_rider_slowdown
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"));
        out.push_str(&format!(
            "{:<14} {:>5} {:>8.1} {:>8.1} {:>6.3} {:>7.2} {:>8.1} {:>8.1} {:>8.1} {:>8} {:>9} {:>8} {:>7.1}{}\n",
            r.scenario,
            r.peers,
            r.bound_s,
            r.last_finish_s,
            r.efficiency,
            r.seed_upload_copies,
            r.mean_finish_s,
            r.p95_finish_s,
            r.first_finish_s,
            out_s,
            rider,
            r.events,
            r.wall_s,
            if r.unfinished > 0 {
                format!("  ({} unfinished)", r.unfinished)
            } else {
                String::new()
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(quantile(&xs, 0.0), 1.0);
        assert_eq!(quantile(&xs, 0.5), 5.0);
        assert_eq!(quantile(&xs, 0.95), 10.0);
        assert_eq!(quantile(&xs, 1.0), 10.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
        assert_eq!(mean(&xs), 5.5);
    }
}
