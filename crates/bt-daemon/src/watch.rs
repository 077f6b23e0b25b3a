//! The watch folder: a `.torrent` or `.magnet` file dropped there is added, with the
//! category named by the sub-folder it is in (created if new), then renamed with
//! `.added` (or `.invalid`, with the reason in the log) so it is not added twice.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::daemon::{AddOptions, Daemon, DaemonError, Source};
use crate::log::LogKind;

/// How deep sub-folders are looked into.
const MAX_DEPTH: usize = 4;
/// A file changed more recently than this may still be being written.
const SETTLE: Duration = Duration::from_secs(1);
/// Larger files are not torrents bt would open.
const MAX_FILE: u64 = 32 << 20;

/// Files to add under `dir`, with the category their folder names.
fn candidates(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            if !ft.is_file() {
                continue;
            }
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !ext.eq_ignore_ascii_case("torrent") && !ext.eq_ignore_ascii_case("magnet") {
                continue;
            }
            let category = path
                .parent()
                .and_then(|p| p.strip_prefix(dir).ok())
                .map(|rel| {
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_default();
            out.push((path, category));
        }
    }
    out.sort();
    out
}

fn settled(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age >= SETTLE)
}

fn mark(path: &Path, suffix: &str) {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    let _ = std::fs::rename(path, path.with_file_name(name));
}

/// Adds what is waiting in `dir`; returns how many torrents were added.
pub async fn scan(daemon: &Daemon, dir: &Path) -> usize {
    let mut added = 0;
    for (path, category) in candidates(dir) {
        if !settled(&path) {
            continue;
        }
        let read = std::fs::metadata(&path)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                if m.len() > MAX_FILE {
                    Err(format!("larger than {MAX_FILE} bytes"))
                } else {
                    std::fs::read(&path).map_err(|e| e.to_string())
                }
            });
        let source = read.map(|bytes| {
            let is_magnet = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("magnet"));
            if is_magnet {
                let text = String::from_utf8_lossy(&bytes);
                Source::Magnet(text.lines().next().unwrap_or("").trim().to_string())
            } else {
                Source::Torrent(bytes)
            }
        });
        let result = match source {
            Err(e) => Err(e),
            Ok(source) => {
                if !category.is_empty() && !daemon.categories().contains_key(&category) {
                    let _ = daemon.put_category(&category, "", false);
                }
                let opts = AddOptions {
                    category: category.clone(),
                    ..AddOptions::default()
                };
                match daemon.add(source, opts).await {
                    Ok(_) => {
                        added += 1;
                        Ok(())
                    }
                    Err(DaemonError::Duplicate(h)) => {
                        daemon.note(
                            LogKind::Info,
                            format!("{}: already added ({h})", path.display()),
                        );
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match result {
            Ok(()) => mark(&path, ".added"),
            Err(reason) => {
                daemon.note(
                    LogKind::Warning,
                    format!("watch folder: {} not added: {reason}", path.display()),
                );
                mark(&path, ".invalid");
            }
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_folders_name_the_category_and_other_files_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tv/hd")).unwrap();
        std::fs::write(dir.path().join("a.torrent"), b"x").unwrap();
        std::fs::write(dir.path().join("tv/hd/b.MAGNET"), b"x").unwrap();
        std::fs::write(dir.path().join("tv/notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("c.torrent.added"), b"x").unwrap();
        let got: Vec<(String, String)> = candidates(dir.path())
            .into_iter()
            .map(|(p, c)| (p.file_name().unwrap().to_string_lossy().into_owned(), c))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a.torrent".to_string(), String::new()),
                ("b.MAGNET".to_string(), "tv/hd".to_string())
            ]
        );
    }
}
