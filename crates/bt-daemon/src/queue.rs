//! Which started torrents may run, as qBittorrent's queueing decides it: in queue order,
//! at most so many downloading, so many seeding and so many in all; forced torrents run
//! regardless and take no slot; with `dont_count_slow`, a running torrent that has moved
//! almost nothing for a while keeps running without taking a slot.

/// One started torrent, in queue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Candidate {
    /// Every wanted piece is verified.
    pub complete: bool,
    /// Force-started.
    pub forced: bool,
    /// Running, and slow for long enough not to count.
    pub slow: bool,
    /// Running now.
    pub running: bool,
}

/// The queue's limits (negative: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Downloading torrents at once.
    pub downloads: i64,
    /// Seeding torrents at once.
    pub uploads: i64,
    /// Torrents at once.
    pub torrents: i64,
    /// Slow torrents do not take a slot.
    pub dont_count_slow: bool,
}

fn room(used: i64, max: i64) -> bool {
    max < 0 || used < max
}

/// For each candidate, whether it may run.
pub fn admit(candidates: &[Candidate], limits: Limits) -> Vec<bool> {
    let (mut down, mut up, mut all) = (0i64, 0i64, 0i64);
    // Slow running torrents go on without a slot first, so they never push out others.
    let free_ride = |c: &Candidate| c.forced || (limits.dont_count_slow && c.running && c.slow);
    candidates
        .iter()
        .map(|c| {
            if free_ride(c) {
                return true;
            }
            let (used, max) = if c.complete {
                (&mut up, limits.uploads)
            } else {
                (&mut down, limits.downloads)
            };
            if room(*used, max) && room(all, limits.torrents) {
                *used += 1;
                all += 1;
                true
            } else {
                false
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        downloads: 2,
        uploads: 1,
        torrents: 3,
        dont_count_slow: true,
    };

    fn dl() -> Candidate {
        Candidate::default()
    }

    #[test]
    fn four_downloads_with_two_allowed_leave_two_queued() {
        assert_eq!(admit(&[dl(); 4], LIMITS), vec![true, true, false, false]);
    }

    #[test]
    fn forced_and_slow_torrents_take_no_slot_and_the_total_caps_the_rest() {
        let forced = Candidate {
            forced: true,
            ..dl()
        };
        let slow = Candidate {
            slow: true,
            running: true,
            ..dl()
        };
        let seed = Candidate {
            complete: true,
            ..dl()
        };
        let got = admit(&[forced, slow, dl(), seed, seed, dl(), dl()], LIMITS);
        assert_eq!(got, vec![true, true, true, true, false, true, false]);
        let unlimited = Limits {
            downloads: -1,
            uploads: -1,
            torrents: -1,
            dont_count_slow: false,
        };
        assert!(admit(&[dl(); 50], unlimited).iter().all(|x| *x));
        // A slow torrent that is not running yet is not known to be slow: it waits its turn.
        let waiting = Candidate { slow: true, ..dl() };
        assert_eq!(
            admit(&[dl(), dl(), waiting], LIMITS),
            vec![true, true, false]
        );
    }
}
