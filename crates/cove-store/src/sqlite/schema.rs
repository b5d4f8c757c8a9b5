//! Schema and migrations, keyed by SQLite's `user_version`.

use rusqlite::Connection;

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE images (
    reference     TEXT PRIMARY KEY,
    digest        TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    manifest_json TEXT NOT NULL,
    config_json   TEXT NOT NULL,
    layers_json   TEXT NOT NULL,
    size          INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE TABLE pods (
    id            TEXT PRIMARY KEY,
    name          TEXT,
    deployment_id TEXT,
    spec_json     TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE TABLE containers (
    id                TEXT PRIMARY KEY,
    pod_id            TEXT NOT NULL REFERENCES pods(id) ON DELETE CASCADE,
    status            TEXT NOT NULL,
    image             TEXT NOT NULL,
    address           TEXT,
    shim_pid          INTEGER,
    exit_code         INTEGER,
    reason            TEXT,
    scheduled_at      INTEGER NOT NULL,
    started_at        INTEGER,
    ended_at          INTEGER,
    last_active_at    INTEGER
);
CREATE INDEX containers_pod ON containers(pod_id);
CREATE INDEX containers_status ON containers(status);
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    container_id TEXT,
    kind         TEXT NOT NULL,
    message      TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE deployments (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    -- "<name>-<8 hex>": the stable part of the deployment's URLs.
    url_key     TEXT NOT NULL UNIQUE,
    version     INTEGER NOT NULL,
    -- The pod (stub) serving the current version.
    pod_id      TEXT,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE builds (
    -- sha256 of the base image's digest and the ordered build steps.
    hash            TEXT PRIMARY KEY,
    image_reference TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
"#,
    // 3: workspaces and their API tokens (only each secret's sha256 is kept).
    r#"
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    workspace    TEXT NOT NULL,
    -- sha256 hex of the secret; the secret itself is never stored.
    hash         TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
ALTER TABLE pods ADD COLUMN workspace TEXT NOT NULL DEFAULT 'default';
ALTER TABLE deployments ADD COLUMN workspace TEXT NOT NULL DEFAULT 'default';
CREATE INDEX pods_workspace ON pods(workspace);
"#,
    // 4: image references per workspace (image rows and blobs stay shared by digest).
    r#"
CREATE TABLE image_refs (
    workspace TEXT NOT NULL,
    reference TEXT NOT NULL,
    PRIMARY KEY (workspace, reference)
);
INSERT INTO image_refs (workspace, reference) SELECT 'default', reference FROM images;
"#,
    // 5: limits set on workspaces (NULL: the daemon's default for that limit).
    r#"
CREATE TABLE workspace_limits (
    workspace      TEXT PRIMARY KEY,
    max_pods       INTEGER,
    max_cpu_millis INTEGER,
    max_memory_mib INTEGER,
    max_disk_mib   INTEGER,
    updated_at     INTEGER NOT NULL
);
"#,
    // 6: the events table goes: written on stop, end and egress changes but never read, and
    // each holds nothing the container row (status, reason, exit) and the log do not.
    "DROP TABLE events;",
];

pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_with_events_loses_them_and_keeps_the_rest() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        for sql in &MIGRATIONS[..5] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 5).unwrap();
        tx.execute_batch(
            "INSERT INTO events (at, container_id, kind, message) VALUES (1, 'c', 'end', 'x');
             INSERT INTO builds (hash, image_reference, created_at) VALUES ('h', 'r', 1);",
        )
        .unwrap();
        tx.commit().unwrap();
        migrate(&mut conn).unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(tables.is_empty(), "{tables:?}");
        let builds: i64 = conn
            .query_row("SELECT COUNT(*) FROM builds", [], |r| r.get(0))
            .unwrap();
        assert_eq!(builds, 1);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
    }
}
