//! What it takes to run as a well-behaved service, apart from the pipeline itself: one instance
//! per database (a lock file), systemd's readiness and watchdog protocol, log lines journald
//! files by priority, and noticing when the config file is edited.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "another feedwatch{} is already running on {database}; two instances would send \
         alerts twice. Stop it first (lock file {lock})",
        .pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        database = .database.display(),
        lock = .lock.display()
    )]
    AlreadyRunning {
        database: PathBuf,
        lock: PathBuf,
        pid: Option<u32>,
    },
    #[error("lock file {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held for as long as this process works on a database; released when dropped or when the
/// process dies, however it dies (an OS file lock, not a stale pid file).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// The lock file that guards `database`.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl InstanceLock {
    /// Takes the lock for `database`, or says who holds it.
    pub fn acquire(database: &Path) -> Result<InstanceLock, ServiceError> {
        let path = lock_path(database);
        let io = |source| ServiceError::Lock {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(ServiceError::AlreadyRunning {
                    database: database.to_path_buf(),
                    pid: read_pid(&mut file),
                    lock: path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(InstanceLock { _file: file })
    }
}

/// Who holds the lock for `database`: `Some(pid)` (or `Some(None)` if the pid is unreadable)
/// when a feedwatch is running on it, `None` when nobody is.
pub fn running_instance(database: &Path) -> Option<Option<u32>> {
    let mut file = File::open(lock_path(database)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => Some(read_pid(&mut file)),
        Err(TryLockError::Error(_)) => None,
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Logging to journald through stderr, as systemd connects a service's stderr.
pub mod journal {
    use std::fmt;
    use std::os::unix::fs::MetadataExt;

    use tracing::{Event, Level, Subscriber};
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
    use tracing_subscriber::registry::LookupSpan;

    /// Whether stderr is the journal's stream: systemd names it in `JOURNAL_STREAM` as
    /// `device:inode` (systemd.exec(5)). A child whose stderr was redirected inherits the
    /// variable but not the stream, hence the comparison.
    pub fn stderr_is_journal() -> bool {
        let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
            return false;
        };
        match std::fs::metadata("/proc/self/fd/2") {
            Ok(meta) => dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino()),
            Err(_) => false,
        }
    }

    /// The syslog priority journald reads from a `<N>` line prefix (sd-daemon(3)).
    pub fn priority(level: &Level) -> u8 {
        match *level {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            _ => 7,
        }
    }

    /// Prefixes each event with its priority, so `journalctl -p warning` shows warnings and
    /// errors alone instead of every line at the stream's default level.
    pub struct PriorityPrefix<F>(pub F);

    impl<S, N, F> FormatEvent<S, N> for PriorityPrefix<F>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
        F: FormatEvent<S, N>,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, N>,
            mut writer: Writer<'_>,
            event: &Event<'_>,
        ) -> fmt::Result {
            write!(writer, "<{}>", priority(event.metadata().level()))?;
            self.0.format_event(ctx, writer, event)
        }
    }
}

/// systemd's notification protocol; every call is a no-op when not started by systemd
/// (`NOTIFY_SOCKET` unset), and a failure to notify is logged, never fatal.
pub mod systemd {
    use sd_notify::NotifyState;

    fn send(states: &[NotifyState]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::debug!("sd_notify failed: {e}");
        }
    }

    pub fn ready(status: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(status: &str) {
        send(&[NotifyState::Status(status)]);
    }

    /// Announces a reload; `Type=notify-reload` wants the monotonic time with it.
    pub fn reloading() {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => send(&[NotifyState::Reloading, now]),
            Err(_) => send(&[NotifyState::Reloading]),
        }
    }

    pub fn stopping() {
        send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    pub fn watchdog() {
        send(&[NotifyState::Watchdog]);
    }

    /// How often to ping the watchdog: half the interval systemd expects, if it expects any.
    pub fn watchdog_interval() -> Option<std::time::Duration> {
        sd_notify::watchdog_enabled().map(|d| d / 2)
    }
}

/// How the process holds memory over a long life.
///
/// What feedwatch allocates goes to jemalloc; SQLite's own allocations go to glibc's malloc.
pub mod memory {
    /// jemalloc rather than glibc's malloc: with glibc, threads that free what others
    /// allocated wait on each other's heaps, and its allocating and freeing were a tenth of a
    /// cold poll's CPU. The poll benchmark's cold poll of 1,000 feeds took about a fifth less CPU
    /// with jemalloc (docs/performance.md, docs/decisions/0002-allocator.md).
    #[cfg(not(target_env = "msvc"))]
    #[global_allocator]
    static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

    /// jemalloc's settings, which it reads as it starts (`_RJEM_MALLOC_CONF` in the
    /// environment overrides them). One arena and small thread caches: every thread keeps its
    /// cache while it idles, and with two arenas and the default caches (up to 32 KiB objects)
    /// the daemon on 20,000 feeds held 305 MB after three minutes and growing, against 164 MB
    /// with these and 184 MB with glibc's two heaps (daemon benchmark); caches of the default
    /// number of slots left the idle daemon 3 MB larger. Freed pages go back to the system
    /// after a second, on jemalloc's own thread, idle or not.
    #[cfg(not(target_env = "msvc"))]
    // SAFETY: jemalloc reads this symbol as its `malloc_conf`, a pointer to a C string, once as
    // it starts; the string ends in a NUL and is never written.
    #[allow(unsafe_code)]
    #[unsafe(export_name = "_rjem_malloc_conf")]
    static MALLOC_CONF: &u8 = &b"narenas:1,tcache_max:1024,tcache_nslots_small_max:20,\
tcache_nslots_large:4,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0];

    /// Heaps glibc's allocator keeps at most, for SQLite. glibc makes one for each thread that
    /// allocates while the others' are busy, and each keeps what was freed in it: 20,000 feeds
    /// in the daemon held 600 MB with glibc's default and 240 MB with two heaps, for the same
    /// CPU, when glibc served all of feedwatch (daemon benchmark).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    const HEAPS: libc::c_int = 2;

    /// Free memory glibc keeps at the top of a heap rather than give it back at once. SQLite
    /// alone allocates there, and frees its page cache's first pages at the end of a
    /// transaction: with glibc's default (128 KiB, no longer raised by feedwatch's own large
    /// blocks, which go to jemalloc) every transaction gave them back and faulted them in
    /// again, 27 page faults an alert delivered and a third of the CPU of draining a backlog (outbox
    /// benchmark). What is kept goes back when the daemon goes idle ([`release_free`]).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    const TRIM_THRESHOLD: libc::c_int = 64 << 20;

    /// Caps glibc's heaps at [`HEAPS`] and sets its [`TRIM_THRESHOLD`], each unless the
    /// environment sets it (`MALLOC_ARENA_MAX`, `MALLOC_TRIM_THRESHOLD_`); called before any
    /// thread starts.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    pub fn configure_glibc() {
        for (variable, param, value) in [
            ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, HEAPS),
            (
                "MALLOC_TRIM_THRESHOLD_",
                libc::M_TRIM_THRESHOLD,
                TRIM_THRESHOLD,
            ),
        ] {
            if std::env::var_os(variable).is_none() {
                // SAFETY: mallopt only sets a parameter of the allocator's own state.
                unsafe {
                    libc::mallopt(param, value);
                }
            }
        }
    }

    /// Returns the free memory in glibc's heaps to the system (glibc keeps it; jemalloc returns
    /// its own by itself).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    pub fn release_free() {
        // SAFETY: malloc_trim takes a byte count and only works on the allocator's own state.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    pub fn configure_glibc() {}

    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    pub fn release_free() {}
}

/// Watches the config file and wakes `changed` when it is written. Editors save by writing a new
/// file and renaming it over the old one, so the folder is watched and events are filtered by
/// file name. Returns `None` (after logging why) when the platform cannot watch; SIGHUP still
/// works then.
pub fn watch_config(path: &Path, changed: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    let file_name = path.file_name()?.to_owned();
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = !matches!(event.kind, notify::EventKind::Access(_))
            && event
                .paths
                .iter()
                .any(|p| p.file_name() == Some(file_name.as_os_str()));
        if relevant {
            changed.notify_one();
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("cannot watch the config file for changes (SIGHUP still reloads): {e}");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&folder, RecursiveMode::NonRecursive) {
        tracing::warn!(
            "cannot watch {} for changes (SIGHUP still reloads): {e}",
            folder.display()
        );
        return None;
    }
    Some(watcher)
}

/// Editors write a file in several steps; wait until they are done before reading it.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_one_database_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("fw.db");
        let first = InstanceLock::acquire(&db).unwrap();
        assert_eq!(running_instance(&db), Some(Some(std::process::id())));
        let err = InstanceLock::acquire(&db).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("already running"), "{text}");
        assert!(text.contains(&std::process::id().to_string()), "{text}");
        drop(first);
        assert_eq!(running_instance(&db), None);
        InstanceLock::acquire(&db).unwrap();
    }
}
