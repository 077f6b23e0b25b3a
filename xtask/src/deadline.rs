//! Bounded waiting: every wait in the harness goes through [`poll_until`] or a
//! [`Deadline`], so no scenario can hang.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// How often [`poll_until`] checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A point in time after which a wait gives up.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// A deadline `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Deadline {
            at: Instant::now() + timeout,
        }
    }

    /// True once the deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Time left, zero once expired.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

/// Calls `check` until it returns `Some`, an error, or `timeout` passes (an error that
/// names `what`).
pub fn poll_until<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Deadline::after(timeout);
    loop {
        if let Some(value) = check()? {
            return Ok(value);
        }
        if deadline.expired() {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline.remaining()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_until_returns_the_first_value() {
        let mut calls = 0;
        let got = poll_until(Duration::from_secs(5), "third call", || {
            calls += 1;
            Ok((calls == 3).then_some(calls))
        })
        .unwrap();
        assert_eq!(got, 3);
    }

    #[test]
    fn poll_until_times_out_naming_what_it_waited_for() {
        let err = poll_until(Duration::from_millis(250), "godot", || Ok(None::<()>)).unwrap_err();
        assert!(err.to_string().contains("waiting for godot"), "{err}");
    }

    #[test]
    fn poll_until_stops_at_an_error() {
        let err = poll_until(Duration::from_secs(5), "x", || -> Result<Option<()>> {
            bail!("broken")
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "broken");
    }
}
