//! Long-running processes started by the lab: spawned (usually inside a
//! namespace) with stdout and stderr appended to a log file, and stopped by
//! PID on drop: SIGTERM, then SIGKILL if still alive after a grace period.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{LabError, Result};
use crate::netns::describe;

/// A process we started; stopped (by PID) when dropped.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    pid: i32,
    child: Option<Child>,
    log: PathBuf,
    grace: Duration,
    /// Released with [`Daemon::release`]: not stopped on drop.
    released: bool,
}

impl Daemon {
    /// Spawns `cmd` in its own process group with stdin closed and stdout +
    /// stderr appended to `log`. `name` is for messages.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Daemon> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| LabError::io(format!("opening log {}", log.display()), e))?;
        let err = file
            .try_clone()
            .map_err(|e| LabError::io(format!("duplicating log {}", log.display()), e))?;
        use std::os::unix::process::CommandExt;
        cmd.stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| LabError::io(format!("starting {name}: {}", describe(&cmd)), e))?;
        let pid = i32::try_from(child.id())
            .map_err(|_| LabError::Invalid(format!("{name}: pid out of range")))?;
        Ok(Daemon {
            name: name.to_string(),
            pid,
            child: Some(child),
            log: log.to_path_buf(),
            grace: Duration::from_secs(5),
            released: false,
        })
    }

    /// Adopts a process that daemonized itself, from its pid file, waiting up
    /// to `timeout` for the file to appear.
    pub fn from_pidfile(
        name: &str,
        pidfile: &Path,
        log: &Path,
        timeout: Duration,
    ) -> Result<Daemon> {
        let pid = crate::wait::wait_until(
            &format!("{name} pid file {}", pidfile.display()),
            timeout,
            || {
                std::fs::read_to_string(pidfile)
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
                    .filter(|p| *p > 0)
            },
        )?;
        Ok(Daemon {
            name: name.to_string(),
            pid,
            child: None,
            log: log.to_path_buf(),
            grace: Duration::from_secs(5),
            released: false,
        })
    }

    /// Lets the process outlive this guard (the runner's `up`); returns its PID.
    pub fn release(mut self) -> i32 {
        self.released = true;
        self.pid
    }

    /// How long [`Daemon::stop`] waits after SIGTERM before SIGKILL.
    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// True while the process exists (and is not a zombie we reaped).
    pub fn is_running(&mut self) -> bool {
        if let Some(child) = self.child.as_mut() {
            return matches!(child.try_wait(), Ok(None));
        }
        kill(Pid::from_raw(self.pid), None).is_ok()
    }

    /// Sends `signal` to the process (by PID).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        kill(Pid::from_raw(self.pid), signal).map_err(|e| {
            LabError::io(
                format!("sending {signal} to {} (pid {})", self.name, self.pid),
                std::io::Error::from(e),
            )
        })
    }

    /// SIGKILL and reap: a crash, for restart tests.
    pub fn kill_hard(&mut self) {
        let _ = self.signal(Signal::SIGKILL);
        self.reap(Duration::from_secs(5));
    }

    /// SIGTERM, wait up to the grace period, then SIGKILL.
    pub fn stop(&mut self) {
        if !self.is_running() {
            self.reap(Duration::ZERO);
            return;
        }
        let _ = self.signal(Signal::SIGTERM);
        if !self.reap(self.grace) {
            let _ = self.signal(Signal::SIGKILL);
            self.reap(Duration::from_secs(5));
        }
    }

    /// Waits up to `timeout` for the process to exit; true when it did.
    fn reap(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_running() {
                if let Some(mut c) = self.child.take() {
                    let _ = c.wait();
                }
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.released {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_log_and_stop() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 30"]);
        let mut d = Daemon::spawn("sleep", cmd, &log).unwrap();
        crate::wait::wait_for("log line", Duration::from_secs(5), || {
            d.log_tail(1).contains("started")
        })
        .unwrap();
        assert!(d.is_running());
        d.stop();
        assert!(!d.is_running());
    }
}
