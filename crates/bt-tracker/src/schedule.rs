//! When to announce, for one torrent: a sans-I/O state machine with an explicit clock.
//!
//! The driver calls [`AnnounceSchedule::poll_announce`] at [`AnnounceSchedule::poll_timeout`],
//! sends an announce with the event it returns, and reports back with
//! [`AnnounceSchedule::announce_succeeded`] or [`AnnounceSchedule::announce_failed`].
//!
//! Invariants: at most one announce is in flight; `started` is sent before any other
//! event and repeated until one succeeds; `completed` is sent at most once, after a
//! successful `started`; `stopped` is sent once (not retried) and only when a `started`
//! succeeded; regular re-announces are `interval` apart and never closer than
//! `min interval` (nor [`ScheduleConfig::min_interval_floor`], whatever the tracker says).

use std::time::{Duration, Instant};

use crate::announce::Event;

/// Timing rules for the schedule.
#[derive(Clone, Debug)]
pub struct ScheduleConfig {
    /// No announce closer than this after a success, whatever the tracker says.
    pub min_interval_floor: Duration,
    /// The `min interval` assumed when the tracker gives none (for early announces).
    pub default_min_interval: Duration,
    /// Wait after the first failure; doubles with each further failure.
    pub retry_base: Duration,
    /// Longest wait after failures.
    pub retry_max: Duration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            min_interval_floor: Duration::from_secs(30),
            default_min_interval: Duration::from_secs(60),
            retry_base: Duration::from_secs(15),
            retry_max: Duration::from_secs(30 * 60),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not started yet.
    Idle,
    /// Announcing regularly.
    Running,
    /// `stopped` is due.
    Stopping,
    /// Nothing more to send.
    Finished,
}

/// The announce schedule of one torrent on one tracker list.
#[derive(Clone, Debug)]
pub struct AnnounceSchedule {
    config: ScheduleConfig,
    phase: Phase,
    started_acked: bool,
    completed_pending: bool,
    completed_sent: bool,
    in_flight: Option<Event>,
    next_at: Option<Instant>,
    last_success: Option<Instant>,
    min_interval: Duration,
    failures: u32,
}

impl AnnounceSchedule {
    /// A schedule that sends nothing until [`Self::start`].
    pub fn new(config: ScheduleConfig) -> Self {
        let min_interval = config.default_min_interval.max(config.min_interval_floor);
        Self {
            config,
            phase: Phase::Idle,
            started_acked: false,
            completed_pending: false,
            completed_sent: false,
            in_flight: None,
            next_at: None,
            last_success: None,
            min_interval,
            failures: 0,
        }
    }

    /// The torrent starts: `started` is due now.
    pub fn start(&mut self, now: Instant) {
        if self.phase == Phase::Idle {
            self.phase = Phase::Running;
            self.next_at = Some(now);
        }
    }

    /// The download finished: `completed` is due now (once per schedule; a torrent
    /// that starts complete should simply send `left=0` and never call this).
    pub fn complete(&mut self, now: Instant) {
        if self.phase == Phase::Running && !self.completed_sent && !self.completed_pending {
            self.completed_pending = true;
            if self.started_acked {
                self.next_at = Some(now);
            }
        }
    }

    /// The torrent stops: `stopped` is due now if the tracker knows us, else nothing is.
    pub fn stop(&mut self, now: Instant) {
        match self.phase {
            Phase::Idle | Phase::Finished => self.phase = Phase::Finished,
            Phase::Running | Phase::Stopping
                if self.started_acked || self.in_flight == Some(Event::Started) =>
            {
                self.phase = Phase::Stopping;
                self.next_at = Some(now);
            }
            Phase::Running | Phase::Stopping => {
                self.phase = Phase::Finished;
                self.next_at = None;
            }
        }
    }

    /// The user asks for an announce now: the next one is due at once, `min interval`
    /// notwithstanding (an announce in flight is not repeated).
    pub fn announce_now(&mut self, now: Instant) {
        if self.phase == Phase::Running && self.in_flight.is_none() {
            self.next_at = Some(now);
        }
    }

    /// Short of peers: move the next regular announce earlier, to the soonest time
    /// `min interval` allows. Returns whether it moved.
    pub fn want_more_peers(&mut self, now: Instant) -> bool {
        if self.phase != Phase::Running || self.in_flight.is_some() || self.failures > 0 {
            return false;
        }
        let (Some(last), Some(next)) = (self.last_success, self.next_at) else {
            return false;
        };
        let earliest = (last + self.min_interval).max(now);
        if earliest < next {
            self.next_at = Some(earliest);
            true
        } else {
            false
        }
    }

    /// The announce due at `now`, if any; it is then in flight until reported back.
    pub fn poll_announce(&mut self, now: Instant) -> Option<Event> {
        if self.in_flight.is_some() || self.next_at.is_none_or(|t| t > now) {
            return None;
        }
        let event = match self.phase {
            Phase::Idle | Phase::Finished => return None,
            Phase::Stopping => Event::Stopped,
            Phase::Running if !self.started_acked => Event::Started,
            Phase::Running if self.completed_pending => Event::Completed,
            Phase::Running => Event::None,
        };
        self.in_flight = Some(event);
        Some(event)
    }

    /// When [`Self::poll_announce`] next has something (`None`: waiting for a
    /// reply, or finished).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.in_flight.is_some() || matches!(self.phase, Phase::Idle | Phase::Finished) {
            return None;
        }
        self.next_at
    }

    /// The announce in flight succeeded with the tracker's `interval` and `min interval`.
    pub fn announce_succeeded(
        &mut self,
        now: Instant,
        interval: Duration,
        min_interval: Option<Duration>,
    ) {
        let Some(event) = self.in_flight.take() else {
            return;
        };
        self.failures = 0;
        self.last_success = Some(now);
        let floor = self.config.min_interval_floor;
        self.min_interval = min_interval
            .unwrap_or(self.config.default_min_interval)
            .max(floor);
        let interval = interval.max(self.min_interval);
        match event {
            Event::Started => self.started_acked = true,
            Event::Completed => {
                self.completed_pending = false;
                self.completed_sent = true;
            }
            Event::Stopped => {
                self.phase = Phase::Finished;
                self.next_at = None;
                return;
            }
            Event::None => {}
        }
        self.next_at = Some(match self.phase {
            // stop() while this was in flight: say goodbye now.
            Phase::Stopping => now,
            // complete() while `started` was in flight: report it now.
            _ if self.completed_pending => now,
            _ => now + interval,
        });
    }

    /// The announce in flight failed: retry after an exponential backoff
    /// (`stopped` is not retried).
    pub fn announce_failed(&mut self, now: Instant) {
        let Some(event) = self.in_flight.take() else {
            return;
        };
        if event == Event::Stopped || (self.phase == Phase::Stopping && !self.started_acked) {
            self.phase = Phase::Finished;
            self.next_at = None;
            return;
        }
        if self.phase == Phase::Stopping {
            self.next_at = Some(now);
            return;
        }
        let factor = 1u32.checked_shl(self.failures.min(20)).unwrap_or(u32::MAX);
        self.failures = self.failures.saturating_add(1);
        let wait = self
            .config
            .retry_base
            .saturating_mul(factor)
            .min(self.config.retry_max);
        self.next_at = Some(now + wait);
    }

    /// Whether `stopped` was sent (or there was nothing to stop): the driver may drop it.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps a schedule through virtual time: `t` is seconds since `t0`.
    struct Clock {
        t0: Instant,
        sched: AnnounceSchedule,
    }

    impl Clock {
        fn new() -> Self {
            let mut sched = AnnounceSchedule::new(ScheduleConfig::default());
            let t0 = Instant::now();
            sched.start(t0);
            Self { t0, sched }
        }
        fn at(&self, secs: u64) -> Instant {
            self.t0 + Duration::from_secs(secs)
        }
        fn poll(&mut self, secs: u64) -> Option<Event> {
            self.sched.poll_announce(self.at(secs))
        }
        fn ok(&mut self, secs: u64, interval: u64, min: Option<u64>) {
            let at = self.at(secs);
            self.sched.announce_succeeded(
                at,
                Duration::from_secs(interval),
                min.map(Duration::from_secs),
            );
        }
        fn fail(&mut self, secs: u64) {
            let at = self.at(secs);
            self.sched.announce_failed(at);
        }
        fn due(&self) -> Option<u64> {
            self.sched.poll_timeout().map(|t| (t - self.t0).as_secs())
        }
    }

    #[test]
    fn an_announce_asked_for_is_due_at_once_but_never_twice_in_flight() {
        let mut c = Clock::new();
        assert_eq!(c.poll(0), Some(Event::Started));
        c.sched.announce_now(c.at(0));
        assert_eq!(c.due(), None, "the started announce is still in flight");
        c.ok(1, 1800, Some(900));
        assert_eq!(c.due(), Some(1801));
        c.sched.announce_now(c.at(5));
        assert_eq!(c.due(), Some(5), "min interval notwithstanding");
        assert_eq!(c.poll(5), Some(Event::None));
    }

    #[test]
    fn started_then_regular_interval() {
        let mut c = Clock::new();
        assert_eq!(c.due(), Some(0));
        assert_eq!(c.poll(0), Some(Event::Started));
        assert_eq!(c.poll(0), None, "one in flight at a time");
        assert_eq!(c.due(), None);
        c.ok(1, 1800, None);
        assert_eq!(c.due(), Some(1801));
        assert_eq!(c.poll(1800), None);
        assert_eq!(c.poll(1801), Some(Event::None));
        c.ok(1802, 900, None);
        assert_eq!(c.due(), Some(2702));
    }

    #[test]
    fn interval_never_below_min_interval_or_floor() {
        let mut c = Clock::new();
        c.poll(0);
        c.ok(0, 10, Some(120));
        assert_eq!(c.due(), Some(120));
        c.poll(120);
        c.ok(120, 0, Some(0));
        assert_eq!(
            c.due(),
            Some(150),
            "a hostile interval=0 is held to the 30 s floor"
        );
    }

    #[test]
    fn started_is_retried_with_exponential_backoff() {
        let mut c = Clock::new();
        let mut t = 0;
        for wait in [15, 30, 60, 120, 240, 480, 960, 1800, 1800] {
            assert_eq!(c.poll(t), Some(Event::Started));
            c.fail(t);
            assert_eq!(c.due(), Some(t + wait));
            t += wait;
        }
        assert_eq!(c.sched.failures(), 9);
        assert_eq!(c.poll(t), Some(Event::Started));
        c.ok(t, 100, None);
        assert_eq!(c.sched.failures(), 0);
        assert_eq!(c.due(), Some(t + 100));
    }

    #[test]
    fn completed_once_and_promptly() {
        let mut c = Clock::new();
        c.poll(0);
        c.ok(0, 1800, None);
        c.sched.complete(c.at(500));
        assert_eq!(c.due(), Some(500));
        assert_eq!(c.poll(500), Some(Event::Completed));
        c.fail(500);
        assert_eq!(
            c.poll(515),
            Some(Event::Completed),
            "retried until it succeeds"
        );
        c.ok(515, 1800, None);
        c.sched.complete(c.at(600));
        assert_eq!(c.due(), Some(2315));
        assert_eq!(c.poll(2315), Some(Event::None));
    }

    #[test]
    fn completed_waits_for_started() {
        let mut c = Clock::new();
        assert_eq!(c.poll(0), Some(Event::Started));
        c.sched.complete(c.at(1));
        c.ok(2, 1800, None);
        assert_eq!(c.due(), Some(2));
        assert_eq!(c.poll(2), Some(Event::Completed));
    }

    #[test]
    fn stopped_once_then_finished() {
        let mut c = Clock::new();
        c.poll(0);
        c.ok(0, 1800, None);
        c.sched.stop(c.at(10));
        assert_eq!(c.poll(10), Some(Event::Stopped));
        c.fail(11);
        assert!(c.sched.is_finished(), "stopped is not retried");
        assert_eq!(c.due(), None);
        assert_eq!(c.poll(5000), None);
    }

    #[test]
    fn stop_before_tracker_knows_us_sends_nothing() {
        let mut c = Clock::new();
        c.sched.stop(c.at(0));
        assert!(c.sched.is_finished());
        assert_eq!(c.poll(0), None);
        let mut idle = AnnounceSchedule::new(ScheduleConfig::default());
        idle.stop(c.at(0));
        assert!(idle.is_finished());
    }

    #[test]
    fn stop_while_started_in_flight() {
        let mut c = Clock::new();
        assert_eq!(c.poll(0), Some(Event::Started));
        c.sched.stop(c.at(1));
        assert_eq!(c.poll(1), None, "still in flight");
        c.ok(2, 1800, None);
        assert_eq!(c.poll(2), Some(Event::Stopped));
        c.ok(3, 1800, None);
        assert!(c.sched.is_finished());

        let mut c = Clock::new();
        c.poll(0);
        c.sched.stop(c.at(1));
        c.fail(2);
        assert!(
            c.sched.is_finished(),
            "started failed: the tracker never knew us"
        );
    }

    #[test]
    fn want_more_peers_respects_min_interval() {
        let mut c = Clock::new();
        assert!(
            !c.sched.want_more_peers(c.at(0)),
            "nothing to move before a success"
        );
        c.poll(0);
        c.ok(0, 1800, Some(300));
        assert!(c.sched.want_more_peers(c.at(10)));
        assert_eq!(c.due(), Some(300));
        assert!(
            !c.sched.want_more_peers(c.at(20)),
            "already as early as allowed"
        );
        assert_eq!(c.poll(300), Some(Event::None));
        c.ok(300, 1800, None);
        assert!(c.sched.want_more_peers(c.at(1000)));
        assert_eq!(c.due(), Some(1000), "past min interval: due now");
    }

    #[test]
    fn want_more_peers_does_not_beat_backoff() {
        let mut c = Clock::new();
        c.poll(0);
        c.ok(0, 1800, Some(60));
        c.poll(1800);
        c.fail(1800);
        assert!(!c.sched.want_more_peers(c.at(1801)));
        assert_eq!(c.due(), Some(1815));
    }

    #[test]
    fn reports_without_a_request_in_flight_are_ignored() {
        let mut c = Clock::new();
        c.ok(0, 10, None);
        c.fail(0);
        assert_eq!(c.poll(0), Some(Event::Started));
    }
}
