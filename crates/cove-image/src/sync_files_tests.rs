//! Synced files: stored only when every upload entry matches its digest; a
//! context assembled only from stored files, deterministically.

use std::io::Read;

use cove_types::{SyncEntry, SyncEntryKind, SyncManifest};
use sha2::{Digest, Sha256};

use super::*;

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ImageStore::open(
        dir.path(),
        std::sync::Arc::new(cove_store::SqliteStore::open_in_memory().unwrap()),
    )
    .unwrap();
    (dir, s)
}

/// A tar of `(name, content)` regular entries.
fn upload(dir: &Path, entries: &[(&str, &[u8])]) -> PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    let p = dir.join("upload.tar");
    std::fs::write(&p, b.into_inner().unwrap()).unwrap();
    p
}

fn entry(path: &str, kind: SyncEntryKind, data: Option<&[u8]>) -> SyncEntry {
    SyncEntry {
        path: path.into(),
        kind,
        mode: if kind == SyncEntryKind::File {
            0o644
        } else {
            0o755
        },
        size: data.map(|d| d.len() as u64),
        digest: data.map(digest),
        target: (kind == SyncEntryKind::Symlink).then(|| "a.txt".into()),
    }
}

fn manifest(a: &[u8], b: &[u8]) -> SyncManifest {
    SyncManifest {
        entries: vec![
            entry("src", SyncEntryKind::Dir, None),
            entry("src/b.txt", SyncEntryKind::File, Some(b)),
            entry("a.txt", SyncEntryKind::File, Some(a)),
            entry("link", SyncEntryKind::Symlink, None),
            entry("src-x", SyncEntryKind::File, Some(a)),
        ],
    }
}

fn stored_files(s: &ImageStore) -> usize {
    std::fs::read_dir(s.files_dir())
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn only_missing_files_are_asked_for_and_a_bad_upload_stores_nothing() {
    let (dir, s) = store();
    let m = manifest(b"a", b"b");
    assert_eq!(
        s.missing_sync_files(&m).unwrap(),
        [digest(b"b"), digest(b"a")]
    );

    // One good and one lying entry: refused whole, nothing stored.
    let up = upload(
        dir.path(),
        &[(&digest(b"a"), b"a"), (&digest(b"b"), b"not b")],
    );
    let err = s.store_sync_files(&up).unwrap_err().to_string();
    assert!(err.contains("has content with digest"), "{err}");
    assert_eq!(stored_files(&s), 0);
    for (name, why) in [
        ("a.txt", "is not named sha256"),
        ("sha256:ABC", "is not named sha256"),
    ] {
        let up = upload(dir.path(), &[(name, b"a")]);
        let err = s.store_sync_files(&up).unwrap_err();
        assert!(
            matches!(err, SyncFilesError::Invalid(_)) && err.to_string().contains(why),
            "{err}"
        );
    }
    let up = upload(dir.path(), &[(&digest(b"a"), b"a"), (&digest(b"a"), b"a")]);
    assert!(s
        .store_sync_files(&up)
        .unwrap_err()
        .to_string()
        .contains("listed twice"));
    std::fs::write(
        &up,
        b"not a tar at all, just some bytes that are far too short",
    )
    .unwrap();
    assert!(matches!(
        s.store_sync_files(&up),
        Err(SyncFilesError::Invalid(_))
    ));
    assert_eq!(stored_files(&s), 0);
    // No temp file is left behind either.
    assert_eq!(std::fs::read_dir(&s.inner.tmp).unwrap().count(), 0);

    let up = upload(dir.path(), &[(&digest(b"a"), b"a")]);
    assert_eq!(s.store_sync_files(&up).unwrap(), (1, 1));
    assert_eq!(s.missing_sync_files(&m).unwrap(), [digest(b"b")]);
}

#[test]
fn a_context_is_assembled_only_from_stored_files_and_is_deterministic() {
    let (dir, s) = store();
    let m = manifest(b"aa", b"bbb");
    let err = s.assemble_sync_context(&m).unwrap_err().to_string();
    assert!(
        err.contains("2 file(s) of the manifest are not uploaded"),
        "{err}"
    );

    let up = upload(
        dir.path(),
        &[(&digest(b"aa"), b"aa"), (&digest(b"bbb"), b"bbb")],
    );
    s.store_sync_files(&up).unwrap();
    let (d1, size) = s.assemble_sync_context(&m).unwrap();
    assert!(s.has_build_context(&d1));
    // The same entries in another order: the same tar.
    let mut shuffled = m.clone();
    shuffled.entries = [2, 4, 3, 0, 1]
        .iter()
        .map(|&i| m.entries[i].clone())
        .collect();
    let (d2, _) = s.assemble_sync_context(&shuffled).unwrap();
    assert_eq!(d1, d2);

    let mut data = Vec::new();
    std::fs::File::open(s.inner.blobs.path(&d1).unwrap())
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    assert_eq!(data.len() as u64, size);
    let mut ar = tar::Archive::new(data.as_slice());
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        assert_eq!(
            (e.header().mtime().unwrap(), e.header().uid().unwrap()),
            (0, 0)
        );
        let name = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let mut body = String::new();
        e.read_to_string(&mut body).unwrap();
        names.push(format!("{name}={body}"));
    }
    assert_eq!(
        names,
        ["a.txt=aa", "link=", "src=", "src/b.txt=bbb", "src-x=aa"]
    );

    // A size that does not match the stored file is refused.
    let mut lying = m.clone();
    lying.entries[2].size = Some(5);
    let err = s.assemble_sync_context(&lying).unwrap_err().to_string();
    assert!(err.contains("says 5 bytes"), "{err}");
    // A hostile manifest is refused before anything is looked up.
    let mut hostile = m;
    hostile.entries[2].path = "../a.txt".into();
    assert!(matches!(
        s.assemble_sync_context(&hostile),
        Err(SyncFilesError::Invalid(_))
    ));
}
