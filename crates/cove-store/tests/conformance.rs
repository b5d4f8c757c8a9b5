//! The backend conformance suite against SQLite, in memory and in a database file.

mod in_memory {
    use std::sync::Arc;

    use cove_store::{SqliteStore, StoreHandle};

    cove_store::conformance_tests!(async {
        SqliteStore::open_in_memory().map(|s| (Arc::new(s) as StoreHandle, ()))
    });
}

mod file {
    use std::sync::Arc;

    use cove_store::{SqliteStore, StoreHandle};

    cove_store::conformance_tests!(async {
        let dir = tempfile::tempdir().expect("temp dir");
        SqliteStore::open(&dir.path().join("state.db")).map(|s| (Arc::new(s) as StoreHandle, dir))
    });
}
