//! CPU time and peak memory of a process tree, read from /proc.
//!
//! Every child the harness starts is a `timeout` wrapper (its pid is also the process
//! group id) with the client below it. A [`Snapshot`] walks that tree through
//! `/proc/<pid>/task/<tid>/children` and adds up each process's user+system time plus
//! that of its children it has already reaped (`cutime`, `cstime`). When the client has
//! exited on its own, the wrapper is a zombie until we reap it, and its own `stat` then
//! holds the whole tree's time. Peak memory is the largest `VmHWM` (the kernel's own
//! high-water mark of resident memory) of any one process of the tree: a [`Sampler`]
//! reads it every [`SAMPLE_INTERVAL`] (more often in the first second), because a
//! process that has exited has no memory figures left to read.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::deadline::Deadline;

/// /proc reports times in USER_HZ ticks, which is 100 on every Linux ABI.
const TICKS_PER_SEC: f64 = 100.0;

/// How often a [`Sampler`] reads the tree's memory.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// How often a [`Sampler`] reads it during the first [`EARLY_PERIOD`], so a client that
/// is done in a few tens of milliseconds (a `--quick` payload) is still seen alive.
const EARLY_SAMPLE_INTERVAL: Duration = Duration::from_millis(5);

/// See [`EARLY_SAMPLE_INTERVAL`].
const EARLY_PERIOD: Duration = Duration::from_secs(1);

/// How often [`wait_exit`] looks whether the wrapper has exited.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// One reading of a process tree.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// True if the root has exited (a zombie) or is gone.
    pub root_exited: bool,
    /// User+system CPU seconds of the tree, reaped descendants included.
    pub cpu_secs: f64,
    /// The largest `VmHWM` of a live process of the tree, in bytes.
    pub peak_rss: u64,
}

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stat {
    state: char,
    /// utime + stime + cutime + cstime, in ticks.
    ticks: u64,
}

/// Parses a `/proc/<pid>/stat` line; the command name may hold spaces and parentheses,
/// so fields are counted from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let (_, rest) = line.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the man page, utime..cstime are 14..17.
    let state = fields.first()?.chars().next()?;
    let ticks = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some(Stat { state, ticks })
}

/// The `VmHWM` of a `/proc/<pid>/status` text, in bytes (none for a zombie).
fn parse_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The pids of the direct children of `pid` (over all its threads).
pub(super) fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut kids = Vec::new();
    for task in tasks.flatten() {
        let path = task.path().join("children");
        if let Ok(text) = fs::read_to_string(path) {
            kids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    kids
}

/// Reads the tree rooted at `root` now.
pub fn snapshot(root: u32) -> Snapshot {
    let mut snap = Snapshot::default();
    let mut stack = vec![root];
    let mut first = true;
    while let Some(pid) = stack.pop() {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|line| parse_stat(&line));
        let Some(stat) = stat else {
            snap.root_exited |= first;
            first = false;
            continue;
        };
        if first && stat.state == 'Z' {
            snap.root_exited = true;
        }
        first = false;
        snap.cpu_secs += stat.ticks as f64 / TICKS_PER_SEC;
        if let Some(hwm) = fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| parse_hwm(&s))
        {
            snap.peak_rss = snap.peak_rss.max(hwm);
        }
        stack.extend(children(pid));
    }
    snap
}

/// Reads a tree's memory in the background until stopped, so the peak of a process
/// that exits is not lost.
pub struct Sampler {
    root: u32,
    stop: Arc<AtomicBool>,
    peak_rss: Arc<Mutex<u64>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling the tree rooted at `root` (a wrapper pid from `Proc::pid`).
    pub fn start(root: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_rss = Arc::new(Mutex::new(0));
        let thread = {
            let (stop, peak_rss) = (stop.clone(), peak_rss.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let snap = snapshot(root);
                    if snap.root_exited {
                        break;
                    }
                    let mut peak = peak_rss.lock().unwrap_or_else(|e| e.into_inner());
                    *peak = (*peak).max(snap.peak_rss);
                    drop(peak);
                    std::thread::sleep(if started.elapsed() < EARLY_PERIOD {
                        EARLY_SAMPLE_INTERVAL
                    } else {
                        SAMPLE_INTERVAL
                    });
                }
            })
        };
        Sampler {
            root,
            stop,
            peak_rss,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns the tree's CPU seconds so far (the whole tree's if the
    /// root has exited and is not yet reaped) and the peak memory seen.
    pub fn finish(mut self) -> Snapshot {
        let last = snapshot(self.root);
        self.stop_thread();
        let peak = *self.peak_rss.lock().unwrap_or_else(|e| e.into_inner());
        Snapshot {
            peak_rss: peak.max(last.peak_rss),
            ..last
        }
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// Waits at most `timeout` until the wrapper `root` has exited, without reaping it (so
/// its `stat` still holds the tree's CPU time); returns when it saw the exit.
pub fn wait_exit(root: u32, timeout: Duration, what: &str) -> Result<Instant> {
    let deadline = Deadline::after(timeout);
    loop {
        let stat = fs::read_to_string(format!("/proc/{root}/stat"))
            .ok()
            .and_then(|line| parse_stat(&line))
            .with_context(|| format!("process {root} ({what}) is gone"))?;
        if stat.state == 'Z' {
            return Ok(Instant::now());
        }
        if deadline.expired() {
            bail!("timed out after {timeout:?} waiting for {what} to finish");
        }
        std::thread::sleep(EXIT_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn stat_fields_are_counted_from_the_last_paren() {
        let line = "4242 (we) ird (name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 50 7 3 20 0 1 0 100 1000 10 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                ticks: 310
            })
        );
        assert_eq!(parse_stat("1 (short) R 1 2"), None);
        assert_eq!(parse_stat("no paren"), None);
    }

    #[test]
    fn hwm_is_read_in_bytes() {
        let status = "Name:\tbt\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_hwm(status), Some(1234 * 1024));
        assert_eq!(parse_hwm("Name:\tzombie\nState:\tZ (zombie)\n"), None);
    }

    /// A child that burns CPU and then exits: its time shows in the unreaped wrapper.
    #[test]
    fn exited_tree_keeps_its_cpu_time_until_reaped() {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'")
            .spawn()
            .unwrap();
        let root = child.id();
        let sampler = Sampler::start(root);
        wait_exit(root, Duration::from_secs(60), "busy loop").unwrap();
        let snap = sampler.finish();
        child.wait().unwrap();
        assert!(snap.root_exited);
        assert!(snap.cpu_secs > 0.0, "{snap:?}");
        assert!(snap.peak_rss > 0, "{snap:?}");
    }

    #[test]
    fn live_tree_is_found_through_children() {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("sleep 30 & wait")
            .spawn()
            .unwrap();
        let root = child.id();
        let kids = crate::deadline::poll_until(Duration::from_secs(10), "the sleep", || {
            let kids = children(root);
            Ok((!kids.is_empty()).then_some(kids))
        });
        let snap = snapshot(root);
        for &kid in kids.as_deref().unwrap_or_default() {
            if let Some(pid) = rustix::process::Pid::from_raw(kid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(kids.unwrap().len(), 1);
        assert!(!snap.root_exited);
        assert!(snap.peak_rss > 0);
    }
}
