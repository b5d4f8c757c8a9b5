//! Workspaces and API tokens: who a request acts as, and the token API's bodies.
//!
//! The daemon's own token (`<data-dir>/token`) is the admin token: it may do everything,
//! including managing tokens, and creates in workspace [`DEFAULT_WORKSPACE`]. Every other
//! token belongs to one workspace and sees only that workspace's pods and deployments.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How every token the daemon makes begins (the admin token and workspace tokens alike), so
/// one is recognisable wherever it turns up (the gateway keeps such headers from pods).
pub const TOKEN_PREFIX: &str = "cove_";

/// The workspace of whatever the admin token creates, and of rows made before workspaces.
pub const DEFAULT_WORKSPACE: &str = "default";

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The daemon's token: everything, in every workspace.
    Admin,
    /// A workspace token: only this workspace.
    Workspace(String),
}

impl Scope {
    /// The workspace new pods and deployments go into.
    pub fn workspace(&self) -> &str {
        match self {
            Scope::Admin => DEFAULT_WORKSPACE,
            Scope::Workspace(ws) => ws,
        }
    }

    /// Whether this scope may see and control things of workspace `ws`.
    pub fn can_access(&self, ws: &str) -> bool {
        match self {
            Scope::Admin => true,
            Scope::Workspace(mine) => mine == ws,
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Scope::Admin)
    }
}

/// Checks a workspace name: 1-63 of `[a-z0-9-]`, not starting with `-`.
pub fn validate_workspace(ws: &str) -> Result<(), String> {
    let ok = !ws.is_empty()
        && ws.len() <= 63
        && !ws.starts_with('-')
        && ws
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "workspace {ws:?} is invalid: use 1-63 lowercase letters, digits and '-'"
        ))
    }
}

/// `POST /v1/tokens` (admin only).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A unique name for the token: 1-63 of `[a-z0-9-]`, not starting with `tok-` (ids do).
    pub name: String,
    /// The workspace it acts in; required (a request without it is a 400).
    #[serde(default)]
    pub workspace: Option<String>,
    /// Limits to set on the workspace with the token (see `PUT /v1/workspaces/{name}/limits`).
    #[serde(default)]
    pub limits: Option<crate::SetLimitsRequest>,
}

/// A token as `GET /v1/tokens` shows it: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub workspace: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of its last use (API or gateway), if it was used. Kept in memory and
    /// written to the database at most once a minute, so a restart may lose the last minute.
    pub last_used_at: Option<i64>,
}

/// `POST /v1/tokens` response: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The bearer token. The daemon keeps only its sha256.
    pub secret: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let ws = Scope::Workspace("a".into());
        assert!(ws.can_access("a") && !ws.can_access("b"));
        assert!(Scope::Admin.can_access("b"));
        assert_eq!(Scope::Admin.workspace(), DEFAULT_WORKSPACE);
        assert!(validate_workspace("team-1").is_ok());
        assert!(validate_workspace("Team").is_err());
        assert!(validate_workspace("").is_err());
        assert!(validate_workspace("-a").is_err());
    }
}
