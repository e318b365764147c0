//! Browsers' cross-origin rules for the HTTP API (`--http-cors-origin`).
//!
//! `@upstash/redis` runs in web pages too; a page may call an API on another origin only when
//! the API answers with `Access-Control-Allow-*` headers, and for a request with an
//! `Authorization` header the browser first asks with an `OPTIONS` preflight. Off unless
//! origins are listed, and only with a token: with CORS open and no token, any page a user
//! visits could read and write a store on their machine.

use std::time::Duration;

use axum::http::header::HeaderValue;
use axum::http::Method;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use super::routes::SYNC_TOKEN;

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The origins of `--http-cors-origin`: `*`, or a comma-separated list of
/// `scheme://host[:port]`, compared with the `Origin` a browser sends (which it writes in
/// lower case: so are these).
pub fn cors_origins(text: &str) -> Result<AllowOrigin, String> {
    let origins: Vec<&str> = text.split(',').map(str::trim).filter(|o| !o.is_empty()).collect();
    match origins.as_slice() {
        [] => Err("no origin given".into()),
        ["*"] => Ok(AllowOrigin::any()),
        list => list.iter().map(|origin| origin_value(origin)).collect::<Result<Vec<_>, _>>().map(AllowOrigin::list),
    }
}

fn origin_value(origin: &str) -> Result<HeaderValue, String> {
    let origin = origin.to_ascii_lowercase();
    let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    let well_formed =
        host.is_some_and(|host| !host.is_empty() && !host.contains(['/', '?', '#', ' ']) && !host.contains('*'));
    if !well_formed {
        return Err(format!(
            "'{origin}' is not an origin: write scheme://host[:port] with no path (https://app.example.com), or * alone"
        ));
    }
    HeaderValue::from_str(&origin).map_err(|_| format!("'{origin}' is not a valid header value"))
}

/// The layer answering preflights and marking replies for the allowed origins.
pub fn layer(origins: AllowOrigin) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::PUT])
        // Authorization, Content-Type and the client's own `Upstash-*` headers (encoding,
        // sync token, telemetry): whatever the page asks for, as the token still decides.
        .allow_headers(AllowHeaders::mirror_request())
        // Read-your-writes: the client reads the sync token of each answer.
        .expose_headers([SYNC_TOKEN])
        .max_age(PREFLIGHT_MAX_AGE)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        assert!(cors_origins("*").is_ok());
        assert!(cors_origins("https://app.example.com, http://localhost:3000").is_ok());
        assert!(cors_origins("HTTPS://App.Example.com").is_ok());
        for bad in [
            "",
            " , ",
            "app.example.com",
            "https://app.example.com/",
            "https://a.com/path",
            "ftp://a.com",
            "https://*.a.com",
            "*,https://a.com",
        ] {
            assert!(cors_origins(bad).is_err(), "{bad:?} accepted");
        }
    }
}
