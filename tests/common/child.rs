//! Running a child process and measuring it alone, for tests and benchmarks alike: its exit
//! code, wall time, CPU time and peak resident memory.

use std::process::Command;
use std::time::{Duration, Instant};

/// What a finished child used.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub code: i32,
    pub wall: Duration,
    pub cpu: Duration,
    pub peak_rss_kib: i64,
}

/// Runs `command` to its end and measures it. `wait4` reaps the child and reports the
/// child's own resource usage, which `getrusage` of this process would mix with its own.
pub fn wait4(command: &mut Command) -> Measured {
    let started = Instant::now();
    let child = command.spawn().expect("start the child");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: waiting on our own child with a zeroed, valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(waited, pid, "wait4");
    // Reaped by wait4 above.
    drop(child);
    Measured {
        code: libc::WEXITSTATUS(status),
        wall,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        peak_rss_kib: usage.ru_maxrss,
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}
