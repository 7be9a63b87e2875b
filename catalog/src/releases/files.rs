//! A release's folder on disk: written whole or not at all, read back only if every
//! file matches its manifest.
//!
//! ```text
//! releases/1403Q4-1/
//!   release.json                  what was released, by whom, when, from what
//!   active_insured.full.parquet   the cells as they were
//!   active_insured.public.parquet the cells the public reads (small cells suppressed)
//!   MANIFEST.sha256               `sha256sum` lines for every file above
//! ```
//!
//! A release is written into `.partial-<id>` beside its final place, each file and
//! the folder synced, then renamed into place: a crash leaves a `.partial-` folder,
//! which the next start removes, never half a release. The manifest is in the format
//! `sha256sum -c` reads, so anyone can check a copy of a release without Amar.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};

/// The manifest's file name.
pub const MANIFEST: &str = "MANIFEST.sha256";
/// The metadata's file name.
pub const METADATA: &str = "release.json";
/// Folders of releases being written.
pub const PARTIAL: &str = ".partial-";

/// The hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn io(what: &str, path: &Path, e: std::io::Error) -> DataFusionError {
    DataFusionError::Execution(format!("cannot {what} {}: {e}", path.display()))
}

/// Batches as the bytes of one Parquet file.
pub fn parquet_bytes(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), None)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(out)
}

/// The batches of one Parquet file's bytes.
pub fn read_parquet(bytes: Vec<u8>) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes))?;
    let schema = builder.schema().clone();
    let batches = builder
        .build()?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

/// Writes `files` (name, bytes) as the release `id` under `root`, with their manifest,
/// atomically. Returns the manifest's own SHA-256, which names the release's content.
pub fn write_release(root: &Path, id: &str, files: &Files) -> Result<String> {
    std::fs::create_dir_all(root).map_err(|e| io("create", root, e))?;
    let partial = root.join(format!("{PARTIAL}{id}"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io("remove", &partial, e))?;
    }
    std::fs::create_dir(&partial).map_err(|e| io("create", &partial, e))?;
    let mut manifest = String::new();
    for (name, bytes) in files {
        write_synced(&partial.join(name), bytes)?;
        manifest.push_str(&format!("{}  {name}\n", sha256(bytes)));
    }
    write_synced(&partial.join(MANIFEST), manifest.as_bytes())?;
    sync_dir(&partial)?;
    let target = root.join(id);
    if target.exists() {
        return Err(DataFusionError::Execution(format!(
            "release \"{id}\" exists already; a release is never replaced"
        )));
    }
    std::fs::rename(&partial, &target).map_err(|e| io("move into place", &target, e))?;
    sync_dir(root)?;
    Ok(sha256(manifest.as_bytes()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = std::fs::File::create(path).map_err(|e| io("create", path, e))?;
    file.write_all(bytes).map_err(|e| io("write", path, e))?;
    file.sync_all().map_err(|e| io("sync", path, e))
}

fn sync_dir(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("sync", path, e))
}

/// Removes what a crash left: folders of releases that were being written.
pub fn remove_partial(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(PARTIAL) {
            let path = entry.path();
            match std::fs::remove_dir_all(&path) {
                Ok(()) => tracing::warn!(
                    "removed {}: a release that was being written when the server stopped",
                    path.display()
                ),
                Err(e) => tracing::error!("cannot remove {}: {e}", path.display()),
            }
        }
    }
}

/// The folders of stored releases, by name.
pub fn release_dirs(root: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return vec![];
    };
    let mut dirs: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    dirs.sort();
    dirs
}

/// A release's files, each with its name.
pub type Files = Vec<(String, Vec<u8>)>;

/// A release folder's files, each checked against the manifest: every file listed
/// must be there with its hash, and no other file may be. Returns the manifest's
/// SHA-256 and the files' bytes by name.
pub fn read_verified(dir: &Path) -> std::result::Result<(String, Files), String> {
    let manifest_path = dir.join(MANIFEST);
    let manifest = std::fs::read(&manifest_path)
        .map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
    let text = std::str::from_utf8(&manifest)
        .map_err(|_| format!("{} is not text", manifest_path.display()))?;
    let mut files = vec![];
    for (n, line) in text.lines().enumerate() {
        let Some((hash, name)) = line.split_once("  ") else {
            return Err(format!("{MANIFEST}, line {}: not `hash  name`", n + 1));
        };
        if name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(format!(
                "{MANIFEST}, line {}: not a file of the release",
                n + 1
            ));
        }
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| format!("{name}: {e}"))?;
        let actual = sha256(&bytes);
        if actual != hash {
            return Err(format!(
                "{name} does not match the manifest (SHA-256 {actual}, listed {hash})"
            ));
        }
        files.push((name.to_string(), bytes));
    }
    let listed: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != MANIFEST && !listed.contains(&name.as_str()) {
            return Err(format!("{name} is not in the manifest"));
        }
    }
    if !listed.contains(&METADATA) {
        return Err(format!("the manifest does not list {METADATA}"));
    }
    Ok((sha256(&manifest), files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_reads_back_and_any_change_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            (METADATA.to_string(), b"{}".to_vec()),
            ("a.full.parquet".to_string(), b"cells".to_vec()),
        ];
        let hash = write_release(dir.path(), "1403Q4-1", &files).unwrap();
        let (read_hash, read) = read_verified(&dir.path().join("1403Q4-1")).unwrap();
        assert_eq!(hash, read_hash);
        assert_eq!(read, files);
        // Written once: the same id again is refused.
        assert!(write_release(dir.path(), "1403Q4-1", &files).is_err());

        std::fs::write(dir.path().join("1403Q4-1/a.full.parquet"), b"cellz").unwrap();
        let e = read_verified(&dir.path().join("1403Q4-1")).unwrap_err();
        assert!(e.contains("a.full.parquet does not match"), "{e}");
        std::fs::write(dir.path().join("1403Q4-1/a.full.parquet"), b"cells").unwrap();
        std::fs::write(dir.path().join("1403Q4-1/extra"), b"x").unwrap();
        let e = read_verified(&dir.path().join("1403Q4-1")).unwrap_err();
        assert!(e.contains("extra is not in the manifest"), "{e}");
    }

    #[test]
    fn a_crash_mid_write_leaves_only_a_partial_folder_which_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".partial-1403Q4-1")).unwrap();
        std::fs::write(dir.path().join(".partial-1403Q4-1/release.json"), b"{").unwrap();
        assert!(release_dirs(dir.path()).is_empty());
        remove_partial(dir.path());
        assert!(!dir.path().join(".partial-1403Q4-1").exists());
    }
}
