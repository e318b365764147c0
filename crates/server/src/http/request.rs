//! Turning an HTTP request into commands: the body (read under a size limit), the JSON
//! forms (`["SET","k","v"]` and pipelines of such arrays) and the path form
//! (`/set/k/v?EX=60`).

use std::fmt;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use axum::http::header::CONTENT_LENGTH;
use axum::http::HeaderMap;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Unexpected, Visitor};

use super::ApiError;

/// A body slower than this is abandoned (408).
const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// The most a body buffer reserves before data arrives, whatever Content-Length claims.
const INITIAL_RESERVE: usize = 64 * 1024;

/// Read the whole body, refusing with 413 as soon as it is known to exceed `limit`: from
/// `Content-Length` before reading anything, or while the data streams in. A refused body is
/// never read further (the connection is closed after the answer).
pub async fn read_body<B>(body: B, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: fmt::Display,
{
    let declared = match headers.get(CONTENT_LENGTH) {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("ERR invalid Content-Length header"))?,
        ),
        None => None,
    };
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    // A body that came with the head, the usual case, is whole at the first poll: no timer
    // is set for it.
    let mut collecting = std::pin::pin!(collect(body, declared, limit));
    if let Poll::Ready(result) = std::future::poll_fn(|cx| Poll::Ready(collecting.as_mut().poll(cx))).await {
        return result;
    }
    match tokio::time::timeout(BODY_TIMEOUT, collecting).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::timeout()),
    }
}

async fn collect<B>(mut body: B, declared: Option<u64>, limit: usize) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: fmt::Display,
{
    // The common case, a body in one frame, is kept as it came, without copying.
    let mut first: Option<Bytes> = None;
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("ERR cannot read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        let have = first.as_ref().map_or(0, Bytes::len) + buffer.len();
        if have + data.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        if first.is_none() && buffer.is_empty() {
            first = Some(data);
            continue;
        }
        if let Some(first) = first.take() {
            let hint = declared.map_or(INITIAL_RESERVE, |d| usize::try_from(d).unwrap_or(limit).min(INITIAL_RESERVE));
            buffer.reserve(hint.max(first.len() + data.len()));
            buffer.extend_from_slice(&first);
        }
        buffer.extend_from_slice(&data);
    }
    Ok(first.unwrap_or_else(|| buffer.freeze()))
}

/// One command argument as JSON gives it: text (borrowed from the body when it has no
/// escapes), or a number or boolean as the very text the client sent (`12345678901234567890123`
/// and `1e-300` stay as they are: read as a double they would change, or grow to hundreds of
/// digits).
enum Arg<'a> {
    Borrowed(&'a str),
    Owned(Vec<u8>),
}

const ARGUMENT: &str = "a command argument (a string, number or boolean)";

/// A JSON string's text.
struct StringVisitor;

impl<'de> Visitor<'de> for StringVisitor {
    type Value = Arg<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ARGUMENT)
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Arg<'de>, E> {
        Ok(Arg::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Arg<'de>, E> {
        Ok(Arg::Owned(v.as_bytes().to_vec()))
    }

    fn visit_string<E>(self, v: String) -> Result<Arg<'de>, E> {
        Ok(Arg::Owned(v.into_bytes()))
    }
}

impl<'de> Arg<'de> {
    /// The argument a JSON value (`raw`, as it lies in the body) gives.
    fn from_raw<E: serde::de::Error>(raw: &'de serde_json::value::RawValue) -> Result<Arg<'de>, E> {
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => serde_json::Deserializer::from_str(text).deserialize_str(StringVisitor).map_err(E::custom),
            Some(b'-' | b'0'..=b'9' | b't' | b'f') => Ok(Arg::Borrowed(text)),
            Some(b'[') => Err(E::invalid_type(Unexpected::Seq, &ARGUMENT)),
            Some(b'{') => Err(E::invalid_type(Unexpected::Map, &ARGUMENT)),
            _ => Err(E::invalid_type(Unexpected::Unit, &ARGUMENT)),
        }
    }
}

impl Arg<'_> {
    /// The argument as bytes: a slice of `body` when borrowed from it (no copy).
    fn into_bytes(self, body: &Bytes) -> Bytes {
        match self {
            Arg::Owned(v) => Bytes::from(v),
            Arg::Borrowed(s) => {
                let start = (s.as_ptr() as usize).checked_sub(body.as_ptr() as usize);
                match start.filter(|&start| start.checked_add(s.len()).is_some_and(|end| end <= body.len())) {
                    Some(start) => body.slice(start..start + s.len()),
                    None => Bytes::copy_from_slice(s.as_bytes()),
                }
            }
        }
    }
}

/// Commands as one flat list of arguments plus where each command ends: two allocations
/// for a whole pipeline, whatever its length.
#[derive(Debug, Default)]
pub struct Commands {
    args: Vec<Bytes>,
    ends: Vec<usize>,
}

impl Commands {
    /// A list of the one command `args`.
    pub fn one(args: Vec<Bytes>) -> Commands {
        Commands { ends: vec![args.len()], args }
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each command's arguments, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[Bytes]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(start, end)| self.args.get(start..end).unwrap_or_default())
    }
}

/// Deserializes one argument straight into `Bytes`.
struct ArgSeed<'b>(&'b Bytes);

impl<'de> DeserializeSeed<'de> for ArgSeed<'_> {
    type Value = Bytes;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Bytes, D::Error> {
        let raw = <&serde_json::value::RawValue as serde::Deserialize>::deserialize(deserializer)?;
        Arg::from_raw(raw).map(|arg| arg.into_bytes(self.0))
    }
}

/// Deserializes one command (an array of arguments), appending to `Commands`.
struct CommandSeed<'b, 'c> {
    body: &'b Bytes,
    out: &'c mut Commands,
}

impl<'de> DeserializeSeed<'de> for CommandSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CommandSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a command: an array of arguments")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(arg) = seq.next_element_seed(ArgSeed(self.body))? {
            self.out.args.push(arg);
        }
        self.out.ends.push(self.out.args.len());
        Ok(())
    }
}

/// Deserializes an array of commands.
struct PipelineSeed<'b, 'c> {
    body: &'b Bytes,
    out: &'c mut Commands,
}

impl<'de> DeserializeSeed<'de> for PipelineSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PipelineSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of commands")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(CommandSeed { body: self.body, out: &mut *self.out })?.is_some() {}
        Ok(())
    }
}

const COMMAND_SHAPE: &str = r#"the body must be a JSON array such as ["SET","key","value"]"#;
const PIPELINE_SHAPE: &str = r#"the body must be a JSON array of commands such as [["SET","k","v"],["GET","k"]]"#;

fn json_error(error: &serde_json::Error, shape: &str) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request(format!("ERR malformed JSON body: {error}"))
        }
        Category::Data => ApiError::bad_request(format!("ERR {shape}: {error}")),
    }
}

/// Run `seed` over the whole body (trailing characters are an error).
fn parse<'de, S: DeserializeSeed<'de, Value = ()>>(body: &'de [u8], seed: S, shape: &str) -> Result<(), ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    seed.deserialize(&mut deserializer).and_then(|()| deserializer.end()).map_err(|e| json_error(&e, shape))
}

/// `["SET","k","v","EX",60]` → the command's arguments.
pub fn json_command(body: &Bytes) -> Result<Vec<Bytes>, ApiError> {
    let mut commands = Commands::default();
    parse(body, CommandSeed { body, out: &mut commands }, COMMAND_SHAPE)?;
    if commands.args.is_empty() {
        return Err(ApiError::bad_request("ERR empty command: the body must name a command, as in [\"PING\"]"));
    }
    Ok(commands.args)
}

/// `[["SET","k","v"],["GET","k"]]` → the commands, all checked before any runs.
pub fn json_pipeline(body: &Bytes) -> Result<Commands, ApiError> {
    let mut commands = Commands::default();
    parse(body, PipelineSeed { body, out: &mut commands }, PIPELINE_SHAPE)?;
    if commands.is_empty() {
        return Err(ApiError::bad_request("ERR empty pipeline: send at least one command"));
    }
    if let Some(i) = commands.iter().position(<[Bytes]>::is_empty) {
        return Err(ApiError::bad_request(format!("ERR empty command at position {} of the pipeline", i + 1)));
    }
    Ok(commands)
}

/// The path form: URL-decoded path segments, then the body (when not empty), then the
/// query parameters as name/value pairs in order (`_token` excluded). This is Upstash's
/// order: `POST /set/k?EX=100` with body `v` is `SET k v EX 100`.
pub fn path_command(path: &str, query: Option<&str>, body: Bytes) -> Vec<Bytes> {
    let mut segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    if segments.len() > 1 && segments.last() == Some(&"") {
        segments.pop(); // one trailing slash
    }
    let mut args: Vec<Bytes> = segments.into_iter().map(|s| Bytes::from(percent_decode(s))).collect();
    if !body.is_empty() {
        args.push(body);
    }
    for (name, value) in query_pairs(query) {
        if name == b"_token" {
            continue;
        }
        args.push(Bytes::from(name));
        if let Some(value) = value {
            args.push(Bytes::from(value));
        }
    }
    args
}

/// Query parameters, decoded, in order: `a=1&b&c=` → (a, Some(1)), (b, None), (c, Some("")).
pub fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (Vec<u8>, Option<Vec<u8>>)> + '_ {
    query.unwrap_or("").split('&').filter(|p| !p.is_empty()).map(|pair| match pair.split_once('=') {
        Some((name, value)) => (percent_decode(name), Some(percent_decode(value))),
        None => (percent_decode(pair), None),
    })
}

/// `%XX` escapes decoded (any bytes, not only UTF-8); a malformed escape stays as it is,
/// and `+` stays a plus (tokens and values may contain one).
pub fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|&c| char::from(c).to_digit(16));
            if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn texts(args: &[Bytes]) -> Vec<String> {
        args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()
    }

    /// A request body that arrives as the test sends it.
    struct Trickle(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

    impl hyper::body::Body for Trickle {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|data| data.map(|data| Ok(hyper::body::Frame::data(data))))
        }
    }

    /// `read_body` of a body whose `first` part is there at once and whose `rest` comes
    /// `after` a while (never, with `None`), under paused time: a timer that is due fires as
    /// soon as nothing else can run.
    async fn read_trickle(
        first: &'static [u8],
        after: Option<Duration>,
        rest: &'static [u8],
    ) -> Result<Bytes, ApiError> {
        let (send, receive) = tokio::sync::mpsc::unbounded_channel();
        send.send(Bytes::from_static(first)).unwrap();
        tokio::spawn(async move {
            match after {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
            send.send(Bytes::from_static(rest)).unwrap();
        });
        let headers = HeaderMap::new();
        let read = read_body(Trickle(receive), &headers, 1024);
        tokio::time::timeout(BODY_TIMEOUT * 2, read).await.expect("read_body set no timer")
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_is_read_whole_however_it_arrives() {
        let at_once = read_trickle(br#"["GET","k"]"#, Some(Duration::ZERO), b"").await;
        assert_eq!(at_once.unwrap(), &br#"["GET","k"]"#[..]);
        let late = read_trickle(br#"["GET","#, Some(BODY_TIMEOUT / 2), br#""k"]"#).await;
        assert_eq!(late.unwrap(), &br#"["GET","k"]"#[..]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_times_out() {
        let stalled = read_trickle(br#"["GET","#, None, b"").await;
        assert_eq!(stalled.unwrap_err().status, axum::http::StatusCode::REQUEST_TIMEOUT);
    }

    #[test]
    fn json_arguments() {
        let body = Bytes::from_static(br#"["SET","k","v\"q","EX",60,true,false,-3,1.5,1e3,"\u00e9"]"#);
        let args = json_command(&body).unwrap();
        assert_eq!(texts(&args), ["SET", "k", "v\"q", "EX", "60", "true", "false", "-3", "1.5", "1e3", "é"]);
        assert!(json_command(&Bytes::from_static(b"[]")).unwrap_err().message.contains("empty command"));
        let err = json_command(&Bytes::from_static(br#"["SET","k""#)).unwrap_err();
        assert!(err.message.starts_with("ERR malformed JSON body"), "{}", err.message);
        let err = json_command(&Bytes::from_static(br#"{"cmd":"GET"}"#)).unwrap_err();
        assert!(err.message.contains("must be a JSON array"), "{}", err.message);
        let err = json_command(&Bytes::from_static(br#"["SET","k",null]"#)).unwrap_err();
        assert!(err.message.contains("a string, number or boolean"), "{}", err.message);
        assert!(json_command(&Bytes::from_static(br#"["SET","k",["x"]]"#)).is_err());
    }

    #[test]
    fn borrowed_arguments_slice_the_body() {
        let body = Bytes::from_static(br#"["GET","some-key"]"#);
        let args = json_command(&body).unwrap();
        let key = args.get(1).unwrap();
        assert_eq!(&key[..], b"some-key");
        assert_eq!(key.as_ptr(), body[8..].as_ptr());
    }

    #[test]
    fn pipelines() {
        let body = Bytes::from_static(br#"[["SET","a",1],["GET","a"]]"#);
        let commands = json_pipeline(&body).unwrap();
        let listed: Vec<Vec<String>> = commands.iter().map(texts).collect();
        assert_eq!(listed, [vec!["SET", "a", "1"], vec!["GET", "a"]]);
        assert!(json_pipeline(&Bytes::from_static(b"[]")).is_err());
        assert!(json_pipeline(&Bytes::from_static(br#"[["GET","a"],[]]"#)).unwrap_err().message.contains("position 2"));
        assert!(json_pipeline(&Bytes::from_static(br#"["GET","a"]"#)).is_err());
    }

    #[test]
    fn path_form() {
        let args = path_command("/set/k%20x/v%2Fw", Some("EX=60&NX&_token=secret"), Bytes::new());
        assert_eq!(texts(&args), ["set", "k x", "v/w", "EX", "60", "NX"]);
        let args = path_command("/set/k", Some("EX=100"), Bytes::from_static(b"{\"a\":1}"));
        assert_eq!(texts(&args), ["set", "k", "{\"a\":1}", "EX", "100"]);
        assert_eq!(texts(&path_command("/get/k/", None, Bytes::new())), ["get", "k"]);
        assert_eq!(texts(&path_command("/echo/a+b%", None, Bytes::new())), ["echo", "a+b%"]);
        assert_eq!(path_command("/echo/%ff", None, Bytes::new()).get(1).unwrap().as_ref(), b"\xff");
    }
}
