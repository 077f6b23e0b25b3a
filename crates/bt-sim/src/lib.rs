//! A swarm simulator: many nodes, each running bt-engine's sans-I/O core
//! ([`bt_engine::proto::Torrent`], the same code the tokio driver runs), in a
//! discrete-event network with virtual time.
//!
//! - [`network`]: the nodes, their links and the event loop ([`network::Swarm`]);
//! - [`scenario`]: who is in the swarm, with which links, arriving when;
//! - [`report`]: what a run measured, against the Kumar-Ross lower bound.
//!
//! The same seed gives the same run, bit for bit. `cargo xtask sim` runs it.

pub mod network;
pub mod report;
pub mod scenario;

use std::time::Instant;

use report::Report;
use scenario::{Params, Scenario};

/// Runs `scenario` with `params` and measures it.
pub fn run(scenario: Scenario, params: &Params) -> Report {
    let started = Instant::now();
    let (config, nodes) = scenario.build(params);
    let outcome = network::Swarm::new(config, nodes).run();
    Report::new(scenario, params, &outcome, started.elapsed().as_secs_f64())
}
