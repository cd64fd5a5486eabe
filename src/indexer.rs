//! The search indexer: a thread of the daemon's own that adds stored articles to the search
//! index while polls go on, and merges the index's segments once nothing new is coming.
//! `run --once` has no idle time to give it: what it stores is indexed by the next daemon, or
//! by `feedwatch search` itself when no feedwatch is running.
//!
//! The index is a file of its own (see `store::search`), so this thread does not hold the
//! database's write lock while it indexes (only for a moment, to trim the queue of deleted and
//! edited articles once it has taken them); it runs at a low CPU priority, so that fetching,
//! parsing, matching and storing (what alerts wait for) come first.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, Once, PoisonError};
use std::thread::JoinHandle;

use crate::store::{INDEX_BATCH, SearchIndex};

/// Index pages merged per step (4 KB each): between steps, the thread looks for new articles.
const MERGE_STEP_PAGES: usize = 500;

/// What the thread has been asked to do since it last looked.
#[derive(Debug, Default)]
struct Asked {
    /// Articles were stored, or removed (the database queues removals for the index).
    stored: bool,
    /// End after the current batch.
    stop: bool,
}

#[derive(Default)]
struct Shared {
    asked: Mutex<Asked>,
    changed: Condvar,
}

/// The handle to the indexer thread.
pub struct Indexer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    /// Starts the thread for the search index of the database at `database`, and has it index
    /// whatever earlier runs left unindexed; it merges the index's segments whenever nothing
    /// new is coming. If the index cannot be opened, says so and indexes nothing: polling and
    /// alerting go on without it.
    pub fn start(database: &Path) -> Indexer {
        let shared = Arc::new(Shared::default());
        shared.ask(|asked| asked.stored = true);
        // Opened on the thread itself: it is blocking work, and the runtime's threads are for
        // the polls.
        let database = database.to_path_buf();
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("search-indexer".into())
                // The daemon holds the database's instance lock: no other feedwatch is beside it.
                .spawn(move || match SearchIndex::open_alone(&database) {
                    Ok(index) => run(index, &shared),
                    Err(e) => tracing::error!(
                        "search index unavailable, new articles are not indexed: {e}"
                    ),
                })
                .map_err(|e| tracing::error!("cannot start the search indexer: {e}"))
                .ok()
        };
        Indexer { shared, thread }
    }

    /// New articles were stored.
    pub fn stored(&self) {
        self.shared.ask(|asked| asked.stored = true);
    }

    /// A handle for other tasks to say that articles were removed (pruned, say), so that the
    /// index lets go of them now rather than at the next poll that stores something.
    pub fn removals(&self) -> Removals {
        Removals(Arc::clone(&self.shared))
    }

    /// Ends the thread after the batch or merge step it is in.
    pub async fn stop(self) {
        self.shared.ask(|asked| asked.stop = true);
        self.join().await;
    }

    async fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("the search indexer failed");
            }
        }
    }
}

/// See [`Indexer::removals`].
#[derive(Clone)]
pub struct Removals(Arc<Shared>);

impl Removals {
    pub fn queued(&self) {
        self.0.ask(|asked| asked.stored = true);
    }
}

/// An indexer dropped without `stop` (a run ended by an error) ends its thread too.
impl Drop for Indexer {
    fn drop(&mut self) {
        self.shared.ask(|asked| asked.stop = true);
    }
}

impl Shared {
    fn ask(&self, ask: impl FnOnce(&mut Asked)) {
        ask(&mut self.asked.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_one();
    }

    /// What was asked since the last look, or nothing if `wait` is false and nothing was.
    fn take(&self, wait: bool) -> Asked {
        let mut asked = self.asked.lock().unwrap_or_else(PoisonError::into_inner);
        while wait && !(asked.stored || asked.stop) {
            asked = self
                .changed
                .wait(asked)
                .unwrap_or_else(PoisonError::into_inner);
        }
        std::mem::take(&mut *asked)
    }

    /// Whether a stop was asked; the rest of what was asked is left for `take`.
    fn stop_asked(&self) -> bool {
        self.asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop
    }
}

fn run(mut index: SearchIndex, shared: &Shared) {
    lower_priority();
    let mut wait = false;
    loop {
        let asked = shared.take(wait);
        if asked.stop {
            return;
        }
        if asked.stored {
            // Batch after batch: articles stored meanwhile join in the next.
            loop {
                match index.index_batch(INDEX_BATCH) {
                    Ok(0) => break,
                    Ok(_) if shared.stop_asked() => return,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!("adding articles to the search index failed: {e}");
                        break;
                    }
                }
            }
        }
        // Nothing new: merge a step at a time, looking for news between steps.
        wait = match index.merge(MERGE_STEP_PAGES) {
            Ok(merged) => !merged,
            Err(e) => {
                tracing::error!("merging the search index failed: {e}");
                true
            }
        };
        if wait {
            // Idle until news: its page cache would only hold memory meanwhile.
            if let Err(e) = index.release_memory() {
                tracing::debug!("emptying the search index's page cache: {e}");
            }
        }
    }
}

/// Indexing can always wait: let the polls' threads have the CPU first. Where the system
/// refuses (the shipped service's syscall filter answers `EPERM`), indexing goes on at the
/// daemon's own priority; that is said once, at debug level, since nothing else changes.
fn lower_priority() {
    static REFUSAL_LOGGED: Once = Once::new();
    if let Err(e) = set_low_priority() {
        REFUSAL_LOGGED.call_once(|| {
            tracing::debug!(
                "search indexing keeps the daemon's CPU priority: setpriority failed: {e}"
            );
        });
    }
}

/// Gives this thread (not the whole process) nice value 10.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_low_priority() -> std::io::Result<()> {
    // SAFETY: gettid takes nothing and setpriority only reads its arguments; a thread id
    // names this thread alone.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_low_priority() -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// This thread's nice value, as the kernel reports it (field 19 of its `stat`).
    fn nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name in parentheses may hold spaces; fields are counted after it.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn the_indexing_thread_alone_gets_a_low_priority() {
        let before = nice();
        let lowered = std::thread::spawn(|| set_low_priority().map(|()| nice()))
            .join()
            .unwrap();
        match lowered {
            Ok(nice) => assert_eq!(nice, 10),
            // Lowering one's own priority needs no privilege; only a thread niced above 10
            // already may not come back to 10 without it.
            Err(e) => assert!(
                before > 10 && e.kind() == std::io::ErrorKind::PermissionDenied,
                "{e}"
            ),
        }
        assert_eq!(nice(), before, "the calling thread keeps its priority");
    }
}
