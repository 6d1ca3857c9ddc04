//! Finds, kills and reaps whatever the CLI left behind, even outside its process group.
//!
//! A process that leaves the CLI's group or session (`setsid`) escapes the group kill, and an
//! orphan would normally be handed to init, out of our reach. [`adopt_orphans`] makes this
//! process a child subreaper (Linux), so every orphan of the CLI's tree is reparented to us
//! instead: once the CLI is dead, every child of ours that is not the CLI is something it
//! left behind. [`reap_orphans`] kills those layer by layer (a killed orphan's own children
//! become ours before it can be reaped) until none is left.
//!
//! The sweep only ever waits on pids it found as its own children and is not the CLI, whose
//! exit status belongs to tokio. It runs only once [`adopt_orphans`] succeeded: a process that
//! did not opt in (a test harness running other children) is never swept.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Whether this process adopts orphans, so that its children other than the CLI are the CLI's.
static ADOPTING: AtomicBool = AtomicBool::new(false);

/// How long a sweep waits for killed processes to be reapable (SIGKILL is asynchronous, and a
/// process in uninterruptible sleep dies only when its system call returns). Whatever is left
/// after this is reaped by the next sweep.
const SWEEP_LIMIT: Duration = Duration::from_secs(2);
/// Pause between checks for a killed process's exit.
const POLL: Duration = Duration::from_millis(1);

/// Makes this process the reaper of every orphan in its tree of descendants, so that the
/// CLI's escaped descendants can be found and killed. Call once, before any test; only the
/// binary's commands that run tests call it.
pub(crate) fn adopt_orphans() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag of this process; the
        // remaining arguments are unused and passed as 0 as the manual asks.
        let set = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        if set != 0 {
            return Err(std::io::Error::last_os_error());
        }
        ADOPTING.store(true, Ordering::SeqCst);
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "adopting orphans needs Linux (PR_SET_CHILD_SUBREAPER)",
        ))
    }
}

/// Waits, within [`SWEEP_LIMIT`], until `cli` (a child of ours just sent SIGKILL) has exited,
/// without reaping it: its exit status stays tokio's. Its children are ours from then on.
pub(crate) fn wait_until_exited(cli: u32) {
    let pid: libc::id_t = cli;
    let deadline = Instant::now() + SWEEP_LIMIT;
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid only writes into `info`, which we own; WNOWAIT leaves the child
        // waitable, so tokio still collects its status.
        let waited = unsafe {
            libc::waitid(
                libc::P_PID,
                pid,
                &mut info,
                libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
            )
        };
        // SAFETY: `info` was zeroed and then possibly filled by waitid; si_pid reads its pid.
        let exited = waited != 0 || unsafe { info.si_pid() } != 0;
        if exited || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// Kills and reaps every child of ours except `cli`, then their children as they become ours,
/// until none is left or [`SWEEP_LIMIT`] has passed. Call once the CLI is dead (reaped, or a
/// zombie after [`wait_until_exited`]). Does nothing unless [`adopt_orphans`] succeeded.
pub(crate) fn reap_orphans(cli: Option<u32>) {
    if !ADOPTING.load(Ordering::SeqCst) {
        return;
    }
    let deadline = Instant::now() + SWEEP_LIMIT;
    loop {
        let orphans: Vec<libc::pid_t> = children()
            .into_iter()
            .filter(|&pid| u32::try_from(pid).ok() != cli)
            .collect();
        if orphans.is_empty() {
            return;
        }
        tracing::debug!(?orphans, "killing what the speedtest CLI left behind");
        for &pid in &orphans {
            // SAFETY: kill(2) only sends a signal. `pid` is our own unreaped child, so it
            // cannot have been reused by another process.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        for &pid in &orphans {
            if !reap(pid, deadline) {
                tracing::warn!(
                    pid,
                    "a process the speedtest CLI left behind did not die in time; it will be reaped later"
                );
                return;
            }
        }
    }
}

/// Reaps our child `pid`, polling until `deadline`; false if it is still alive then.
fn reap(pid: libc::pid_t, deadline: Instant) -> bool {
    loop {
        let mut status = 0;
        // SAFETY: waitpid only writes the status into the integer we own.
        let waited = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        // `pid` when reaped, -1 when it is not (or no longer) our child: done either way.
        if waited != 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// The pids whose parent is this process, from /proc (zombies included: they need reaping).
fn children() -> Vec<libc::pid_t> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            entry
                .ok()?
                .file_name()
                .to_str()?
                .parse::<libc::pid_t>()
                .ok()
        })
        // A process that ends mid-scan is simply not there any more.
        .filter(|pid| parent_of(*pid) == Some(me))
        .collect()
}

/// The parent pid in /proc/PID/stat: the second field after the command name, which is in
/// parentheses and may itself contain spaces and parentheses.
fn parent_of(pid: libc::pid_t) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split(' ').nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_of_a_child_is_read_from_proc() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        assert_eq!(parent_of(pid), Some(std::process::id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(parent_of(pid), None, "reaped: gone from /proc");
    }

    #[test]
    fn without_adopting_nothing_is_swept() {
        // This harness never adopts orphans, so its other tests' children are safe.
        assert!(!ADOPTING.load(Ordering::SeqCst));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        reap_orphans(None);
        assert_eq!(child.try_wait().unwrap(), None, "still running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
