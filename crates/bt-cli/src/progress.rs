//! Progress of a running torrent: a bar on a terminal, plain status lines otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bt_engine::session::CheckCallback;
use bt_engine::storage::CheckProgress;
use bt_engine::{TorrentState, TorrentStats};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::format;

/// How often a status line is printed when stderr is not a terminal.
const LINE_INTERVAL: Duration = Duration::from_secs(2);

/// Shows one torrent's progress on stderr.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    last_line: Option<Instant>,
}

impl Progress {
    /// A display for a torrent of `total` bytes; a bar if stderr is a terminal.
    pub fn new(label: &str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{prefix} {wide_bar} {bytes}/{total_bytes} {msg}")
                    .expect("a valid template"),
            );
            bar.set_prefix(label.to_string());
            bar
        });
        Progress {
            bar,
            label: label.to_string(),
            last_line: None,
        }
    }

    /// A bar under `multi` (for several torrents at once), or plain lines without a terminal.
    pub fn in_multi(multi: &indicatif::MultiProgress, label: &str, total: u64) -> Self {
        let mut p = Progress::new(label, total);
        if let Some(bar) = p.bar.take() {
            p.bar = Some(multi.add(bar));
        }
        p
    }

    /// A callback showing pieces checked at start on this display's bar.
    pub fn check_callback(&self) -> CheckCallback {
        let bar = self.bar.clone();
        Arc::new(move |p: CheckProgress| {
            if let Some(bar) = &bar {
                bar.set_message(format!("checking {}/{} pieces", p.done, p.total));
            }
        })
    }

    /// Shows the latest stats (status lines at most every [`LINE_INTERVAL`]).
    pub fn update(&mut self, s: &TorrentStats) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(s.bytes_have);
                bar.set_message(summary(s));
            }
            None => {
                let due = self.last_line.is_none_or(|t| t.elapsed() >= LINE_INTERVAL);
                if due {
                    self.last_line = Some(Instant::now());
                    eprintln!("{}: {}", self.label, line(s));
                }
            }
        }
    }

    /// Shows the final state and leaves the bar (or a last line) on screen.
    pub fn finish(&mut self, s: &TorrentStats) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(s.bytes_have);
                bar.finish_with_message(summary(s));
            }
            None => eprintln!("{}: {}", self.label, line(s)),
        }
    }
}

fn state_name(state: &TorrentState) -> String {
    match state {
        TorrentState::Checking => "checking".into(),
        TorrentState::Downloading => "downloading".into(),
        TorrentState::Seeding => "seeding".into(),
        TorrentState::Complete => "complete".into(),
        TorrentState::Paused => "paused".into(),
        TorrentState::Error(e) => format!("error: {e}"),
        TorrentState::Stopped => "stopped".into(),
    }
}

/// Rates, peers and ETA, for the bar's message.
fn summary(s: &TorrentStats) -> String {
    format!(
        "down {}/s up {}/s peers {} eta {}",
        format::size(s.download_rate),
        format::size(s.upload_rate),
        s.peers,
        eta(s)
    )
}

/// A whole status line.
fn line(s: &TorrentStats) -> String {
    format!(
        "{} {}/{} pieces ({}/{}), {}, uploaded {}",
        state_name(&s.state),
        s.pieces_have,
        s.pieces_total,
        format::size(s.bytes_have),
        format::size(s.total_len),
        summary(s),
        format::size(s.uploaded)
    )
}

fn eta(s: &TorrentStats) -> String {
    let left = s.total_len.saturating_sub(s.bytes_have);
    if left == 0 {
        return "0s".into();
    }
    if s.download_rate == 0 {
        return "-".into();
    }
    let secs = left / s.download_rate;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(have: u64, total: u64, rate: u64) -> TorrentStats {
        TorrentStats {
            info_hash: bt_meta::InfoHash([0; 20]),
            name: "x".into(),
            state: TorrentState::Downloading,
            pieces_have: 1,
            pieces_total: 4,
            bytes_have: have,
            total_len: total,
            downloaded: have,
            uploaded: 0,
            download_rate: rate,
            upload_rate: 0,
            peers: 2,
            hash_failures: 0,
            banned: 0,
        }
    }

    #[test]
    fn eta_text() {
        assert_eq!(eta(&stats(0, 100, 0)), "-");
        assert_eq!(eta(&stats(100, 100, 0)), "0s");
        assert_eq!(eta(&stats(0, 100, 10)), "10s");
        assert_eq!(eta(&stats(0, 6000, 10)), "10m00s");
        assert_eq!(eta(&stats(0, 7200 * 10, 10)), "2h00m");
    }

    #[test]
    fn status_line_names_everything() {
        let l = line(&stats(1024, 4096, 2048));
        assert_eq!(
            l,
            "downloading 1/4 pieces (1 KiB/4 KiB), down 2 KiB/s up 0 B/s peers 2 eta 1s, uploaded 0 B"
        );
    }
}
