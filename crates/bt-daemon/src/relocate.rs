//! Moving a torrent's data to another folder: a rename when both folders are on one
//! filesystem, else a copy (reporting progress) and then the removal of the original.

use std::fs;
use std::io;
use std::path::Path;

/// Moves `src` (a file or a folder) to `dst`, calling `progress` with the fraction done
/// while it copies. `dst` must not exist.
pub fn move_path(src: &Path, dst: &Path, progress: &dyn Fn(f64)) -> io::Result<()> {
    if dst.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists", dst.display()),
        ));
    }
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::rename(src, dst) {
        Ok(()) => {
            progress(1.0);
            return Ok(());
        }
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {}
        Err(e) => return Err(e),
    }
    let total = size_of(src)?.max(1);
    let mut done = 0u64;
    if let Err(e) = copy_tree(src, dst, &mut |n| {
        done += n;
        progress(done as f64 / total as f64);
    }) {
        // Leave the original whole; drop the partial copy.
        let _ = remove(dst);
        return Err(e);
    }
    remove(src)
}

fn remove(p: &Path) -> io::Result<()> {
    if p.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    }
}

fn size_of(p: &Path) -> io::Result<u64> {
    let meta = fs::symlink_metadata(p)?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for e in fs::read_dir(p)? {
        total += size_of(&e?.path())?;
    }
    Ok(total)
}

fn copy_tree(src: &Path, dst: &Path, copied: &mut dyn FnMut(u64)) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    if meta.is_dir() {
        fs::create_dir_all(dst)?;
        for e in fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()), copied)?;
        }
        Ok(())
    } else if meta.file_type().is_symlink() {
        // A torrent's storage makes no links; one found here is not followed.
        Ok(())
    } else {
        let n = fs::copy(src, dst)?;
        let f = fs::File::open(dst)?;
        f.sync_all()?;
        copied(n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_folder_moves_whole_and_an_existing_target_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let src = a.path().join("t");
        fs::create_dir_all(src.join("x")).unwrap();
        fs::write(src.join("x/1.bin"), b"one").unwrap();
        fs::write(src.join("2.bin"), b"two").unwrap();
        let last = Cell::new(0.0);
        move_path(&src, &b.path().join("t"), &|p| last.set(p)).unwrap();
        assert!(!src.exists());
        assert_eq!(fs::read(b.path().join("t/x/1.bin")).unwrap(), b"one");
        assert_eq!(last.get(), 1.0);
        fs::write(a.path().join("f"), b"f").unwrap();
        let err = move_path(&a.path().join("f"), &b.path().join("t"), &|_| {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(a.path().join("f").exists(), "the original stays");
    }

    #[test]
    fn across_filesystems_it_copies_with_progress() {
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            eprintln!("SKIP: no /dev/shm to cross filesystems with");
            return;
        }
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir_in(shm).unwrap();
        let src = a.path().join("big");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("1"), vec![7u8; 100_000]).unwrap();
        fs::write(src.join("2"), vec![8u8; 300_000]).unwrap();
        let seen = std::cell::RefCell::new(Vec::new());
        move_path(&src, &b.path().join("big"), &|p| seen.borrow_mut().push(p)).unwrap();
        assert!(!src.exists());
        assert_eq!(
            fs::read(b.path().join("big/2")).unwrap(),
            vec![8u8; 300_000]
        );
        let seen = seen.into_inner();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(*seen.last().unwrap(), 1.0);
    }
}
