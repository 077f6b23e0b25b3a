//! Which global limits are in force: the normal pair or the alternative one, switched by
//! hand or by a schedule of days and hours (local time), as qBittorrent does it.

use chrono::{Datelike, Timelike, Weekday};

use crate::settings::Settings;

/// Whether the schedule's window holds `weekday` at `minute` of the day (0..1440).
pub fn in_window(s: &Settings, weekday: Weekday, minute: u32) -> bool {
    let day_ok = match s.scheduler_days {
        0 => true,
        1 => !matches!(weekday, Weekday::Sat | Weekday::Sun),
        2 => matches!(weekday, Weekday::Sat | Weekday::Sun),
        d @ 3..=9 => weekday.num_days_from_monday() == d - 3,
        _ => false,
    };
    let from = s.schedule_from_hour * 60 + s.schedule_from_min;
    let to = s.schedule_to_hour * 60 + s.schedule_to_min;
    let time_ok = if from <= to {
        (from..to).contains(&minute)
    } else {
        // Across midnight.
        minute >= from || minute < to
    };
    day_ok && time_ok
}

/// Whether the schedule's window holds now, in local time.
pub fn in_window_now(s: &Settings) -> bool {
    let now = chrono::Local::now();
    in_window(s, now.weekday(), now.hour() * 60 + now.minute())
}

/// The global (download, upload) limits in force, bytes/s (0: none).
pub fn limits(s: &Settings) -> (u64, u64) {
    if s.use_alt_speed_limits {
        (s.alt_dl_limit, s.alt_up_limit)
    } else {
        (s.dl_limit, s.up_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_days_and_midnight() {
        let mut s = Settings {
            scheduler_enabled: true,
            ..Settings::default()
        };
        assert!(in_window(&s, Weekday::Mon, 8 * 60));
        assert!(!in_window(&s, Weekday::Mon, 20 * 60));
        s.scheduler_days = 2;
        assert!(!in_window(&s, Weekday::Mon, 9 * 60));
        assert!(in_window(&s, Weekday::Sun, 9 * 60));
        s.scheduler_days = 4; // Tuesday
        assert!(in_window(&s, Weekday::Tue, 9 * 60) && !in_window(&s, Weekday::Wed, 9 * 60));
        s.scheduler_days = 0;
        s.schedule_from_hour = 22;
        s.schedule_to_hour = 6;
        assert!(in_window(&s, Weekday::Fri, 23 * 60) && in_window(&s, Weekday::Fri, 60));
        assert!(!in_window(&s, Weekday::Fri, 12 * 60));
        s.use_alt_speed_limits = true;
        assert_eq!(limits(&s), (10240, 10240));
    }
}
