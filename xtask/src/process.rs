//! Child processes the harness starts. Each runs in its own process group under
//! coreutils `timeout` (a hard lifetime, so nothing outlives even a crashed harness for
//! long); its stdout and stderr go to a log file and to a short in-memory tail; its
//! [`Proc`] guard kills the whole group on drop. Processes are only ever stopped by the
//! PID (= process group id) we started, never by name.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rustix::process::{kill_process_group, Pid, Signal};

use crate::deadline::{poll_until, Deadline};

/// Hard lifetime of every child: `timeout` kills it after this long whatever happens.
pub const MAX_LIFETIME: Duration = Duration::from_secs(600);

/// How many output lines [`Proc::tail`] keeps.
const TAIL_LINES: usize = 40;

/// A running child process (group); killed with SIGKILL when dropped.
pub struct Proc {
    name: String,
    child: Child,
    exited: Option<ExitStatus>,
    stdout_lines: Receiver<String>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Proc {
    /// Starts `cmd` (its program, arguments, environment and working dir) in a new process
    /// group under `timeout`. Output is appended to `<log_dir>/<name>.log` if `log_dir`
    /// is given.
    pub fn spawn(name: &str, cmd: &Command, log_dir: Option<&Path>) -> Result<Proc> {
        Self::spawn_for(name, cmd, log_dir, MAX_LIFETIME)
    }

    /// [`Proc::spawn`] with a hard lifetime of `lifetime` instead of [`MAX_LIFETIME`],
    /// for a benchmark whose client must outlive it.
    pub fn spawn_for(
        name: &str,
        cmd: &Command,
        log_dir: Option<&Path>,
        lifetime: Duration,
    ) -> Result<Proc> {
        let mut wrapped = Command::new("timeout");
        wrapped
            .arg("--kill-after=5")
            .arg(lifetime.as_secs().max(1).to_string())
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);

        let log = match log_dir {
            Some(dir) => {
                let path = dir.join(format!("{name}.log"));
                let mut file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .with_context(|| format!("cannot open log {}", path.display()))?;
                writeln!(file, "### {}", describe(cmd))?;
                Some(Arc::new(Mutex::new(file)))
            }
            None => None,
        };

        let mut child = wrapped
            .spawn()
            .with_context(|| format!("cannot start {name}: {}", describe(cmd)))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, stdout_lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        spawn_reader(stdout, "", log.clone(), tail.clone(), Some(tx));
        spawn_reader(stderr, "[stderr] ", log, tail.clone(), None);
        Ok(Proc {
            name: name.to_owned(),
            child,
            exited: None,
            stdout_lines,
            tail,
        })
    }

    /// The name given at spawn, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pid of the `timeout` wrapper, which is also the process group id (the client
    /// is its child), for reading the tree's usage from /proc.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the whole process group, unless it already exited.
    pub fn signal(&mut self, signal: Signal) -> Result<()> {
        if self.try_exit()?.is_some() {
            return Ok(());
        }
        kill_process_group(self.pgid(), signal)
            .with_context(|| format!("cannot signal {}", self.name))
    }

    /// Kills the process group with SIGKILL and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        // ESRCH only means the group is already gone.
        let _ = kill_process_group(self.pgid(), Signal::KILL);
        let status = self.child.wait()?;
        self.exited = Some(status);
        Ok(status)
    }

    /// The exit status if it has exited (reaping it), without blocking.
    pub fn try_exit(&mut self) -> Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait()?;
        }
        Ok(self.exited)
    }

    /// Waits at most `timeout` for it to exit.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let what = format!("{} to exit", self.name);
        poll_until(timeout, &what, || self.try_exit())
    }

    /// Waits at most `timeout` for it to exit, and fails unless it exited with 0.
    pub fn wait_success(&mut self, timeout: Duration) -> Result<()> {
        let status = self.wait(timeout)?;
        if !status.success() {
            bail!(
                "{} failed ({status}); last output:\n{}",
                self.name,
                self.tail()
            );
        }
        Ok(())
    }

    /// Reads stdout lines, handing each to `check`, until it returns `Some`, the process
    /// closes its stdout (an error), or `timeout` passes (an error naming `what`).
    pub fn read_lines_until<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&str) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Deadline::after(timeout);
        loop {
            match self.stdout_lines.recv_timeout(deadline.remaining()) {
                Ok(line) => {
                    if let Some(value) = check(&line)? {
                        return Ok(value);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!(
                        "timed out after {timeout:?} waiting for {what} from {}",
                        self.name
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait(Duration::from_secs(5))?;
                    bail!(
                        "{} exited ({status}) before {what}; last output:\n{}",
                        self.name,
                        self.tail()
                    );
                }
            }
        }
    }

    /// The stdout lines received so far and not yet read.
    pub fn drain_lines(&mut self) -> Vec<String> {
        self.stdout_lines.try_iter().collect()
    }

    /// The last lines of stdout and stderr, for error messages.
    pub fn tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().map(|line| format!("    | {line}\n")).collect()
    }

    fn pgid(&self) -> Pid {
        // `process_group(0)` made the child's pid its process group id.
        Pid::from_raw(self.child.id() as i32).expect("child pid is positive")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Runs a short command to completion within `timeout` and returns its stdout; fails
/// with its output tail if it exits non-zero.
pub fn run(name: &str, cmd: &Command, timeout: Duration) -> Result<String> {
    let mut proc = Proc::spawn(name, cmd, None)?;
    proc.wait_success(timeout)?;
    // The reader thread may still be delivering the last lines: wait for it to hang up.
    let mut out = String::new();
    let deadline = Deadline::after(Duration::from_secs(5));
    loop {
        match proc.stdout_lines.recv_timeout(deadline.remaining()) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(out),
            Err(RecvTimeoutError::Timeout) => {
                return Err(anyhow!("{name} exited but its stdout stayed open"))
            }
        }
    }
}

/// A shell-like rendering of `cmd`, for logs and messages.
fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Copies `stream` line by line into the log, the tail and (for stdout) the channel.
fn spawn_reader(
    stream: impl Read + Send + 'static,
    prefix: &'static str,
    log: Option<Arc<Mutex<File>>>,
    tail: Arc<Mutex<VecDeque<String>>>,
    lines: Option<Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
            if let Some(log) = &log {
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(log, "{prefix}{line}");
            }
            {
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(format!("{prefix}{line}"));
            }
            if let Some(lines) = &lines {
                let _ = lines.send(line);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    #[test]
    fn run_returns_stdout() {
        let out = run("echo", &sh("echo one; echo two"), Duration::from_secs(10)).unwrap();
        assert_eq!(out, "one\ntwo\n");
    }

    #[test]
    fn run_reports_failure_with_output() {
        let err = run(
            "fails",
            &sh("echo why >&2; exit 3"),
            Duration::from_secs(10),
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("fails failed"), "{msg}");
        assert!(msg.contains("why"), "{msg}");
    }

    #[test]
    fn read_lines_until_finds_a_line() {
        let mut proc = Proc::spawn("lines", &sh("echo a; echo ready; sleep 30"), None).unwrap();
        let got = proc
            .read_lines_until(Duration::from_secs(10), "ready", |l| {
                Ok((l == "ready").then(|| l.to_owned()))
            })
            .unwrap();
        assert_eq!(got, "ready");
    }

    #[test]
    fn read_lines_until_fails_when_the_process_exits_first() {
        let mut proc = Proc::spawn("early", &sh("echo bye"), None).unwrap();
        let err = proc
            .read_lines_until(Duration::from_secs(10), "never", |_| Ok(None::<()>))
            .unwrap_err();
        assert!(err.to_string().contains("exited"), "{err}");
    }

    #[test]
    fn drop_kills_the_whole_group() {
        // The shell starts a background grandchild; killing the group must stop both.
        let mut proc = Proc::spawn("group", &sh("sleep 60 & echo $!; wait"), None).unwrap();
        let grandchild: i32 = proc
            .read_lines_until(Duration::from_secs(10), "pid", |l| Ok(l.parse().ok()))
            .unwrap();
        drop(proc);
        let pid = Pid::from_raw(grandchild).unwrap();
        poll_until(Duration::from_secs(5), "grandchild to die", || {
            Ok((!is_running(pid)).then_some(()))
        })
        .unwrap();
    }

    /// True if `pid` exists and is not a zombie (who reaps orphans varies by machine).
    fn is_running(pid: Pid) -> bool {
        match std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => false,
        }
    }

    #[test]
    fn wait_times_out() {
        let mut proc = Proc::spawn("sleeper", &sh("sleep 30"), None).unwrap();
        assert!(proc.wait(Duration::from_millis(200)).is_err());
    }
}
