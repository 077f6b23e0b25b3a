//! Trackers for one torrent: [`spawn`] starts an announcer task that finds peers through
//! the torrent's trackers and hands them to its [`TorrentHandle`].
//!
//! The task is built only on the public [`TorrentHandle`] API and `bt-tracker`: it reads
//! progress from [`TorrentHandle::subscribe`] and feeds peers with
//! [`TorrentHandle::add_peers`]. When to announce is decided by bt-tracker's sans-I/O
//! [`AnnounceSchedule`]; this module only drives it:
//!
//! - the tiers are shuffled once ([`tiers`]) and walked in order until a tracker answers
//!   (BEP 12); the one that answered is tried first next time;
//! - `started` once the torrent is past its start-up check, then a re-announce every
//!   `interval`, never sooner than `min interval`;
//! - sooner, as soon as `min interval` allows, while a downloading torrent has fewer than
//!   [`AnnouncerConfig::low_peers`] connected peers;
//! - `completed` once, when a torrent that was downloading becomes complete (a torrent
//!   complete from the start announces `left=0` and never `completed`);
//! - `stopped` to the tracker that answered last, when the announcer is shut down or the
//!   torrent stops, within [`AnnouncerConfig::stop_timeout`] so a dead tracker never holds
//!   up shutdown.
//!
//! A bad tracker (unreachable, slow, not bencode, too large, a failure reason, a redirect
//! loop) is never fatal: each failure is logged as a warning, recorded in
//! [`AnnouncerStatus::last_error`], and the next tracker is tried; when none answers the
//! schedule backs off and tries again, and the download carries on with the peers it has.
//!
//! Private torrents (BEP 27) may get peers from their trackers only: [`tiers`] uses
//! exactly the trackers in the metainfo, and the announcer is the one peer source the
//! engine starts for them.
//!
//! Not done here: announcing to every tier at once, scrapes, DHT and PEX.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bt_meta::{Metainfo, PeerId};
use bt_tracker::{
    AnnounceRequest, AnnounceResponse, AnnounceSchedule, Event, ScheduleConfig, Tiers,
    TrackerClient, Walk,
};
use tokio::sync::{oneshot, watch};

use crate::driver::torrent::TorrentHandle;
use crate::proto::{TorrentState, TorrentStats};

/// Most distinct tracker peers remembered to count [`AnnouncerStatus::peers_from_trackers`].
const MAX_REMEMBERED_PEERS: usize = 10_000;
/// Most tracker failures spelled out in [`AnnouncerStatus::last_error`].
const MAX_ERRORS_SHOWN: usize = 8;
/// Longest tracker text (failure reason, warning) kept in the status, in bytes.
const MAX_TEXT_LEN: usize = 300;

/// Settings of an announcer.
#[derive(Clone, Debug)]
pub struct AnnouncerConfig {
    /// Peers asked for in each announce.
    pub numwant: u32,
    /// Below this many connected peers a downloading torrent asks again as soon as
    /// `min interval` allows.
    pub low_peers: usize,
    /// Longest wait for one tracker before the next one is tried.
    pub tracker_timeout: Duration,
    /// Longest time the final `stopped` (and a pending `completed`) may take.
    pub stop_timeout: Duration,
    /// Intervals, back-off and floors of the announce schedule.
    pub schedule: ScheduleConfig,
}

impl Default for AnnouncerConfig {
    fn default() -> Self {
        AnnouncerConfig {
            numwant: 50,
            low_peers: 5,
            tracker_timeout: Duration::from_secs(20),
            stop_timeout: Duration::from_secs(3),
            schedule: ScheduleConfig::default(),
        }
    }
}

/// What the announcer has done so far, for status lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnouncerStatus {
    /// The tracker that answered last.
    pub tracker: Option<String>,
    /// The failures of the latest announce (`url: problem`, `; `-separated), or why no
    /// tracker answered; `None` when the latest announce met no failure.
    pub last_error: Option<String>,
    /// The latest tracker's `warning message`, if it sent one.
    pub warning: Option<String>,
    /// When the next announce is due (`None` while one is in flight, or once stopped).
    pub next_announce: Option<Instant>,
    /// Distinct peer addresses the trackers have handed out (counted up to 10 000).
    pub peers_from_trackers: usize,
    /// Peers in the latest answer.
    pub last_peers: usize,
    /// Seeders, as the latest answer says.
    pub seeders: Option<u64>,
    /// Leechers, as the latest answer says.
    pub leechers: Option<u64>,
    /// Announces a tracker answered.
    pub announces: u64,
    /// Announces no tracker answered.
    pub failures: u64,
    /// The announcer has finished (`stopped` sent or given up).
    pub stopped: bool,
}

/// Controls a running announcer; dropping it stops the announcer too (it still sends
/// `stopped`, in the background, within the stop timeout).
#[derive(Debug)]
pub struct AnnouncerHandle {
    stop: watch::Sender<bool>,
    /// Wakes the task for an announce now.
    force: Arc<tokio::sync::Notify>,
    status: watch::Receiver<AnnouncerStatus>,
    /// Fires when the announcer's thread is done.
    done: Option<oneshot::Receiver<()>>,
    stop_timeout: Duration,
}

impl AnnouncerHandle {
    /// Announces now, whatever the trackers' `min interval` says.
    pub fn reannounce(&self) {
        self.force.notify_one();
    }

    /// The latest status.
    pub fn status(&self) -> AnnouncerStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees each status update.
    pub fn subscribe(&self) -> watch::Receiver<AnnouncerStatus> {
        self.status.clone()
    }

    /// Sends `stopped` to the tracker that answered last and ends the task; returns within
    /// about the configured stop timeout, whatever the trackers do.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(done) = self.done.take() {
            let grace = self.stop_timeout + Duration::from_secs(1);
            if tokio::time::timeout(grace, done).await.is_err() {
                tracing::warn!("announcer did not stop in time; left behind");
            }
        }
    }
}

impl Drop for AnnouncerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The torrent's trackers as tiers, each tier shuffled once (BEP 12): `announce-list`, or
/// `announce` alone when there is no list. Exactly the metainfo's trackers, as a private
/// torrent requires.
pub fn tiers(metainfo: &Metainfo) -> Tiers {
    Tiers::new(
        metainfo.announce.as_deref(),
        &metainfo.announce_list(),
        &mut rand::thread_rng(),
    )
}

/// Who we announce as: the session's peer id and the port peers reach us on.
#[derive(Clone, Copy, Debug)]
pub struct Announcing {
    /// Our peer id.
    pub peer_id: PeerId,
    /// The TCP port peers can reach us on (the session's listening port).
    pub port: u16,
}

/// Starts announcing `handle`'s torrent to `tiers` through `client`, as `us`. Needs a
/// tokio runtime. With no trackers the task ends at once and the status stays empty.
pub fn spawn(
    handle: TorrentHandle,
    tiers: Tiers,
    client: TrackerClient,
    us: Announcing,
    config: AnnouncerConfig,
) -> AnnouncerHandle {
    let (stop, stop_rx) = watch::channel(false);
    let (status_tx, status) = watch::channel(AnnouncerStatus::default());
    let stop_timeout = config.stop_timeout;
    let force = Arc::new(tokio::sync::Notify::new());
    let announcer = Announcer {
        force: Arc::clone(&force),
        schedule: AnnounceSchedule::new(config.schedule.clone()),
        handle,
        tiers,
        client,
        us,
        config,
        key: rand::random(),
        tracker_ids: HashMap::new(),
        current: None,
        seen: HashSet::new(),
        status: status_tx,
        saw_incomplete: false,
        completed_acked: false,
        stop_deadline: None,
    };
    let (done_tx, done) = oneshot::channel();
    tokio::spawn(async move {
        announcer.run(stop_rx).await;
        let _ = done_tx.send(());
    });
    AnnouncerHandle {
        stop,
        force,
        status,
        done: Some(done),
        stop_timeout,
    }
}

/// The task's state.
struct Announcer {
    /// Notified for an announce now.
    force: Arc<tokio::sync::Notify>,
    handle: TorrentHandle,
    tiers: Tiers,
    client: TrackerClient,
    us: Announcing,
    config: AnnouncerConfig,
    schedule: AnnounceSchedule,
    /// Our `key`, the same for every announce of this torrent.
    key: u32,
    /// The `tracker id` each tracker gave us.
    tracker_ids: HashMap<String, Vec<u8>>,
    /// The tracker that answered last: where `stopped` goes.
    current: Option<String>,
    /// Distinct peers handed out so far (bounded).
    seen: HashSet<SocketAddr>,
    status: watch::Sender<AnnouncerStatus>,
    /// The torrent was seen downloading, so reaching completion is worth a `completed`.
    saw_incomplete: bool,
    /// A tracker acknowledged our `completed`.
    completed_acked: bool,
    /// When the final announces must be done by, once stopping has begun.
    stop_deadline: Option<Instant>,
}

/// Whether the announcer should stop: asked to, or its handle is gone.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A torrent that no longer takes peers.
fn is_over(state: &TorrentState) -> bool {
    matches!(state, TorrentState::Stopped | TorrentState::Error(_))
}

/// `text` cut to at most [`MAX_TEXT_LEN`] bytes, on a character boundary.
fn bounded(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < text.len() {
        format!("{}...", &text[..end]) // ok: `end` is a char boundary within `text`
    } else {
        text.to_owned()
    }
}

impl Announcer {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        if self.tiers.is_empty() {
            self.status.send_modify(|s| s.stopped = true);
            return;
        }
        let mut stats_rx = self.handle.subscribe();
        // Announce only once the start-up check knows what we have.
        loop {
            let state = stats_rx.borrow_and_update().state.clone();
            if is_over(&state) {
                self.status.send_modify(|s| s.stopped = true);
                return;
            }
            if state != TorrentState::Checking {
                break;
            }
            tokio::select! {
                changed = stats_rx.changed() => if changed.is_err() {
                    self.status.send_modify(|s| s.stopped = true);
                    return;
                },
                () = stop_requested(&mut stop) => {
                    self.status.send_modify(|s| s.stopped = true);
                    return;
                }
            }
        }
        self.schedule.start(Instant::now());
        loop {
            let stats = stats_rx.borrow_and_update().clone();
            if *stop.borrow() || is_over(&stats.state) {
                break;
            }
            let now = Instant::now();
            self.observe(&stats, now);
            if let Some(event) = self.schedule.poll_announce(now) {
                self.publish(|_| {});
                let req = self.request(&stats, event);
                let stop_timeout = self.config.stop_timeout;
                let mut stopping = None;
                let walk = {
                    let walk = self.walk(&req);
                    tokio::pin!(walk);
                    tokio::select! {
                        walk = &mut walk => Some(walk),
                        () = stop_requested(&mut stop) => {
                            // Let the announce in flight finish (a `completed` must not
                            // be sent twice), within the stop timeout.
                            let deadline = Instant::now() + stop_timeout;
                            stopping = Some(deadline);
                            tokio::time::timeout(stop_timeout, walk).await.ok()
                        }
                    }
                };
                self.stop_deadline = stopping;
                let go_on = match walk {
                    Some(walk) => self.record(walk, event).await,
                    None => {
                        self.schedule.announce_failed(Instant::now());
                        false
                    }
                };
                if !go_on || self.stop_deadline.is_some() {
                    break;
                }
                continue;
            }
            self.publish(|_| {});
            let wake = self
                .schedule
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                () = async {
                    match wake {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {}
                changed = stats_rx.changed() => if changed.is_err() {
                    break;
                },
                () = self.force.notified() => self.schedule.announce_now(Instant::now()),
                () = stop_requested(&mut stop) => {}
            }
        }
        let stats = stats_rx.borrow().clone();
        self.goodbye(&stats).await;
    }

    /// Feeds the schedule what the torrent's progress means for announcing.
    fn observe(&mut self, stats: &TorrentStats, now: Instant) {
        match stats.state {
            TorrentState::Downloading => {
                self.saw_incomplete = true;
                if stats.peers < self.config.low_peers && self.schedule.want_more_peers(now) {
                    tracing::debug!(
                        torrent = %self.handle.info_hash(),
                        peers = stats.peers,
                        "short of peers; announcing as soon as min interval allows"
                    );
                }
            }
            TorrentState::Seeding | TorrentState::Complete if self.saw_incomplete => {
                self.schedule.complete(now);
            }
            _ => {}
        }
    }

    fn request(&self, stats: &TorrentStats, event: Event) -> AnnounceRequest {
        let mut req = AnnounceRequest::new(self.handle.info_hash(), self.us.peer_id, self.us.port);
        req.uploaded = stats.uploaded;
        req.downloaded = stats.downloaded;
        req.left = stats.total_len.saturating_sub(stats.bytes_have);
        req.event = event;
        req.numwant = (event != Event::Stopped).then_some(self.config.numwant);
        req.key = self.key;
        req
    }

    /// Walks the tiers, giving each tracker at most the tracker timeout.
    async fn walk(&mut self, req: &AnnounceRequest) -> Walk<AnnounceResponse> {
        let Announcer {
            tiers,
            client,
            tracker_ids,
            config,
            ..
        } = self;
        let (client, tracker_ids) = (&*client, &*tracker_ids);
        let limit = config.tracker_timeout;
        tiers
            .walk(|url| {
                let mut req = req.clone();
                req.tracker_id = tracker_ids.get(&url).cloned();
                async move { announce_within(client, &url, &req, limit).await }
            })
            .await
    }

    /// Reports a walk to the schedule, the log and the status, and hands its peers to the
    /// torrent. Returns false when the torrent no longer takes peers.
    async fn record(&mut self, walk: Walk<AnnounceResponse>, event: Event) -> bool {
        let now = Instant::now();
        let torrent = self.handle.info_hash();
        for (url, err) in &walk.errors {
            tracing::warn!(%torrent, tracker = %url, error = %err, "tracker failed; trying the next");
        }
        let mut error = (!walk.errors.is_empty()).then(|| {
            let mut text = walk
                .errors
                .iter()
                .take(MAX_ERRORS_SHOWN)
                .map(|(url, err)| bounded(&format!("{url}: {err}")))
                .collect::<Vec<_>>()
                .join("; ");
            if walk.errors.len() > MAX_ERRORS_SHOWN {
                text.push_str(&format!(
                    "; and {} more",
                    walk.errors.len() - MAX_ERRORS_SHOWN
                ));
            }
            text
        });
        let Some((url, resp)) = walk.answered else {
            self.schedule.announce_failed(now);
            let next = self
                .schedule
                .poll_timeout()
                .map(|t| t.saturating_duration_since(now));
            tracing::warn!(%torrent, retry_in = ?next, "no tracker answered");
            let text = error.take().unwrap_or_else(|| "no tracker answered".into());
            self.publish(|s| {
                s.failures += 1;
                s.last_error = Some(format!("no tracker answered: {text}"));
            });
            return true;
        };
        self.schedule
            .announce_succeeded(now, resp.interval, resp.min_interval);
        if event == Event::Completed {
            self.completed_acked = true;
        }
        if let Some(id) = &resp.tracker_id {
            self.tracker_ids.insert(url.clone(), id.clone());
        }
        if let Some(warning) = &resp.warning {
            tracing::warn!(%torrent, tracker = %url, %warning, "tracker warning");
        }
        let peers: Vec<SocketAddr> = resp
            .peers
            .iter()
            .filter(|p| p.id != Some(self.us.peer_id))
            .map(|p| p.addr)
            .filter(|a| a.port() != 0 && !a.ip().is_unspecified())
            .collect();
        for addr in &peers {
            if self.seen.len() < MAX_REMEMBERED_PEERS {
                self.seen.insert(*addr);
            }
        }
        tracing::info!(
            %torrent,
            tracker = %url,
            ?event,
            peers = peers.len(),
            interval = ?resp.interval,
            "announced"
        );
        let seen = self.seen.len();
        self.current = Some(url.clone());
        self.publish(|s| {
            s.tracker = Some(url);
            s.last_error = error;
            s.warning = resp.warning.as_deref().map(bounded);
            s.peers_from_trackers = seen;
            s.last_peers = peers.len();
            s.seeders = resp.complete;
            s.leechers = resp.incomplete;
            s.announces += 1;
        });
        if peers.is_empty() {
            return true;
        }
        self.handle.add_peers(peers).await.is_ok()
    }

    /// Updates the status with `f` and the schedule's next announce time.
    fn publish(&self, f: impl FnOnce(&mut AnnouncerStatus)) {
        let next = self.schedule.poll_timeout();
        self.status.send_modify(|s| {
            f(s);
            s.next_announce = next;
        });
    }

    /// Tells the tracker that answered last that we leave (after a `completed` it has not
    /// heard yet), all within the stop timeout.
    async fn goodbye(&mut self, stats: &TorrentStats) {
        let now = Instant::now();
        self.schedule.stop(now);
        let deadline = self.stop_deadline.unwrap_or(now + self.config.stop_timeout);
        if let Some(url) = self.current.clone() {
            let torrent = self.handle.info_hash();
            let mut events = Vec::new();
            if self.saw_incomplete && stats.state.is_complete() && !self.completed_acked {
                events.push(Event::Completed);
            }
            events.push(Event::Stopped);
            for event in events {
                let left = deadline.saturating_duration_since(Instant::now());
                let req = self.request(stats, event);
                match announce_within(&self.client, &url, &req, left).await {
                    Ok(_) => tracing::info!(%torrent, tracker = %url, ?event, "announced"),
                    Err(e) => {
                        tracing::warn!(%torrent, tracker = %url, ?event, error = %e, "tracker failed");
                        break;
                    }
                }
            }
        }
        self.status.send_modify(|s| {
            s.next_announce = None;
            s.stopped = true;
        });
    }
}

/// One announce, given up after `limit`.
async fn announce_within(
    client: &TrackerClient,
    url: &str,
    req: &AnnounceRequest,
    limit: Duration,
) -> bt_tracker::Result<AnnounceResponse> {
    match tokio::time::timeout(limit, client.announce(url, req)).await {
        Ok(result) => result,
        Err(_) => Err(bt_tracker::Error::Timeout {
            url: url.to_owned(),
            elapsed: limit,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_long_text_on_a_char_boundary() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(400);
        let cut = bounded(&long);
        assert!(cut.ends_with("..."));
        assert!(cut.len() <= MAX_TEXT_LEN + 3);
        assert!(cut.trim_end_matches("...").chars().all(|c| c == 'é'));
    }
}
