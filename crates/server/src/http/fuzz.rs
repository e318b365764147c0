//! Fuzz target for the HTTP request decoding (the JSON command and pipeline bodies, the
//! path form and percent-decoding), run by the `staykv-fuzz` driver. It lives here because
//! the decoder is private to the server binary.
//!
//! `cargo test -p staykv --bin staykv http::fuzz` runs it briefly (CI);
//! `STAYKV_FUZZ_SECS=600 cargo test --release -p staykv --bin staykv http::fuzz -- --nocapture`
//! runs it for ten minutes and prints the figures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bytes::Bytes;
use serde_json::Value;
use staykv_fuzz::{fuzz, replay_dir, signature, test_options, Target};

use super::request::{json_command, json_pipeline, path_command, percent_decode};

pub const HTTP: Target = Target {
    name: "http",
    run: http,
    seeds,
    dictionary: &[
        b"[",
        b"]",
        b"\"",
        b",",
        b"\\u0000",
        b"\\ud83d\\ude00",
        b"\\ud800",
        b"\\\"",
        b"1e400",
        b"-0.0",
        b"null",
        b"true",
        b"{}",
        b"%",
        b"%00",
        b"%zz",
        b"?",
        b"&",
        b"=",
        b"_token",
        b"/",
    ],
    max_len: 4096,
};

fn seeds() -> Vec<Vec<u8>> {
    [
        &b"\x00[\"SET\",\"k\",\"v\",\"EX\",60]"[..],
        b"\x00[\"GET\",\"caf\\u00e9\"]",
        b"\x01[[\"SET\",\"k\",\"v\"],[\"GET\",\"k\"]]",
        b"\x01[[\"PING\"],[]]",
        b"\x02/set/k%20ey/v%2Fx?EX=60&_token=abc&flag",
        b"\x02/get/%ff%00",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect()
}

/// An array of JSON strings as bytes (what the decoder must produce for it).
fn strings(value: &Value) -> Option<Vec<Vec<u8>>> {
    value.as_array()?.iter().map(|v| v.as_str().map(|s| s.as_bytes().to_vec())).collect()
}

fn http(data: &[u8]) -> u64 {
    let (mode, rest) = data.split_first().map_or((0, &[][..]), |(m, r)| (*m, r));
    let body = Bytes::copy_from_slice(rest);
    let reference: Option<Value> = serde_json::from_slice(rest).ok();
    // Whether the body is a JSON array at all. Not `reference`: a `Value` refuses numbers out
    // of a double's range, which the decoder passes on as their text (`1e4006854775808`).
    let json_array =
        serde_json::from_slice::<serde::de::IgnoredAny>(rest).is_ok() && rest.trim_ascii_start().first() == Some(&b'[');
    match mode % 3 {
        0 => {
            let got = json_command(&body);
            if got.is_ok() {
                assert!(json_array, "accepted a body that is not a JSON array");
            }
            if let Some(want) = reference.as_ref().and_then(strings).filter(|w| !w.is_empty()) {
                let args: Vec<Vec<u8>> =
                    got.as_ref().expect("a JSON array of strings").iter().map(|b| b.to_vec()).collect();
                assert_eq!(args, want);
            }
            signature(&[0, u64::from(got.is_ok()), reference.map_or(9, |v| json_kind(&v))])
        }
        1 => {
            let got = json_pipeline(&body);
            if let Ok(commands) = &got {
                assert!(json_array, "accepted a body that is not a JSON array");
                assert!(commands.iter().all(|c| !c.is_empty()));
            }
            let want: Option<Vec<Vec<Vec<u8>>>> =
                reference.as_ref().and_then(|v| v.as_array()?.iter().map(strings).collect());
            if let Some(want) = want.filter(|w| !w.is_empty() && w.iter().all(|c| !c.is_empty())) {
                let commands = got.as_ref().expect("an array of arrays of strings");
                let got: Vec<Vec<Vec<u8>>> = commands.iter().map(|c| c.iter().map(|b| b.to_vec()).collect()).collect();
                assert_eq!(got, want);
            }
            signature(&[1, u64::from(got.is_ok()), reference.map_or(9, |v| json_kind(&v))])
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            let (path, query) = match text.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (&*text, None),
            };
            let args = path_command(path, query, Bytes::new());
            // Encoding every byte and decoding must give the bytes back.
            let encoded: String = rest.iter().map(|b| format!("%{b:02X}")).collect();
            assert_eq!(percent_decode(&encoded), rest);
            signature(&[2, args.len().min(8) as u64])
        }
    }
}

fn json_kind(value: &Value) -> u64 {
    match value {
        Value::Null => 1,
        Value::Bool(_) => 2,
        Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Array(items) => 5 + items.len().min(4) as u64 * 10 + items.first().map_or(0, json_kind) * 100,
        Value::Object(_) => 6,
    }
}

#[test]
fn fuzz_http_request_decoding() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let replayed = replay_dir(&HTTP, &root.join("regressions/http")).unwrap_or_else(|f| panic!("regression: {f}"));
    println!("http: {replayed} regression inputs pass");
    let mut options = test_options();
    options.corpus_dir = root.join("corpus");
    options.crash_dir = root.join("crashes");
    options.save_new = std::env::var("STAYKV_FUZZ_SAVE").is_ok_and(|v| v == "1");
    match fuzz(&HTTP, &options) {
        Ok(report) => println!("{report}"),
        Err(failure) => panic!("{failure}"),
    }
}
