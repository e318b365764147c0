//! Who may use the HTTP API, and for what.
//!
//! * `Authorization: Bearer TOKEN` or `?_token=TOKEN`. `--http-token` gives full access,
//!   `--http-readonly-token` read commands only. A token that matches neither is refused
//!   (401), compared in constant time.
//! * A token runs as an ACL user ([`Access::user`]): while that user is disabled (`ACL SETUSER
//!   ... off`), the token is refused as `AUTH` would refuse the user.
//! * A request without a token is served only when no `--http-token` is configured and it
//!   comes from a loopback address (protected mode). Such requests must not come from a web
//!   page: a cross-site `Origin`/`Sec-Fetch-Site`, or a `Host` that is not a loopback name
//!   (DNS rebinding), is refused, so a browser tab cannot drive the local server.

use std::net::{IpAddr, SocketAddr};

use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderName};
use staykv_engine::command::{flags, CommandSpec};

use super::request::query_pairs;
use super::ApiError;
use crate::auth::constant_time_eq;

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Full,
    ReadOnly,
}

impl Access {
    /// The ACL user the token runs as, checked by the engine like a RESP client's: the full
    /// token as `default`, the read-only one as `http-readonly` (built in, or the ACL user of
    /// that name).
    pub fn user(self) -> &'static str {
        match self {
            Access::Full => "default",
            Access::ReadOnly => staykv_engine::acl::HTTP_READONLY_USER,
        }
    }
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub full: Option<String>,
    pub readonly: Option<String>,
}

impl Tokens {
    /// One line for the start-up log saying who the HTTP API serves (`default_open`: the
    /// `default` user has no password, see [`authorize`]).
    pub fn describe(&self, default_open: bool) -> &'static str {
        match (&self.full, &self.readonly) {
            (Some(_), Some(_)) => "token required (full and read-only tokens configured)",
            (Some(_), None) => "token required (--http-token)",
            (None, _) if !default_open => {
                "no --http-token while the default user has a password: only the read-only token, if any, is served"
            }
            (None, Some(_)) => {
                "no --http-token: loopback clients without a token get full access; others need the read-only token"
            }
            (None, None) => "no --http-token: serving loopback clients only, without a token (protected mode)",
        }
    }
}

/// The token a request carries: the bearer header first, else the `_token` query parameter.
/// An `Authorization` header of another scheme (Basic, added by a proxy) carries none: the
/// query's is then used, and without one the request presents an empty token.
fn presented(headers: &HeaderMap, query: Option<&str>) -> Option<Vec<u8>> {
    let header = headers.get(AUTHORIZATION).map(|value| value.as_bytes());
    let bearer = header.and_then(|text| {
        let scheme = text.get(..7)?;
        scheme.eq_ignore_ascii_case(b"bearer ").then(|| text.get(7..).unwrap_or_default().trim_ascii().to_vec())
    });
    bearer
        .or_else(|| query_pairs(query).find(|(name, _)| name == b"_token").map(|(_, value)| value.unwrap_or_default()))
        .or_else(|| header.map(|_| Vec::new()))
}

/// Decide what the request may do, or refuse it. `default_open`: the `default` user needs no
/// password (`on nopass`), so a new RESP connection is logged in as it; only then does a
/// tokenless loopback request get its access too. Once `default` has a password
/// (`requirepass`, an ACL file), the HTTP API needs a token as RESP needs `AUTH`.
pub fn authorize(
    tokens: &Tokens,
    headers: &HeaderMap,
    query: Option<&str>,
    peer: SocketAddr,
    default_open: bool,
) -> Result<Access, ApiError> {
    let loopback = tokens.full.is_none() && crate::connection::is_loopback(peer.ip());
    let loopback_trust = loopback && default_open;
    match presented(headers, query) {
        Some(token) if tokens.full.is_some() || tokens.readonly.is_some() => {
            // Both comparisons always run, so timing says nothing about which one matched.
            let full = tokens.full.as_deref().is_some_and(|t| constant_time_eq(t.as_bytes(), &token));
            let readonly = tokens.readonly.as_deref().is_some_and(|t| constant_time_eq(t.as_bytes(), &token));
            if full {
                Ok(Access::Full)
            } else if readonly {
                Ok(Access::ReadOnly)
            } else if token.is_empty() && loopback_trust {
                local_request(headers).map(|()| Access::Full)
            } else {
                Err(ApiError::unauthorized("WRONGPASS invalid auth token"))
            }
        }
        // No token configured at all: whatever token a client sends is ignored on loopback.
        _ if loopback_trust => local_request(headers).map(|()| Access::Full),
        _ if loopback => Err(ApiError::unauthorized(
            "WRONGPASS the default user has a password (requirepass or ACL), so the HTTP API needs a token: set --http-token",
        )),
        _ if tokens.full.is_none() && tokens.readonly.is_none() => Err(ApiError::unauthorized(
            "WRONGPASS this server has no --http-token, so its HTTP API only serves loopback clients",
        )),
        _ => Err(ApiError::unauthorized(
            "WRONGPASS missing auth token: send 'Authorization: Bearer <token>' or '?_token=<token>'",
        )),
    }
}

/// Whether `/metrics` may be read: with any valid token, or without one where the API itself
/// serves tokenless requests (a local program on loopback while no `--http-token` is set).
/// The figures hold no key data, so a password on `default` does not close them; but once a
/// token is set, a reverse proxy on the same machine may make every client loopback, and a
/// web page must not read them either.
pub fn may_read_metrics(
    tokens: &Tokens,
    headers: &HeaderMap,
    query: Option<&str>,
    peer: SocketAddr,
) -> Result<(), ApiError> {
    authorize(tokens, headers, query, peer, true).map(|_| ())
}

/// Sent by browsers: where the request comes from relative to the target.
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// A tokenless request must come from a local program, not from a web page.
fn local_request(headers: &HeaderMap) -> Result<(), ApiError> {
    const REFUSED: &str = "NOPERM requests from web pages are refused while no --http-token is set";
    if let Some(host) = headers.get(HOST) {
        let host = host.to_str().unwrap_or("");
        if !is_loopback_host(host) {
            return Err(ApiError::forbidden(format!("{REFUSED} (Host '{host}' is not a loopback name)")));
        }
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = origin.split_once("://").map_or("", |(_, rest)| rest);
        if !is_loopback_host(host) {
            return Err(ApiError::forbidden(format!("{REFUSED} (Origin '{origin}')")));
        }
    }
    if let Some(site) = headers.get(&SEC_FETCH_SITE) {
        if !matches!(site.as_bytes(), b"none" | b"same-origin") {
            return Err(ApiError::forbidden(format!("{REFUSED} (cross-site request)")));
        }
    }
    Ok(())
}

/// `localhost`, `127.0.0.1:8079`, `[::1]:8079`...
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(inside, _)| inside)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(crate::connection::is_loopback)
}

/// Read commands a read-only token may not run (Upstash restricts these too).
const READONLY_DENIED: &[&str] = &["keys", "scan"];
/// Commands that are not flagged read-only but are harmless for a read-only token.
const READONLY_EXTRA: &[&str] =
    &["ping", "echo", "time", "select", "command", "multi", "exec", "discard", "watch", "unwatch"];

/// `Some(error)` when a read-only token may not run `spec`: only commands flagged
/// `readonly` (but not KEYS/SCAN), transaction control and a few harmless ones are allowed.
pub fn readonly_refusal(spec: &CommandSpec) -> Option<String> {
    let allowed =
        (spec.has(flags::READONLY) && !READONLY_DENIED.contains(&spec.name)) || READONLY_EXTRA.contains(&spec.name);
    (!allowed)
        .then(|| format!("NOPERM this user has no permissions to run the '{}' command or its subcommand", spec.name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 50000)
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        headers
    }

    #[test]
    fn tokens() {
        let tokens = Tokens { full: Some("full".into()), readonly: Some("ro".into()) };
        let remote = peer("10.1.2.3");
        assert_eq!(authorize(&tokens, &bearer("full"), None, remote, true).unwrap(), Access::Full);
        assert_eq!(authorize(&tokens, &bearer("ro"), None, remote, true).unwrap(), Access::ReadOnly);
        assert_eq!(authorize(&tokens, &HeaderMap::new(), Some("_token=ro"), remote, true).unwrap(), Access::ReadOnly);
        assert_eq!(authorize(&tokens, &bearer("nope"), None, remote, true).unwrap_err().status.as_u16(), 401);
        assert_eq!(
            authorize(&tokens, &HeaderMap::new(), None, peer("127.0.0.1"), true).unwrap_err().status.as_u16(),
            401
        );
        let mut lower = HeaderMap::new();
        lower.insert(AUTHORIZATION, HeaderValue::from_static("bearer full"));
        assert_eq!(authorize(&tokens, &lower, None, remote, true).unwrap(), Access::Full);
        // A proxy's Basic header carries no token: `_token` still does.
        let mut basic = HeaderMap::new();
        basic.insert(AUTHORIZATION, HeaderValue::from_static("Basic dXNlcjpwYXNz"));
        assert_eq!(authorize(&tokens, &basic, Some("_token=ro"), remote, true).unwrap(), Access::ReadOnly);
        assert_eq!(authorize(&tokens, &basic, None, remote, true).unwrap_err().status.as_u16(), 401);
    }

    #[test]
    fn protected_mode() {
        let none = Tokens::default();
        assert_eq!(authorize(&none, &HeaderMap::new(), None, peer("127.0.0.1"), true).unwrap(), Access::Full);
        assert_eq!(authorize(&none, &bearer("anything"), None, peer("::1"), true).unwrap(), Access::Full);
        assert_eq!(
            authorize(&none, &HeaderMap::new(), None, peer("192.168.1.2"), true).unwrap_err().status.as_u16(),
            401
        );
        let mut web = HeaderMap::new();
        web.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert_eq!(authorize(&none, &web, None, peer("127.0.0.1"), true).unwrap_err().status.as_u16(), 403);
        let mut rebinding = HeaderMap::new();
        rebinding.insert(HOST, HeaderValue::from_static("evil.example:8079"));
        assert_eq!(authorize(&none, &rebinding, None, peer("127.0.0.1"), true).unwrap_err().status.as_u16(), 403);
        let mut local = HeaderMap::new();
        local.insert(HOST, HeaderValue::from_static("127.0.0.1:8079"));
        local.insert(ORIGIN, HeaderValue::from_static("http://localhost:3000"));
        assert!(authorize(&none, &local, None, peer("127.0.0.1"), true).is_ok());
        // Once `default` has a password, a tokenless loopback request is refused, as RESP
        // refuses commands before AUTH.
        assert_eq!(
            authorize(&none, &HeaderMap::new(), None, peer("127.0.0.1"), false).unwrap_err().status.as_u16(),
            401
        );
        assert_eq!(authorize(&none, &bearer("x"), None, peer("::1"), false).unwrap_err().status.as_u16(), 401);
        let readonly_only = Tokens { full: None, readonly: Some("ro".into()) };
        assert_eq!(
            authorize(&readonly_only, &HeaderMap::new(), None, peer("127.0.0.1"), false).unwrap_err().status.as_u16(),
            401
        );
        assert_eq!(authorize(&readonly_only, &HeaderMap::new(), None, peer("127.0.0.1"), true).unwrap(), Access::Full);
        assert_eq!(authorize(&readonly_only, &bearer("ro"), None, peer("10.0.0.1"), true).unwrap(), Access::ReadOnly);
    }

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "localhost:8079", "127.0.0.1", "127.0.0.1:1", "[::1]:8079", "app.localhost"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1:8079", "[2001:db8::1]:80", ""] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
