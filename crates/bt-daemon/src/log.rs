//! The daemon's recent log messages, as `log/main` serves them.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// How serious a message is (qBittorrent's log types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// An ordinary event.
    Normal,
    /// Detail.
    Info,
    /// Something went wrong and was handled.
    Warning,
    /// Something went wrong that the user must see.
    Critical,
}

impl LogKind {
    /// qBittorrent's number for it.
    pub fn code(self) -> u32 {
        match self {
            LogKind::Normal => 1,
            LogKind::Info => 2,
            LogKind::Warning => 4,
            LogKind::Critical => 8,
        }
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Increasing from 0.
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// How serious.
    pub kind: LogKind,
    /// The text.
    pub message: String,
}

/// The last messages, at most a fixed number.
#[derive(Debug)]
pub struct Log {
    cap: usize,
    inner: Mutex<(u64, VecDeque<LogEntry>)>,
}

impl Log {
    /// A log keeping the last `cap` messages.
    pub fn new(cap: usize) -> Log {
        Log {
            cap,
            inner: Mutex::new((0, VecDeque::new())),
        }
    }

    /// Appends a message.
    pub fn push(&self, kind: LogKind, message: String) {
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let id = g.0;
        g.0 += 1;
        g.1.push_back(LogEntry {
            id,
            timestamp_ms,
            kind,
            message,
        });
        while g.1.len() > self.cap {
            g.1.pop_front();
        }
    }

    /// The messages with an id above `after` (all with `None`).
    pub fn since(&self, after: Option<u64>) -> Vec<LogEntry> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1.iter()
            .filter(|e| after.is_none_or(|a| e.id > a))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_messages_and_filters_by_id() {
        let log = Log::new(2);
        for i in 0..3 {
            log.push(LogKind::Info, format!("m{i}"));
        }
        let all = log.since(None);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].message, "m1");
        assert_eq!(log.since(Some(1)).len(), 1);
    }
}
