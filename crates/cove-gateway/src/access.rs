//! Authorized pods: route keys that answer only requests carrying a token of their
//! workspace (or the admin token).
//!
//! The lifecycle marks a key guarded ([`Access::guard`]) with the workspace it belongs to;
//! the daemon installs the token check ([`Access::set_token_check`]), an in-memory lookup
//! (no database round trip, no blocking). The proxy asks [`authorize`] before it routes or
//! wakes anything, then forwards the request without the token: the `Authorization` header
//! and the `auth_token` query parameter are removed, other parameters stay as they were.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cove_types::Scope;
use hyper::header::{self, HeaderMap};

/// The query parameter a token may come in (browsers cannot set headers on links or
/// WebSocket handshakes).
pub const AUTH_PARAM: &str = "auth_token";

/// Maps a presented token to who it acts as; `None` for an unknown or revoked token.
pub type TokenCheck = Arc<dyn Fn(&str) -> Option<Scope> + Send + Sync>;

/// Guarded route keys and the token check. Cheap to clone; locks are held for one map
/// operation only, never across an `.await`.
#[derive(Clone, Default)]
pub struct Access {
    /// Route key (lowercase) → the workspace whose tokens may use it.
    guarded: Arc<RwLock<HashMap<String, String>>>,
    tokens: Arc<RwLock<Option<TokenCheck>>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.guarded.read().unwrap_or_else(|e| e.into_inner()).len();
        f.debug_struct("Access").field("guarded", &n).finish()
    }
}

impl Access {
    /// Requests for `key` need a token of `workspace` (or the admin token) from now on.
    pub fn guard(&self, key: &str, workspace: &str) {
        let mut map = self.guarded.write().unwrap_or_else(|e| e.into_inner());
        map.insert(key.to_ascii_lowercase(), workspace.to_string());
    }

    /// `key` is public again (or gone); unknown keys are ignored.
    pub fn unguard(&self, key: &str) {
        let mut map = self.guarded.write().unwrap_or_else(|e| e.into_inner());
        map.remove(&key.to_ascii_lowercase());
    }

    /// The workspace guarding `key`, if it is guarded.
    pub fn workspace_of(&self, key: &str) -> Option<String> {
        let map = self.guarded.read().unwrap_or_else(|e| e.into_inner());
        map.get(&key.to_ascii_lowercase()).cloned()
    }

    /// Installs the token check. Until then every guarded key refuses every request.
    pub fn set_token_check(&self, check: TokenCheck) {
        *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = Some(check);
    }

    fn scope_of(&self, token: &str) -> Option<Scope> {
        let check = self
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        check.and_then(|c| c(token))
    }
}

/// Why a request to a guarded key is refused (the 401's one-line message).
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    Missing,
    Invalid,
}

impl Denied {
    pub fn message(&self) -> &'static str {
        match self {
            Denied::Missing => {
                "this pod needs a token: send Authorization: Bearer <token> or ?auth_token=<token>"
            }
            Denied::Invalid => "invalid token for this pod",
        }
    }
}

/// Checks a request to a key guarded for `workspace`. On success, removes the token from
/// `headers` and returns `path_and_query` without the `auth_token` parameter.
pub fn authorize(
    access: &Access,
    workspace: &str,
    headers: &mut HeaderMap,
    path_and_query: &str,
) -> Result<String, Denied> {
    let (path, from_query) = split_auth_param(path_and_query);
    let from_header = bearer(headers);
    let token = from_header.or(from_query).ok_or(Denied::Missing)?;
    match access.scope_of(&token) {
        Some(scope) if scope.can_access(workspace) => {
            headers.remove(header::AUTHORIZATION);
            Ok(path)
        }
        _ => Err(Denied::Invalid),
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// Splits `path?query` into the same without any `auth_token` parameter, and that
/// parameter's (last non-empty, percent-decoded) value. Other parameters keep their order
/// and exact bytes.
fn split_auth_param(path_and_query: &str) -> (String, Option<String>) {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return (path_and_query.to_string(), None);
    };
    let mut token = None;
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == AUTH_PARAM {
            let v = percent_decode(v);
            if !v.is_empty() {
                token = Some(v);
            }
        } else {
            kept.push(pair);
        }
    }
    let out = if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    (out, token)
}

/// `%XX` and `+` decoding of a query value; invalid escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        let a = Access::default();
        a.set_token_check(Arc::new(|t: &str| match t {
            "admin" => Some(Scope::Admin),
            "ta" => Some(Scope::Workspace("a".into())),
            "tb" => Some(Scope::Workspace("b".into())),
            _ => None,
        }));
        a.guard("Pod1", "a");
        a
    }

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().unwrap());
        }
        h.insert("x-other", "1".parse().unwrap());
        h
    }

    #[test]
    fn guarded_keys() {
        let a = access();
        assert_eq!(a.workspace_of("pod1").as_deref(), Some("a"));
        a.unguard("POD1");
        assert_eq!(a.workspace_of("pod1"), None);
    }

    #[test]
    fn header_tokens_are_checked_and_removed() {
        let a = access();
        let mut h = headers(Some("Bearer ta"));
        assert_eq!(authorize(&a, "a", &mut h, "/x?y=1").unwrap(), "/x?y=1");
        assert!(h.get(header::AUTHORIZATION).is_none());
        assert!(h.get("x-other").is_some());
        let mut h = headers(Some("bearer admin"));
        assert!(authorize(&a, "a", &mut h, "/").is_ok());
        let mut h = headers(Some("Bearer tb"));
        assert_eq!(authorize(&a, "a", &mut h, "/"), Err(Denied::Invalid));
        assert!(h.get(header::AUTHORIZATION).is_some(), "kept on refusal");
        let mut h = headers(Some("Bearer nope"));
        assert_eq!(authorize(&a, "a", &mut h, "/"), Err(Denied::Invalid));
        let mut h = headers(None);
        assert_eq!(authorize(&a, "a", &mut h, "/"), Err(Denied::Missing));
        let mut h = headers(Some("Basic dTpw"));
        assert_eq!(authorize(&a, "a", &mut h, "/"), Err(Denied::Missing));
    }

    #[test]
    fn query_tokens_are_checked_and_removed() {
        let a = access();
        let mut h = headers(None);
        let ok = |p: &str| authorize(&a, "a", &mut headers(None), p);
        assert_eq!(ok("/x?auth_token=ta").unwrap(), "/x");
        assert_eq!(ok("/x?a=1&auth_token=ta&b=%20c").unwrap(), "/x?a=1&b=%20c");
        assert_eq!(ok("/x?auth_token=ta&a=").unwrap(), "/x?a=");
        assert_eq!(ok("/x?auth_token=tb"), Err(Denied::Invalid));
        assert_eq!(ok("/x?auth_token="), Err(Denied::Missing));
        assert_eq!(ok("/x?xauth_token=ta"), Err(Denied::Missing));
        // A header token wins; the query one is removed all the same.
        h.insert(header::AUTHORIZATION, "Bearer ta".parse().unwrap());
        assert_eq!(
            authorize(&a, "a", &mut h, "/?auth_token=zz&k=v").unwrap(),
            "/?k=v"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Bb+c%zz%4"), "a+b c%zz%4");
        assert_eq!(percent_decode("%é%41"), "%éA");
    }
}
