//! Writing files and folders so that a crash leaves the old state or the
//! new one, never half of one: write beside the target, fsync, rename into
//! place, fsync the directory that holds it (without the last step the
//! rename itself may not survive a power loss).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// The directory a path lies in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Fsyncs a directory, so renames and new entries in it are durable. A
/// file system that cannot sync a directory at all says `EINVAL`; that is
/// not an error (the files themselves are synced).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir)?.sync_all() {
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

/// Fsyncs the directory a path lies in.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    sync_dir(parent_dir(path))
}

/// A temporary file beside `path` (same directory, so the rename is
/// atomic), named `.<name>.<random>.tmp` and readable by the owner only.
pub fn temp_beside(path: &Path) -> io::Result<NamedTempFile> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(parent_dir(path))?;
    // tempfile creates 0600 already; the umask can only take bits away, so
    // set it exactly, that the owner can always read the file back.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// What [`persist`] does when the target exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Replace,
    Refuse,
}

/// Fsyncs a finished temporary file, renames it to `path` and fsyncs the
/// directory. With [`Existing::Refuse`] an existing `path` is an
/// `AlreadyExists` error and the temporary file is removed.
pub fn persist(file: NamedTempFile, path: &Path, existing: Existing) -> io::Result<()> {
    file.as_file().sync_all()?;
    match existing {
        Existing::Replace => file.persist(path).map_err(|e| e.error)?,
        Existing::Refuse => file.persist_noclobber(path).map_err(|e| e.error)?,
    };
    sync_parent(path)
}

/// Replaces `path` with `bytes` atomically (owner-only permissions, as
/// [`temp_beside`] makes them).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = temp_beside(path)?;
    file.write_all(bytes)?;
    persist(file, path, Existing::Replace)
}

/// Why an [`AtomicDir`] could not be made or committed.
#[derive(Debug, thiserror::Error)]
pub enum AtomicDirError {
    #[error("{} already exists and is not empty", path.display())]
    Exists { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> AtomicDirError + '_ {
    move |source| AtomicDirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A folder that appears whole or not at all: built under a hidden
/// temporary name beside its final place, then every file and the folder
/// fsynced, renamed into place and the parent fsynced. Dropped without
/// [`commit`](Self::commit), the partial folder is removed.
#[derive(Debug)]
pub struct AtomicDir {
    partial: Option<tempfile::TempDir>,
    final_path: PathBuf,
}

impl AtomicDir {
    /// Refuses a `final_path` that exists and is not empty (an empty one
    /// is replaced at commit). `prefix` names the partial folder
    /// (`.koppel-release-…`), so an operator can tell what left it.
    pub fn new(final_path: &Path, prefix: &str) -> Result<AtomicDir, AtomicDirError> {
        if final_path.exists() {
            let empty = std::fs::read_dir(final_path)
                .map_err(io_at(final_path))?
                .next()
                .is_none();
            if !empty {
                return Err(AtomicDirError::Exists {
                    path: final_path.to_owned(),
                });
            }
        }
        let parent = parent_dir(final_path);
        std::fs::create_dir_all(parent).map_err(io_at(parent))?;
        let partial = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)
            .map_err(io_at(parent))?;
        Ok(AtomicDir {
            partial: Some(partial),
            final_path: final_path.to_owned(),
        })
    }

    /// Where to write the folder's files until the commit.
    pub fn path(&self) -> &Path {
        self.partial
            .as_ref()
            .expect("an AtomicDir is not used after its commit")
            .path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// The folder's final place.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Fsyncs every file (one level deep) and the folder, renames it into
    /// place and fsyncs the parent. On an error the partial folder is
    /// removed and nothing is at the final place.
    pub fn commit(mut self) -> Result<PathBuf, AtomicDirError> {
        let partial = self.partial.take().expect("committed once");
        // On an error here `partial` is dropped, and with it the folder.
        sync_folder(partial.path())?;
        if self.final_path.exists() {
            // Checked empty when made; an empty folder is replaced.
            std::fs::remove_dir(&self.final_path).map_err(io_at(&self.final_path))?;
        }
        let kept = partial.keep();
        if let Err(e) = std::fs::rename(&kept, &self.final_path) {
            let _ = std::fs::remove_dir_all(&kept);
            return Err(io_at(&self.final_path)(e));
        }
        sync_parent(&self.final_path).map_err(io_at(&self.final_path))?;
        Ok(self.final_path.clone())
    }
}

/// Fsyncs every file directly in `dir`, then `dir` itself.
fn sync_folder(dir: &Path) -> Result<(), AtomicDirError> {
    for entry in std::fs::read_dir(dir).map_err(io_at(dir))? {
        let path = entry.map_err(io_at(dir))?.path();
        if path.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io_at(&path))?;
        }
    }
    sync_dir(dir).map_err(io_at(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(entries(dir.path()), vec!["state.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");
        }
    }

    #[test]
    fn persist_can_refuse_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sealed");
        std::fs::write(&path, b"first").unwrap();
        let mut tmp = temp_beside(&path).unwrap();
        tmp.write_all(b"second").unwrap();
        let err = persist(tmp, &path, Existing::Refuse).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(entries(dir.path()), vec!["sealed"]);
    }

    #[test]
    fn an_atomic_dir_appears_whole_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("out");
        let dir = AtomicDir::new(&target, ".koppel-test-").unwrap();
        std::fs::write(dir.file("a.txt"), b"a").unwrap();
        assert!(!target.exists());
        assert_eq!(dir.commit().unwrap(), target);
        assert_eq!(entries(&target), vec!["a.txt"]);
        assert_eq!(entries(root.path()), vec!["out"]);

        // A non-empty target is refused; a dropped one leaves nothing.
        assert!(matches!(
            AtomicDir::new(&target, ".koppel-test-"),
            Err(AtomicDirError::Exists { .. })
        ));
        let other = root.path().join("other");
        let dir = AtomicDir::new(&other, ".koppel-test-").unwrap();
        std::fs::write(dir.file("b.txt"), b"b").unwrap();
        drop(dir);
        assert_eq!(entries(root.path()), vec!["out"]);

        // An empty target is replaced.
        std::fs::create_dir(&other).unwrap();
        let dir = AtomicDir::new(&other, ".koppel-test-").unwrap();
        std::fs::write(dir.file("c.txt"), b"c").unwrap();
        dir.commit().unwrap();
        assert_eq!(entries(&other), vec!["c.txt"]);
    }
}
