//! The HTTP client of the daemon's API: base URL and token discovery, requests, and the one
//! place where failures become a single-line error.

use std::path::PathBuf;
use std::time::Duration;

use cove_types::ErrorBody;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Where the daemon listens unless `COVE_API_URL` says otherwise.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:7310";
/// The daemon's data directory unless `COVE_DATA_DIR` says otherwise; it holds `token`.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cove";

/// Why a request failed. Every variant displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the cove daemon at {url}: is `cove server` running?")]
    Unreachable { url: String },
    #[error("{message} (set COVE_TOKEN, or run as root on the daemon's machine so cove can read {token_path})")]
    Unauthorized { message: String, token_path: String },
    /// A non-2xx answer; `message` is the daemon's `{"error": ...}`.
    #[error("{message}")]
    Api { status: StatusCode, message: String },
    #[error("unexpected response from the daemon: {0}")]
    Decode(String),
    #[error("request to the daemon failed: {0}")]
    Transport(String),
    #[error("invalid COVE_API_URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
}

/// A client of one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    token: Option<String>,
    token_path: PathBuf,
    http: reqwest::Client,
}

impl Client {
    /// A client configured from `COVE_API_URL`, `COVE_TOKEN` and `COVE_DATA_DIR`.
    pub fn from_env() -> Result<Self, ClientError> {
        let url = env_nonempty("COVE_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_string());
        let data_dir = env_nonempty("COVE_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        let token_path = PathBuf::from(data_dir).join("token");
        // An unreadable token file (typically: not root) is not an error here: the daemon
        // answers 401 and the error then says how to get a token.
        let token = env_nonempty("COVE_TOKEN").or_else(|| {
            std::fs::read_to_string(&token_path)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        });
        let mut client = Self::new(&url, token)?;
        client.token_path = token_path;
        Ok(client)
    }

    /// A client of the daemon at `base_url`, sending `token` as a bearer token if given.
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self, ClientError> {
        let bad = |reason: String| ClientError::BadUrl {
            url: base_url.to_string(),
            reason,
        };
        let base = Url::parse(base_url).map_err(|e| bad(e.to_string()))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(bad("expected an http:// or https:// URL".into()));
        }
        // The binary installs ring as the process-wide provider at startup; doing it here too
        // (a no-op when one is installed) keeps the library usable on its own, e.g. in tests.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("cove/", env!("CARGO_PKG_VERSION")));
        if base.scheme() == "http" {
            // Plain HTTP needs no trust roots; loading the system's (hundreds
            // of files) would cost every command a few milliseconds.
            builder = builder.tls_certs_only(std::iter::empty());
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Transport(one_line(&e)))?;
        Ok(Self {
            base,
            token,
            token_path: PathBuf::from(DEFAULT_DATA_DIR).join("token"),
            http,
        })
    }

    /// The daemon's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` (each percent-encoded as one path segment) with `query` pairs.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// `GET url`, decoding a JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, ClientError> {
        decode(self.send(self.http.get(url)).await?).await
    }

    /// `POST url` with a JSON body, decoding a JSON answer.
    pub async fn post<B, T>(&self, url: Url, body: &B) -> Result<T, ClientError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        decode(self.send(self.http.post(url).json(body)).await?).await
    }

    /// `PUT url` with a JSON body, decoding a JSON answer.
    pub async fn put<B, T>(&self, url: Url, body: &B) -> Result<T, ClientError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        decode(self.send(self.http.put(url).json(body)).await?).await
    }

    /// `POST url` without a body, decoding a JSON answer.
    pub async fn post_empty<T: DeserializeOwned>(&self, url: Url) -> Result<T, ClientError> {
        decode(self.send(self.http.post(url)).await?).await
    }

    /// `POST url` with a raw (possibly streamed) body, decoding a JSON answer.
    pub async fn post_body<T: DeserializeOwned>(
        &self,
        url: Url,
        content_type: &str,
        body: reqwest::Body,
    ) -> Result<T, ClientError> {
        let req = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        decode(self.send(req).await?).await
    }

    /// `POST url` with a JSON body, asking for a streamed NDJSON answer; the
    /// successful response is returned so its lines can be read as they come.
    pub async fn post_ndjson<B: Serialize + ?Sized>(
        &self,
        url: Url,
        body: &B,
    ) -> Result<Response, ClientError> {
        let req = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/x-ndjson")
            .json(body);
        self.send(req).await
    }

    /// `HEAD url`: `true` on 2xx, `false` on 404, an error otherwise.
    pub async fn exists(&self, url: Url) -> Result<bool, ClientError> {
        match self.send(self.http.head(url)).await {
            Ok(_) => Ok(true),
            Err(ClientError::Api { status, .. }) if status == StatusCode::NOT_FOUND => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `DELETE url`, expecting an empty success.
    pub async fn delete(&self, url: Url) -> Result<(), ClientError> {
        self.send(self.http.request(Method::DELETE, url)).await?;
        Ok(())
    }

    /// `DELETE url`, decoding a JSON answer.
    pub async fn delete_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, ClientError> {
        decode(self.send(self.http.request(Method::DELETE, url)).await?).await
    }

    /// `GET url`, returning the successful response so its body can be streamed.
    pub async fn get_stream(&self, url: Url) -> Result<Response, ClientError> {
        self.send(self.http.get(url)).await
    }

    /// Sends a request with the token and turns every failure into a [`ClientError`].
    async fn send(&self, mut req: RequestBuilder) -> Result<Response, ClientError> {
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        let message = error_message(status, &body);
        if status == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized {
                message,
                token_path: self.token_path.display().to_string(),
            });
        }
        Err(ClientError::Api { status, message })
    }

    /// Maps a reqwest failure, recognising "nothing listens there".
    pub(crate) fn transport_error(&self, e: &reqwest::Error) -> ClientError {
        if e.is_connect() {
            ClientError::Unreachable {
                url: self.base.as_str().trim_end_matches('/').to_string(),
            }
        } else {
            ClientError::Transport(one_line(e))
        }
    }
}

async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T, ClientError> {
    let body = resp
        .bytes()
        .await
        .map_err(|e| ClientError::Transport(one_line(&e)))?;
    serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
}

/// The message of an error response: its `{"error": ...}`, else its text, else the status.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) {
        return flatten(&error);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() || text.len() > 500 {
        format!("the daemon answered {status}")
    } else {
        format!("the daemon answered {status}: {}", flatten(text))
    }
}

/// `s` on one line: newlines and runs of whitespace become single spaces.
fn flatten(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An error and its sources, joined on one line.
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    flatten(&out)
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_one_line() {
        let body = br#"{"error": "no such container:\n  pod-x"}"#;
        assert_eq!(
            error_message(StatusCode::NOT_FOUND, body),
            "no such container: pod-x"
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b"upstream\nfailed"),
            "the daemon answered 502 Bad Gateway: upstream failed"
        );
        assert_eq!(
            error_message(StatusCode::INTERNAL_SERVER_ERROR, b""),
            "the daemon answered 500 Internal Server Error"
        );
    }

    #[test]
    fn urls_encode_each_segment_and_the_query() {
        let client = Client::new("http://127.0.0.1:7310/", None).unwrap();
        let url = client.url(
            &["v1", "containers", "a/b?c", "logs"],
            &[("follow", "true")],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:7310/v1/containers/a%2Fb%3Fc/logs?follow=true"
        );
        let url = client.url(&["v1", "images"], &[("reference", "reg:5000/busy box:1")]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:7310/v1/images?reference=reg%3A5000%2Fbusy+box%3A1"
        );
    }

    #[test]
    fn bad_base_urls_are_rejected() {
        assert!(Client::new("not a url", None).is_err());
        assert!(Client::new("ftp://x", None).is_err());
    }
}
