//! Files feedwatch makes beside a database belong to whoever owns its folder. A service's
//! database lives in a folder of the service's user; an administrator's command run as root
//! (a `search` that builds the index while the service is stopped, a `status` that opens the
//! write-ahead log) would otherwise leave files there that the service can no longer write.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Gives `file` and its SQLite companions (`-wal`, `-shm`) to the owner of the folder they are
/// in, where they belong to someone else. Only root may do that; for anyone else the files
/// are theirs already, or left as they are.
pub(super) fn give_to_folder_owner(file: &Path) {
    let folder = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(folder) = folder.metadata() else {
        return;
    };
    for suffix in ["", "-wal", "-shm"] {
        let mut name = OsString::from(file);
        name.push(suffix);
        let Ok(meta) = std::fs::metadata(&name) else {
            continue;
        };
        if (meta.uid(), meta.gid()) == (folder.uid(), folder.gid()) {
            continue;
        }
        match std::os::unix::fs::chown(&name, Some(folder.uid()), Some(folder.gid())) {
            Ok(()) => tracing::debug!(
                "gave {} to the owner of its folder (uid {})",
                Path::new(&name).display(),
                folder.uid()
            ),
            // Not root: the file stays someone else's, as it was.
            Err(e) => tracing::debug!("cannot give {} away: {e}", Path::new(&name).display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this process may give files away: only when it runs as root.
    fn running_as_root(dir: &Path) -> bool {
        let probe = dir.join("probe");
        std::fs::write(&probe, b"").unwrap();
        let root = std::fs::metadata(&probe).unwrap().uid() == 0;
        std::fs::remove_file(probe).unwrap();
        root
    }

    #[test]
    fn a_database_and_index_made_by_root_in_a_service_folder_belong_to_the_service() {
        let dir = tempfile::tempdir().unwrap();
        if !running_as_root(dir.path()) {
            eprintln!("skipped: only root can give files away");
            return;
        }
        let service = 64_999;
        std::os::unix::fs::chown(dir.path(), Some(service), Some(service)).unwrap();
        let database = dir.path().join("feedwatch.db");
        let store = super::super::Store::open(&database).unwrap();
        let index = super::super::SearchIndex::open(&database).unwrap();
        let mut made = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                (service, service),
                "{} is the service's",
                entry.path().display()
            );
            made += 1;
        }
        // The database and the index, each with its write-ahead log and shared memory.
        assert_eq!(made, 6);
        drop((store, index));
    }
}
