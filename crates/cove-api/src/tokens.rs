//! Workspace tokens in memory: the one place a presented bearer token becomes a [`Scope`].
//!
//! Secrets are 32 bytes from the OS RNG; only their sha256 is kept, in the `tokens` table
//! and here. Every check hashes the presented token and compares it with every known hash
//! in constant time, with no early exit, so timing tells nothing about which part matched.
//! The cache answers the API and the gateway without a database round trip; creating or
//! revoking a token changes it before the request returns, so a revoked token fails at once.
//! Last use is kept in memory and written to the database at most once a minute per token.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use cove_store::{now_ms, StoreError, StoreHandle, TokenRow};
use cove_types::{
    validate_workspace, CreatedToken, Scope, TokenInfo, WorkspaceLimits, DEFAULT_WORKSPACE,
};
use sha2::{Digest, Sha256};

/// How often a token's last use is written to the database.
const PERSIST_USE_MS: i64 = 60_000;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error("a token named {0} already exists")]
    Taken(String),
    #[error("no token {0}")]
    NotFound(String),
    #[error("only the admin token may manage tokens")]
    AdminOnly,
    #[error("cannot read random bytes for a token: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Entry {
    id: String,
    workspace: String,
    hash: [u8; 32],
    /// In memory: updated by every use.
    used_at: AtomicI64,
    /// What the database has.
    persisted_at: AtomicI64,
}

/// The admin token and the workspace tokens. Cheap to clone.
#[derive(Clone)]
pub struct TokenCache {
    store: StoreHandle,
    admin: [u8; 32],
    tokens: Arc<RwLock<Vec<Arc<Entry>>>>,
}

impl TokenCache {
    /// Loads the workspace tokens; `admin` is the daemon's own token.
    pub async fn load(store: StoreHandle, admin: &str) -> Result<TokenCache, StoreError> {
        let tokens = store
            .list_tokens()
            .await?
            .into_iter()
            .filter_map(|r| entry_of(&r))
            .collect();
        Ok(TokenCache {
            store,
            admin: sha256(admin),
            tokens: Arc::new(RwLock::new(tokens)),
        })
    }

    /// Who `token` acts as, or `None` if it is unknown or revoked. Only memory is touched.
    pub fn scope(&self, token: &str) -> Option<Scope> {
        self.check(token).map(|(scope, _)| scope)
    }

    /// [`TokenCache::scope`], also recording the use in the database (at most once a
    /// minute per token). For API requests; the gateway uses [`TokenCache::scope`].
    pub async fn scope_recording_use(&self, token: &str) -> Option<Scope> {
        let (scope, entry) = self.check(token)?;
        if let Some(e) = entry {
            let used = e.used_at.load(Ordering::Relaxed);
            if used - e.persisted_at.load(Ordering::Relaxed) >= PERSIST_USE_MS {
                e.persisted_at.store(used, Ordering::Relaxed);
                if let Err(err) = self.store.set_token_used(&e.id, used).await {
                    tracing::warn!(error = %err, token = %e.id, "cannot record a token's use");
                }
            }
        }
        Some(scope)
    }

    fn check(&self, token: &str) -> Option<(Scope, Option<Arc<Entry>>)> {
        let h = sha256(token.trim());
        let is_admin = ct_eq(&h, &self.admin);
        let mut found: Option<Arc<Entry>> = None;
        for e in self.read().iter() {
            // No early exit: every hash is compared whatever matched before.
            if ct_eq(&h, &e.hash) {
                found = Some(e.clone());
            }
        }
        if is_admin {
            return Some((Scope::Admin, None));
        }
        let e = found?;
        e.used_at.store(now_ms(), Ordering::Relaxed);
        Some((Scope::Workspace(e.workspace.clone()), Some(e)))
    }

    /// Makes a token for `workspace`, which must be given (`default` holds the admin's
    /// own things, so it is never chosen by omission); the secret is returned only here.
    /// `limits`, if given, are set on the workspace in the same transaction.
    pub async fn create(
        &self,
        name: &str,
        workspace: Option<&str>,
        limits: Option<&WorkspaceLimits>,
    ) -> Result<CreatedToken, TokenError> {
        // Names and ids share `cove token revoke NAME|ID`: a name never looks like an id.
        if validate_workspace(name).is_err() || name.starts_with("tok-") {
            return Err(TokenError::Invalid(format!(
                "token name {name:?} is invalid: use 1-63 lowercase letters, digits and '-', \
                 not starting with 'tok-'"
            )));
        }
        let workspace = workspace.ok_or_else(|| {
            TokenError::Invalid(format!(
                "missing field `workspace`: name the workspace the token acts in \
                 ({DEFAULT_WORKSPACE:?} holds the admin's own pods and deployments)"
            ))
        })?;
        validate_workspace(workspace).map_err(TokenError::Invalid)?;
        if self.store.token_name_taken(name).await? {
            return Err(TokenError::Taken(name.to_string()));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| TokenError::Random(e.to_string()))?;
        let secret = format!("{}{}", cove_types::TOKEN_PREFIX, hex::encode(raw));
        let row = TokenRow {
            id: format!("tok-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            name: name.to_string(),
            workspace: workspace.to_string(),
            hash: hex::encode(sha256(&secret)),
            created_at: now_ms(),
            last_used_at: None,
        };
        let limits = limits.map(cove_lifecycle::store_limits);
        if let Err(e) = self.store.insert_token(&row, limits.as_ref()).await {
            // Lost a race for the name with another create.
            return Err(
                if self.store.token_name_taken(name).await.unwrap_or(false) {
                    TokenError::Taken(name.to_string())
                } else {
                    TokenError::Store(e)
                },
            );
        }
        if let Some(e) = entry_of(&row) {
            self.write().push(e);
        }
        tracing::info!(token = %row.id, name, workspace, "token created");
        Ok(CreatedToken {
            info: info_of(&row, None),
            secret,
        })
    }

    /// Every token, by name, with its last use; never a secret.
    pub async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let mem = self.read().clone();
        // Uses seen only by the gateway are written now, so they outlive a restart.
        for e in &mem {
            let used = e.used_at.load(Ordering::Relaxed);
            if used > e.persisted_at.load(Ordering::Relaxed) {
                e.persisted_at.store(used, Ordering::Relaxed);
                self.store.set_token_used(&e.id, used).await?;
            }
        }
        Ok(self
            .store
            .list_tokens()
            .await?
            .iter()
            .map(|r| {
                let used = mem
                    .iter()
                    .find(|e| e.id == r.id)
                    .map(|e| e.used_at.load(Ordering::Relaxed))
                    .filter(|&u| u > 0);
                info_of(r, used)
            })
            .collect())
    }

    /// Revokes the token with this id or name: from the next request on, it is refused.
    pub async fn revoke(&self, id_or_name: &str) -> Result<TokenInfo, TokenError> {
        let row = self
            .store
            .delete_token(id_or_name)
            .await?
            .ok_or_else(|| TokenError::NotFound(id_or_name.to_string()))?;
        self.write().retain(|e| e.id != row.id);
        tracing::info!(token = %row.id, name = %row.name, "token revoked");
        Ok(info_of(&row, None))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Entry>>> {
        // Held for a scan only, never across an await; a poisoned list is still whole.
        self.tokens.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Entry>>> {
        self.tokens.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn entry_of(r: &TokenRow) -> Option<Arc<Entry>> {
    let mut hash = [0u8; 32];
    match hex::decode_to_slice(&r.hash, &mut hash) {
        Ok(()) => Some(Arc::new(Entry {
            id: r.id.clone(),
            workspace: r.workspace.clone(),
            hash,
            used_at: AtomicI64::new(r.last_used_at.unwrap_or(0)),
            persisted_at: AtomicI64::new(r.last_used_at.unwrap_or(0)),
        })),
        Err(e) => {
            tracing::warn!(token = %r.id, error = %e, "unreadable token hash; token ignored");
            None
        }
    }
}

fn info_of(r: &TokenRow, used_in_memory: Option<i64>) -> TokenInfo {
    TokenInfo {
        id: r.id.clone(),
        name: r.name.clone(),
        workspace: r.workspace.clone(),
        created_at: r.created_at,
        last_used_at: used_in_memory.max(r.last_used_at),
    }
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Compares without an early exit, so timing reveals nothing about the token.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> StoreHandle {
        std::sync::Arc::new(cove_store::SqliteStore::open_in_memory().unwrap())
    }

    async fn cache() -> TokenCache {
        TokenCache::load(store(), "admin-secret").await.unwrap()
    }

    #[tokio::test]
    async fn create_check_revoke() {
        let c = cache().await;
        assert_eq!(c.scope("admin-secret"), Some(Scope::Admin));
        let t = c.create("ci", Some("team-a"), None).await.unwrap();
        assert!(t.secret.starts_with("cove_") && t.secret.len() == 5 + 64);
        assert_eq!(c.scope(&t.secret), Some(Scope::Workspace("team-a".into())));
        assert_eq!(c.scope("nope"), None);
        assert!(matches!(
            c.create("ci", Some("w"), None).await,
            Err(TokenError::Taken(_))
        ));
        // No workspace is never `default` by omission.
        match c.create("y", None, None).await {
            Err(TokenError::Invalid(m)) => assert!(m.contains("`workspace`"), "{m}"),
            other => panic!("a token without a workspace: {other:?}"),
        }
        assert!(matches!(
            c.create("Bad", None, None).await,
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            c.create("x", Some(""), None).await,
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            c.create("tok-1", None, None).await,
            Err(TokenError::Invalid(_))
        ));
        let listed = c.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used_at.is_some());
        c.revoke("ci").await.unwrap();
        assert_eq!(c.scope(&t.secret), None);
        assert!(matches!(c.revoke("ci").await, Err(TokenError::NotFound(_))));
    }

    #[tokio::test]
    async fn only_the_hash_is_stored_and_a_reload_knows_it() {
        let store = store();
        let c = TokenCache::load(store.clone(), "a").await.unwrap();
        let t = c.create("ci", Some("w"), None).await.unwrap();
        let row = &store.list_tokens().await.unwrap()[0];
        assert!(!row.hash.contains(&t.secret[5..]));
        assert_eq!(row.hash, hex::encode(sha256(&t.secret)));
        let again = TokenCache::load(store, "a").await.unwrap();
        assert_eq!(again.scope(&t.secret), Some(Scope::Workspace("w".into())));
    }

    #[test]
    fn eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
