//! The scenarios: who is in the swarm, with which links, arriving when.
//!
//! Links are DSL-like: a leecher downloads four times as fast as it uploads. Unless a
//! scenario says otherwise every node, the seed included, uploads at
//! [`Params::up`] (1 MiB/s) and downloads at four times that.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::network::{NodeSpec, Role, SimConfig};

/// A named scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// One seed, N leechers joining at once, equal links.
    FlashCrowd,
    /// One seed and N leechers joining at once, with upload rates that grow with the node
    /// number (from a quarter of [`Params::up`] to twice it), as libtorrent's
    /// simulations do.
    Heterogeneous,
    /// A flash crowd where 20% of the leechers never upload.
    FreeRiders,
    /// A flash crowd whose seed leaves once it has uploaded one copy.
    SeedLeaves,
    /// Leechers arrive over time (exponential gaps, over about twice the time one
    /// download takes alone) and leave when done; the seed stays.
    Churn,
}

impl Scenario {
    /// Every scenario, in the order the table shows them.
    pub const ALL: [Scenario; 5] = [
        Scenario::FlashCrowd,
        Scenario::Heterogeneous,
        Scenario::FreeRiders,
        Scenario::SeedLeaves,
        Scenario::Churn,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::FlashCrowd => "flash-crowd",
            Scenario::Heterogeneous => "heterogeneous",
            Scenario::FreeRiders => "free-riders",
            Scenario::SeedLeaves => "seed-leaves",
            Scenario::Churn => "churn",
        }
    }

    /// The scenario of that name.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The swarm of this scenario for `params`.
    pub fn build(self, params: &Params) -> (SimConfig, Vec<NodeSpec>) {
        let mut rng = StdRng::seed_from_u64(params.seed ^ 0x5CE7_A410);
        let config = SimConfig {
            size: params.size,
            piece_len: params.piece_len,
            seed: params.seed,
            loss: params.loss,
            leave_when_done: self == Scenario::Churn || params.leave_when_done,
            seed_leaves_after: (self == Scenario::SeedLeaves).then_some(1.0),
            ..SimConfig::default()
        };
        let mut config = config;
        config.torrent.super_seeding = params.super_seeding;
        let up = params.up;
        let node = |role, up: u64, join_at| NodeSpec {
            role,
            up,
            down: 4 * up,
            join_at,
        };
        let n = params.peers;
        let mut nodes = vec![node(
            Role::Seed,
            params.seed_up.unwrap_or(up),
            Duration::ZERO,
        )];
        match self {
            Scenario::FlashCrowd | Scenario::SeedLeaves => {
                nodes.extend((0..n).map(|_| node(Role::Leecher, up, Duration::ZERO)));
            }
            Scenario::Heterogeneous => {
                // From up/4 for the first leecher to 2*up for the last.
                nodes.extend((0..n).map(|i| {
                    let step = (7 * up / 4) * i as u64 / n.max(2).saturating_sub(1) as u64;
                    node(Role::Leecher, up / 4 + step, Duration::ZERO)
                }));
            }
            Scenario::FreeRiders => {
                let riders = n / 5;
                let mut roles: Vec<Role> = (0..n)
                    .map(|i| {
                        if i < riders {
                            Role::FreeRider
                        } else {
                            Role::Leecher
                        }
                    })
                    .collect();
                roles.shuffle(&mut rng);
                nodes.extend(roles.into_iter().map(|r| node(r, up, Duration::ZERO)));
            }
            Scenario::Churn => {
                let alone = params.size as f64 / up as f64;
                let mean_gap = 2.0 * alone / n.max(1) as f64;
                let mut at = 0.0;
                for _ in 0..n {
                    nodes.push(node(Role::Leecher, up, Duration::from_secs_f64(at)));
                    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
                    at += -mean_gap * u.ln();
                }
            }
        }
        (config, nodes)
    }
}

/// The knobs every scenario takes.
#[derive(Clone, Debug)]
pub struct Params {
    /// Leechers.
    pub peers: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// The torrent's size in bytes.
    pub size: u64,
    /// Its piece length.
    pub piece_len: u32,
    /// The reference upload rate, bytes per second.
    pub up: u64,
    /// Fraction of `piece` messages lost.
    pub loss: f64,
    /// The seed super-seeds (BEP 16).
    pub super_seeding: bool,
    /// The seed's upload rate, bytes per second (`None`: [`Params::up`]).
    pub seed_up: Option<u64>,
    /// Leechers leave as soon as they finish, in every scenario (`churn` always does).
    pub leave_when_done: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            peers: 100,
            seed: 1,
            size: 64 << 20,
            piece_len: 256 << 10,
            up: 1 << 20,
            loss: 0.0,
            super_seeding: false,
            seed_up: None,
            leave_when_done: false,
        }
    }
}
