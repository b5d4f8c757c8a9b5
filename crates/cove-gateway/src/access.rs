//! Authorized pods: route keys that answer only requests carrying a token of their
//! workspace (or the admin token).
//!
//! The lifecycle marks a key guarded ([`Access::guard`]) with the workspace it belongs to;
//! the daemon installs the token check ([`Access::set_token_check`]), an in-memory lookup
//! (no database round trip, no blocking). The proxy asks [`authorize`] before it routes or
//! wakes anything, then forwards the request without the token: the `Authorization`
//! header, the `auth_token` query parameter and the [`AUTH_COOKIE`] cookie are removed
//! (other parameters and cookies stay as they were), and `auth_token` is taken out of a
//! `Referer`. A browser that brings the token in the URL is redirected to the same URL
//! without it and gets the token as an HttpOnly cookie instead, as notebook servers do, so
//! neither the pod's requests nor its page's JavaScript (`location`, `document.cookie`)
//! ever hold it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cove_types::Scope;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::Method;

use crate::headers::{cookie_values, is_navigation, remove_cookie};

/// The query parameter a token may come in (browsers cannot set headers on links or
/// WebSocket handshakes).
pub const AUTH_PARAM: &str = "auth_token";

/// The cookie a browser gets in exchange for `?auth_token=`; host-only, HttpOnly, and
/// never forwarded to any pod.
pub const AUTH_COOKIE: &str = "cove_auth";

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

/// What the proxy knows of a request to a guarded key, besides its headers.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub method: &'a Method,
    /// Path and query as the client sent them (where a redirect goes back to).
    pub original: &'a str,
    /// Path and query to forward to the pod.
    pub forward: &'a str,
    /// Where the cookie applies: `/` for the host form, `/pod/<id>/<port>` for the path form.
    pub cookie_path: &'a str,
    /// The request came over TLS: the cookie is `Secure`.
    pub secure: bool,
}

/// A request that may go on.
#[derive(Debug, PartialEq, Eq)]
pub enum Granted {
    /// Forward it with this path and query (the token already removed from the headers).
    Forward(String),
    /// A browser brought the token in the URL: answer a redirect to `location` (the same
    /// URL without `auth_token`) that sets `set_cookie`; nothing is forwarded.
    Redirect {
        location: String,
        set_cookie: String,
    },
}

/// A refused request: why, and a `Set-Cookie` value that clears a cookie that no longer
/// works (revoked token).
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub denied: Denied,
    pub clear_cookie: Option<String>,
}

impl From<Denied> for Refused {
    fn from(denied: Denied) -> Self {
        Refused {
            denied,
            clear_cookie: None,
        }
    }
}

/// Checks a request to a key guarded for `workspace`. The token may come as
/// `Authorization: Bearer` (wins), `?auth_token=`, or the [`AUTH_COOKIE`] cookie. On
/// success the token is gone from `headers` (see [`scrub`]) and from the path to forward.
pub fn authorize(
    access: &Access,
    workspace: &str,
    headers: &mut HeaderMap,
    ask: Ask<'_>,
) -> Result<Granted, Refused> {
    let valid = |t: &str| access.scope_of(t).is_some_and(|s| s.can_access(workspace));
    let (forward, from_query) = split_auth_param(ask.forward);
    // The token to turn into a cookie: a valid one that came in the URL.
    let from_url = match (bearer(headers), from_query) {
        (Some(t), _) => {
            valid(&t).then_some(()).ok_or(Denied::Invalid)?;
            // It was the credential; any other `Authorization` scheme is the app's and stays.
            headers.remove(header::AUTHORIZATION);
            None
        }
        (None, Some(t)) => valid(&t).then_some(Some(t)).ok_or(Denied::Invalid)?,
        (None, None) => {
            let cookies = cookie_values(headers, AUTH_COOKIE);
            if cookies.is_empty() {
                return Err(Denied::Missing.into());
            }
            if !cookies.iter().any(|t| valid(t)) {
                return Err(Refused {
                    denied: Denied::Invalid,
                    clear_cookie: Some(cookie(&ask, None)),
                });
            }
            None
        }
    };
    let redirect = from_url.filter(|t| cookie_safe(t) && is_navigation(ask.method, headers));
    scrub(access, headers);
    Ok(match redirect {
        Some(token) => Granted::Redirect {
            location: same_origin_path(split_auth_param(ask.original).0),
            set_cookie: cookie(&ask, Some(&token)),
        },
        None => Granted::Forward(forward),
    })
}

/// Removes what may carry a Cove token from headers bound for any pod, guarded or not: an
/// `Authorization: Bearer` holding one (a daemon token, or anything this daemon's tokens would
/// accept), the [`AUTH_COOKIE`] cookie, and `auth_token` in a `Referer` (dropped whole if it
/// still names `auth_token` some other way). Any other `Authorization` is the app's own (Basic,
/// Jupyter's `token`, its own bearer tokens) and goes through.
pub fn scrub(access: &Access, headers: &mut HeaderMap) {
    let cove_token = |v: &HeaderValue| bearer_value(v).is_some_and(|t| is_cove_token(access, &t));
    if headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .any(cove_token)
    {
        headers.remove(header::AUTHORIZATION);
    }
    remove_cookie(headers, AUTH_COOKIE);
    let mentions = |v: &[u8]| {
        v.windows(AUTH_PARAM.len())
            .any(|w| w.eq_ignore_ascii_case(AUTH_PARAM.as_bytes()))
    };
    let referers: Vec<_> = headers.get_all(header::REFERER).iter().cloned().collect();
    if !referers.iter().any(|v| mentions(v.as_bytes())) {
        return;
    }
    headers.remove(header::REFERER);
    for v in referers {
        let Ok(s) = v.to_str() else { continue };
        let (stripped, _) = split_auth_param(s);
        if !mentions(stripped.as_bytes()) {
            if let Ok(v) = stripped.parse() {
                headers.append(header::REFERER, v);
            }
        }
    }
}

/// The path to forward to a public pod: `path?query` without an `auth_token` parameter that
/// holds a Cove token (a URL that belonged to an authorized pod, or a link someone pasted, may
/// still carry one), as [`scrub`] does for `Authorization`. An app's own `auth_token` values
/// go through.
pub fn strip_auth_param(access: &Access, path_and_query: &str) -> String {
    split_auth_param_where(path_and_query, |t| is_cove_token(access, t)).0
}

/// A daemon token (they all start with [`cove_types::TOKEN_PREFIX`]), or anything this
/// daemon's tokens would accept.
fn is_cove_token(access: &Access, token: &str) -> bool {
    token.starts_with(cove_types::TOKEN_PREFIX) || access.scope_of(token).is_some()
}

/// The `Set-Cookie` value that stores `token`, or (for `None`) clears the cookie.
/// No `Domain`: the cookie stays on the host that set it.
fn cookie(ask: &Ask<'_>, token: Option<&str>) -> String {
    let secure = if ask.secure { "; Secure" } else { "" };
    let path = ask.cookie_path;
    match token {
        Some(t) => format!("{AUTH_COOKIE}={t}; Path={path}; HttpOnly; SameSite=Lax{secure}"),
        None => format!("{AUTH_COOKIE}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
    }
}

/// Whether `token` can be a cookie value as it is (RFC 6265 cookie-octets).
fn cookie_safe(token: &str) -> bool {
    token
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && !matches!(b, b'"' | b',' | b';' | b'\\'))
}

/// A `Location` that stays on this host: `//x` or `/\x` would name another host, so they
/// get a `/.` in front (which browsers resolve away).
fn same_origin_path(path: String) -> String {
    if path.starts_with("//") || path.starts_with("/\\") {
        format!("/.{path}")
    } else {
        path
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<String> {
    bearer_value(headers.get(header::AUTHORIZATION)?)
}

/// The token of one `Authorization` value if its scheme is `Bearer`.
fn bearer_value(v: &HeaderValue) -> Option<String> {
    let v = v.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// Splits `path?query` into the same without any `auth_token` parameter, and that
/// parameter's (last non-empty, percent-decoded) value. Other parameters keep their order
/// and exact bytes.
fn split_auth_param(path_and_query: &str) -> (String, Option<String>) {
    split_auth_param_where(path_and_query, |_| true)
}

/// [`split_auth_param`], removing only the `auth_token` parameters whose decoded value
/// `remove` picks; the others stay as they came.
fn split_auth_param_where(
    path_and_query: &str,
    remove: impl Fn(&str) -> bool,
) -> (String, Option<String>) {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return (path_and_query.to_string(), None);
    };
    let mut token = None;
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        // Decoded, as the app's framework would decode it (`auth%5Ftoken` is the same key).
        if k == AUTH_PARAM || percent_decode(k) == AUTH_PARAM {
            let v = percent_decode(v);
            if remove(&v) {
                if !v.is_empty() {
                    token = Some(v);
                }
                continue;
            }
        }
        kept.push(pair);
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

    const GET: &Method = &Method::GET;

    /// A host-form request for `path` over plain HTTP.
    fn ask(path: &str) -> Ask<'_> {
        Ask {
            method: GET,
            original: path,
            forward: path,
            cookie_path: "/",
            secure: false,
        }
    }

    /// The path a request is forwarded with, or why not.
    fn fwd(a: &Access, h: &mut HeaderMap, path: &str) -> Result<String, Denied> {
        match authorize(a, "a", h, ask(path)) {
            Ok(Granted::Forward(p)) => Ok(p),
            Ok(other) => panic!("{path}: not forwarded: {other:?}"),
            Err(r) => Err(r.denied),
        }
    }

    #[test]
    fn header_tokens_are_checked_and_removed() {
        let a = access();
        let mut h = headers(Some("Bearer ta"));
        assert_eq!(fwd(&a, &mut h, "/x?y=1").unwrap(), "/x?y=1");
        assert!(h.get(header::AUTHORIZATION).is_none());
        assert!(h.get("x-other").is_some());
        let mut h = headers(Some("bearer admin"));
        assert!(fwd(&a, &mut h, "/").is_ok());
        let mut h = headers(Some("Bearer tb"));
        assert_eq!(fwd(&a, &mut h, "/"), Err(Denied::Invalid));
        assert!(h.get(header::AUTHORIZATION).is_some(), "kept on refusal");
        let mut h = headers(Some("Bearer nope"));
        assert_eq!(fwd(&a, &mut h, "/"), Err(Denied::Invalid));
        let mut h = headers(None);
        assert_eq!(fwd(&a, &mut h, "/"), Err(Denied::Missing));
        let mut h = headers(Some("Basic dTpw"));
        assert_eq!(fwd(&a, &mut h, "/"), Err(Denied::Missing));
    }

    #[test]
    fn query_tokens_are_checked_and_removed() {
        let a = access();
        let mut h = headers(None);
        let ok = |p: &str| fwd(&a, &mut headers(None), p);
        assert_eq!(ok("/x?auth_token=ta").unwrap(), "/x");
        assert_eq!(ok("/x?a=1&auth_token=ta&b=%20c").unwrap(), "/x?a=1&b=%20c");
        assert_eq!(ok("/x?auth_token=ta&a=").unwrap(), "/x?a=");
        assert_eq!(ok("/x?auth_token=tb"), Err(Denied::Invalid));
        assert_eq!(ok("/x?auth_token="), Err(Denied::Missing));
        assert_eq!(ok("/x?xauth_token=ta"), Err(Denied::Missing));
        assert_eq!(ok("/x?auth%5Ftoken=ta&k").unwrap(), "/x?k");
        // A header token wins; the query one is removed all the same.
        h.insert(header::AUTHORIZATION, "Bearer ta".parse().unwrap());
        assert_eq!(fwd(&a, &mut h, "/?auth_token=zz&k=v").unwrap(), "/?k=v");
    }

    fn browser(accept: &'static str) -> HeaderMap {
        let mut h = headers(None);
        h.insert(header::ACCEPT, accept.parse().unwrap());
        h
    }

    #[test]
    fn browsers_trade_a_query_token_for_a_cookie() {
        let a = access();
        let mut h = browser("text/html,*/*;q=0.8");
        let got = authorize(&a, "a", &mut h, ask("/x?a=1&auth_token=ta&b=2"));
        assert_eq!(
            got,
            Ok(Granted::Redirect {
                location: "/x?a=1&b=2".into(),
                set_cookie: "cove_auth=ta; Path=/; HttpOnly; SameSite=Lax".into(),
            })
        );
        // The path form: the client's own URL, the cookie scoped to the pod's prefix, TLS.
        let got = authorize(
            &a,
            "a",
            &mut browser("text/html"),
            Ask {
                method: &Method::HEAD,
                original: "/pod/POD1/80/p?auth_token=admin",
                forward: "/p?auth_token=admin",
                cookie_path: "/pod/POD1/80",
                secure: true,
            },
        );
        assert_eq!(
            got,
            Ok(Granted::Redirect {
                location: "/pod/POD1/80/p".into(),
                set_cookie: "cove_auth=admin; Path=/pod/POD1/80; HttpOnly; SameSite=Lax; Secure"
                    .into(),
            })
        );
        // Never a redirect to another host.
        let got = authorize(
            &a,
            "a",
            &mut browser("text/html"),
            ask("//evil?auth_token=ta"),
        );
        assert!(matches!(got, Ok(Granted::Redirect { location, .. }) if location == "/.//evil"));
        // API clients, POSTs, header tokens and refused tokens are not redirected.
        assert_eq!(
            fwd(&a, &mut browser("*/*"), "/?auth_token=ta").unwrap(),
            "/"
        );
        let mut post = ask("/?auth_token=ta");
        post.method = &Method::POST;
        let got = authorize(&a, "a", &mut browser("text/html"), post);
        assert_eq!(got, Ok(Granted::Forward("/".into())));
        let mut h = browser("text/html");
        h.insert(header::AUTHORIZATION, "Bearer ta".parse().unwrap());
        assert_eq!(fwd(&a, &mut h, "/?auth_token=ta").unwrap(), "/");
        assert_eq!(
            fwd(&a, &mut browser("text/html"), "/?auth_token=tb"),
            Err(Denied::Invalid)
        );
    }

    #[test]
    fn cookie_tokens_are_checked_and_removed() {
        let a = access();
        let mut h = headers(None);
        h.insert(
            header::COOKIE,
            "app=1; cove_auth=ta; theme=dark".parse().unwrap(),
        );
        h.insert(
            header::REFERER,
            "http://p/x?auth_token=ta&k=v".parse().unwrap(),
        );
        assert_eq!(fwd(&a, &mut h, "/x").unwrap(), "/x");
        assert_eq!(h.get(header::COOKIE).unwrap(), "app=1; theme=dark");
        assert_eq!(h.get(header::REFERER).unwrap(), "http://p/x?k=v");
        // A stale cookie next to a good one (another path) still gets through.
        let mut h = headers(None);
        h.insert(
            header::COOKIE,
            "cove_auth=old; cove_auth=admin".parse().unwrap(),
        );
        assert!(fwd(&a, &mut h, "/").is_ok());
        assert!(h.get(header::COOKIE).is_none());
        // A revoked or foreign token: 401, and the cookie is cleared on its own path.
        let mut h = headers(None);
        h.insert(header::COOKIE, "cove_auth=tb; app=1".parse().unwrap());
        let got = authorize(&a, "a", &mut h, ask("/"));
        assert_eq!(
            got,
            Err(Refused {
                denied: Denied::Invalid,
                clear_cookie: Some("cove_auth=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax".into()),
            })
        );
        let mut h = headers(None);
        h.insert(header::COOKIE, "app=1".parse().unwrap());
        assert_eq!(fwd(&a, &mut h, "/"), Err(Denied::Missing));
    }

    #[test]
    fn scrub_removes_every_copy_of_the_token() {
        let a = access();
        let mut h = headers(Some("Bearer cove_x"));
        h.insert(header::COOKIE, "cove_auth=x".parse().unwrap());
        h.append(header::REFERER, "http://p/?AUTH_TOKEN=x".parse().unwrap());
        h.append(header::REFERER, "http://p/a?b=1".parse().unwrap());
        scrub(&a, &mut h);
        assert!(h.get(header::AUTHORIZATION).is_none());
        assert!(h.get(header::COOKIE).is_none());
        let refs: Vec<_> = h.get_all(header::REFERER).iter().collect();
        assert_eq!(
            refs,
            [&"http://p/a?b=1"],
            "the odd spelling is dropped whole"
        );
        let mut h = headers(None);
        h.insert(header::REFERER, "http://p/a?b=1".parse().unwrap());
        scrub(&a, &mut h);
        assert_eq!(h.get(header::REFERER).unwrap(), "http://p/a?b=1");
        // A token this daemon accepts, whatever it looks like, even as a second header.
        let mut h = headers(Some("Basic dTpw"));
        h.append(header::AUTHORIZATION, "bearer admin".parse().unwrap());
        scrub(&a, &mut h);
        assert!(h.get(header::AUTHORIZATION).is_none());
    }

    #[test]
    fn the_apps_own_authorization_goes_through() {
        let a = access();
        for own in ["Basic dTpw", "token 0123abcd", "Bearer app-issued"] {
            let mut h = headers(Some(own));
            scrub(&a, &mut h);
            assert_eq!(h.get(header::AUTHORIZATION).unwrap(), own, "public pod");
            // A guarded pod reached with the cookie: the app's header is not the credential.
            if !own.starts_with("Bearer") {
                let mut h = headers(Some(own));
                h.insert(header::COOKIE, "cove_auth=ta".parse().unwrap());
                assert!(fwd(&a, &mut h, "/").is_ok());
                assert_eq!(h.get(header::AUTHORIZATION).unwrap(), own, "guarded pod");
            }
        }
    }

    #[test]
    fn a_public_pod_is_never_handed_a_token_in_its_url() {
        let a = access();
        let strip = |p: &str| strip_auth_param(&a, p);
        // Any daemon token, valid or not, and any token this daemon accepts.
        assert_eq!(strip("/x?auth_token=cove_abc"), "/x");
        assert_eq!(strip("/x?a=1&auth_token=ta&b=%20c"), "/x?a=1&b=%20c");
        assert_eq!(
            strip("/x?auth_token=admin&auth_token=tb&auth_token=mine"),
            "/x?auth_token=mine"
        );
        // Encoded names and values are what the app would decode them to.
        assert_eq!(strip("/x?auth%5Ftoken=cove%5Fabc&k"), "/x?k");
        assert_eq!(strip("/x?auth_token=c%6Fve_abc"), "/x");
        assert_eq!(
            strip("/x?auth_token=+ta"),
            "/x?auth_token=+ta",
            "' ta' is no token"
        );
        // The app's own values, and look-alike names, go through untouched.
        assert_eq!(strip("/x?auth_token=mine"), "/x?auth_token=mine");
        assert_eq!(strip("/x?xauth_token=cove_abc"), "/x?xauth_token=cove_abc");
        assert_eq!(strip("/x"), "/x");
        assert_eq!(strip("/x?"), "/x?");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Bb+c%zz%4"), "a+b c%zz%4");
        assert_eq!(percent_decode("%é%41"), "%éA");
    }
}
