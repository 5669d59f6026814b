//! Opening a mount for one attempt so that nothing a plugin did earlier can redirect it.
//!
//! A mount's host path was canonicalised when the workflow was validated, and the directory's
//! identity (device and inode) recorded. Between attempts a plugin with write access to a parent
//! folder could rename the directory away and put a symbolic link (or another directory) in its
//! place. So each attempt opens the path with `openat2(RESOLVE_NO_SYMLINKS)`: no component may
//! be a symbolic link; then checks that the directory is still the one validation saw; then
//! hands wasmtime the already-open directory through `/proc/self/fd/N`, which names that very
//! inode whatever happens to the path afterwards.

use bulkhead_core::contract::Mount;
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags, CWD};

/// A mount opened for one attempt; its directory stays open while this lives.
#[derive(Debug)]
pub(crate) struct OpenMount {
    fd: OwnedFd,
}

impl OpenMount {
    /// The path under which the open directory can be opened again: exactly that inode.
    pub(crate) fn path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }
}

/// Opens `mount`'s directory without following symbolic links, and checks it is the directory
/// validation saw. The error says what changed, for a `load` failure.
pub(crate) fn open(mount: &Mount) -> Result<OpenMount, String> {
    let shown = mount.host.display();
    let fd = rustix::fs::openat2(
        CWD,
        &mount.host,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP => format!(
            "{shown} is now reached through a symbolic link; it was a plain directory when the workflow was validated, so it was refused"
        ),
        rustix::io::Errno::NOTDIR => format!("{shown} is no longer a directory"),
        e => format!("cannot open {shown}: {e}"),
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| format!("cannot inspect {shown}: {e}"))?;
    let seen = (stat.st_dev as u64, stat.st_ino as u64);
    if seen != mount.identity {
        return Err(format!(
            "{shown} is no longer the directory the workflow was validated with (it was replaced or moved); validate the workflow again"
        ));
    }
    Ok(OpenMount { fd })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mount_of(path: &std::path::Path) -> Mount {
        let meta = std::fs::metadata(path).unwrap();
        Mount {
            host: std::fs::canonicalize(path).unwrap(),
            guest: "/data".into(),
            writable: false,
            identity: (meta.dev(), meta.ino()),
        }
    }

    #[test]
    fn a_mount_swapped_for_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let m = mount_of(&sub);
        assert!(open(&m).is_ok());
        std::fs::rename(&sub, dir.path().join("moved")).unwrap();
        std::os::unix::fs::symlink("/etc", &sub).unwrap();
        let e = open(&m).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
    }

    #[test]
    fn a_mount_replaced_by_another_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let m = mount_of(&sub);
        std::fs::rename(&sub, dir.path().join("moved")).unwrap();
        std::fs::create_dir(&sub).unwrap();
        let e = open(&m).unwrap_err();
        assert!(e.contains("no longer the directory"), "{e}");
    }

    #[test]
    fn the_open_path_names_the_directory_that_was_opened() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("f"), "x").unwrap();
        let opened = open(&mount_of(&sub)).unwrap();
        // Moving the directory after it was opened does not change what the attempt sees.
        std::fs::rename(&sub, dir.path().join("moved")).unwrap();
        std::os::unix::fs::symlink("/etc", &sub).unwrap();
        let seen: Vec<_> = std::fs::read_dir(opened.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(seen, vec![std::ffi::OsString::from("f")]);
    }
}
