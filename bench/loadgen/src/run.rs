//! The workloads: preload, the session mix (closed loop or open loop), wait-ready.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::gen::{self, KeyKind, Zipf};
use crate::proto::{self, Outcome};
use crate::Common;

/// How requests reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// RESP over persistent connections.
    Resp,
    /// RESP, a new TCP connection for every request (the serverless pattern).
    Connect,
    /// The HTTP API (`POST /` with a JSON command) over keep-alive connections.
    Http,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SessionArgs {
    #[command(flatten)]
    pub common: Common,
    /// Number of live sessions the keys are drawn from (keys 0..sessions of the preload).
    #[arg(long)]
    pub sessions: u64,
    #[arg(long, value_enum, default_value_t = Mode::Resp)]
    pub mode: Mode,
    /// Concurrent connections (closed loop) or connection threads (open loop).
    #[arg(long, default_value_t = 50)]
    pub conns: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Requests per second over all connections, open loop (latency counted from each
    /// request's scheduled time, so a stall is not hidden); 0 = closed loop, saturation.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Percentages of GET, EXPIRE, SET EX, DEL.
    #[arg(long, default_value = "70,18,11,1")]
    pub mix: String,
    /// Zipfian constant (YCSB's default 0.99).
    #[arg(long, default_value_t = 0.99)]
    pub theta: f64,
    /// Bearer token for `--mode http`.
    #[arg(long)]
    pub http_token: Option<String>,
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    let mut b = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    b.enable_all().build().map_err(|e| format!("cannot start the runtime: {e}"))
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("address {addr} resolves to nothing"))
}

/// Parse one reply (RESP or HTTP) at the start of `buf`.
fn parse(http: bool, buf: &[u8]) -> Result<Option<(usize, Outcome, bool)>, String> {
    if http {
        proto::parse_http(buf)
    } else {
        Ok(proto::parse_reply(buf, 0)?.map(|(end, o)| (end, o, false)))
    }
}

/// Bytes read from a connection, from which replies are taken one at a time.
struct Replies {
    buf: Vec<u8>,
    len: usize,
    /// The first error reply seen, for the report (its first 200 bytes).
    first_error: Option<String>,
}

impl Replies {
    fn new() -> Replies {
        Replies { buf: vec![0; 16 * 1024], len: 0, first_error: None }
    }

    /// The next complete reply, if one has been read: its outcome and whether the server
    /// closes the connection.
    fn next(&mut self, http: bool) -> Result<Option<(Outcome, bool)>, String> {
        let Some((end, outcome, close)) = parse(http, self.buf.get(..self.len).unwrap_or_default())? else {
            return Ok(None);
        };
        if outcome == Outcome::Error && self.first_error.is_none() {
            let text = self.buf.get(..end.min(200)).unwrap_or_default();
            self.first_error = Some(String::from_utf8_lossy(text).trim_end().to_string());
        }
        self.buf.copy_within(end..self.len, 0);
        self.len -= end;
        Ok(Some((outcome, close)))
    }

    /// Room for the next read (grown when full).
    fn spare(&mut self) -> &mut [u8] {
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        self.buf.get_mut(self.len..).unwrap_or_default()
    }

    /// `n` bytes were read into `spare()`.
    fn filled(&mut self, n: usize) -> Result<(), String> {
        if n == 0 {
            return Err("connection closed by the server".into());
        }
        self.len += n;
        Ok(())
    }
}

/// A connection with its read buffer (async).
struct Conn {
    stream: tokio::net::TcpStream,
    replies: Replies,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        Conn::ready(stream)
    }

    /// Connect from `source` (a loopback address), the port picked at connect time.
    async fn open_from(addr: SocketAddr, source: Ipv4Addr) -> Result<Conn, String> {
        let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
        bind_address_no_port(&socket)?;
        socket.bind(SocketAddr::new(source.into(), 0)).map_err(|e| format!("bind {source}: {e}"))?;
        let stream = socket.connect(addr).await.map_err(|e| format!("connect {addr} from {source}: {e}"))?;
        Conn::ready(stream)
    }

    fn ready(stream: tokio::net::TcpStream) -> Result<Conn, String> {
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Conn { stream, replies: Replies::new() })
    }

    /// Read one reply; returns its outcome and whether the server closes the connection.
    async fn read_reply(&mut self, http: bool) -> Result<(Outcome, bool), String> {
        loop {
            if let Some(reply) = self.replies.next(http)? {
                return Ok(reply);
            }
            let n = self.stream.read(self.replies.spare()).await.map_err(|e| format!("read: {e}"))?;
            self.replies.filled(n)?;
        }
    }
}

/// `IP_BIND_ADDRESS_NO_PORT`: leave the port to `connect`, which may then reuse a port that
/// another source address or destination already holds (a `bind` to port 0 could not).
#[allow(unsafe_code)]
fn bind_address_no_port(socket: &tokio::net::TcpSocket) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor, and an option value of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("IP_BIND_ADDRESS_NO_PORT: {}", std::io::Error::last_os_error()))
    }
}

/// Source addresses for one connect-per-request task against a loopback server.
///
/// Every closed connection stays in TIME_WAIT on the client side for 60 s. From one address,
/// 14,000 connects a second fill the 28,000 ephemeral ports in two seconds, after which each
/// `connect` searches the port range (`__inet_check_established`, `__inet_hash_connect` and
/// `tcp_twsk_unique`: 29% of the load generator's samples) and the run measured that search,
/// the same for every server. A serverless
/// fleet connects from many hosts; cycling through 127.x.y.z addresses (all loopback on
/// Linux) keeps each source address's ports free, as theirs are.
struct SourceAddrs {
    task: u8,
    next: u16,
}

impl SourceAddrs {
    fn for_task(task: usize) -> SourceAddrs {
        SourceAddrs { task: (task % 250) as u8 + 1, next: 0 }
    }

    fn next(&mut self) -> Ipv4Addr {
        let [high, low] = self.next.to_be_bytes();
        self.next = self.next.wrapping_add(1);
        Ipv4Addr::new(127, self.task, high, low)
    }
}

/// The same, blocking (open-loop threads and wait-ready).
struct SyncConn {
    stream: std::net::TcpStream,
    replies: Replies,
}

impl SyncConn {
    fn open(addr: SocketAddr, timeout: Duration) -> Result<SyncConn, String> {
        let stream =
            std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(SyncConn { stream, replies: Replies::new() })
    }

    fn roundtrip(&mut self, req: &[u8], http: bool) -> Result<(Outcome, bool), String> {
        self.stream.write_all(req).map_err(|e| format!("write: {e}"))?;
        loop {
            if let Some(reply) = self.replies.next(http)? {
                return Ok(reply);
            }
            let n = self.stream.read(self.replies.spare()).map_err(|e| format!("read: {e}"))?;
            self.replies.filled(n)?;
        }
    }
}

/// What one connection (task or thread) measured.
struct Stats {
    hist: Histogram<u64>,
    /// Replies received in the measured window.
    ops: u64,
    /// Replies received in all (warm-up included): what the server's CPU time paid for.
    total: u64,
    errors: u64,
    nil: u64,
    first_error: Option<String>,
    /// Open loop: the connection could not keep to its schedule and gave up.
    late: bool,
}

impl Stats {
    fn new() -> Result<Stats, String> {
        // Nanoseconds, 1 ns .. 100 s, 3 significant digits.
        let hist = Histogram::new_with_bounds(1, 100_000_000_000, 3).map_err(|e| e.to_string())?;
        Ok(Stats { hist, ops: 0, total: 0, errors: 0, nil: 0, first_error: None, late: false })
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    /// Counts a reply; `text` is the connection's first error reply, for the report.
    fn outcome(&mut self, o: Outcome, text: Option<&str>) {
        match o {
            Outcome::Ok => {}
            Outcome::Nil => self.nil += 1,
            Outcome::Error => self.error(format!("error reply {:?}", text.unwrap_or_default())),
        }
    }

    fn merge(&mut self, other: Stats) -> Result<(), String> {
        self.hist.add(&other.hist).map_err(|e| e.to_string())?;
        self.ops += other.ops;
        self.total += other.total;
        self.errors += other.errors;
        self.nil += other.nil;
        self.late |= other.late;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        Ok(())
    }
}

/// Everything needed to build the next request.
struct Workload {
    kind: KeyKind,
    seed: u64,
    zipf: Zipf,
    /// Cumulative thresholds of GET, EXPIRE, SET, DEL out of `total`.
    thresholds: [u32; 4],
    values: Vec<Vec<u8>>,
    ttl: Vec<u8>,
    http: bool,
    host: String,
    token: Option<String>,
}

impl Workload {
    fn new(args: &SessionArgs) -> Result<Workload, String> {
        let parts: Vec<u32> = args
            .mix
            .split(',')
            .map(|p| p.trim().parse::<u32>().map_err(|_| format!("bad --mix {:?}", args.mix)))
            .collect::<Result<_, _>>()?;
        let [get, expire, set, del] = parts.as_slice() else {
            return Err("--mix takes 4 numbers: GET,EXPIRE,SET,DEL".into());
        };
        let thresholds = [*get, get + expire, get + expire + set, get + expire + set + del];
        if thresholds[3] == 0 {
            return Err("--mix adds up to 0".into());
        }
        let mut rng = SmallRng::seed_from_u64(args.common.seed ^ 0x5EED);
        Ok(Workload {
            kind: args.common.kind,
            seed: args.common.seed,
            zipf: Zipf::new(args.sessions, args.theta),
            thresholds,
            values: gen::value_pool(&mut rng, 64, args.common.value_size),
            ttl: args.common.ttl.to_string().into_bytes(),
            http: args.mode == Mode::Http,
            host: args.common.addr.clone(),
            token: args.http_token.clone(),
        })
    }

    /// Encode the next request into `out` (cleared first).
    fn next(&self, rng: &mut SmallRng, out: &mut Vec<u8>, key: &mut Vec<u8>) {
        key.clear();
        gen::push_key(key, self.kind, self.seed, self.zipf.item(rng));
        let r = rng.gen_range(0..self.thresholds[3]);
        let value = self.values.get(rng.gen_range(0..self.values.len())).map(Vec::as_slice).unwrap_or_default();
        let k = key.as_slice();
        let get: [&[u8]; 2] = [b"GET", k];
        let expire: [&[u8]; 3] = [b"EXPIRE", k, &self.ttl];
        let set: [&[u8]; 5] = [b"SET", k, value, b"EX", &self.ttl];
        let del: [&[u8]; 2] = [b"DEL", k];
        let args: &[&[u8]] = if r < self.thresholds[0] {
            &get
        } else if r < self.thresholds[1] {
            &expire
        } else if r < self.thresholds[2] {
            &set
        } else {
            &del
        };
        out.clear();
        if self.http {
            proto::encode_http(out, &self.host, self.token.as_deref(), args);
        } else {
            proto::encode_command(out, args);
        }
    }
}

fn us(hist: &Histogram<u64>, q: f64) -> f64 {
    hist.value_at_quantile(q) as f64 / 1000.0
}

fn report(args: &SessionArgs, stats: &Stats, secs: f64) {
    let h = &stats.hist;
    println!(
        "mode={:?} conns={} rate={} ops={} total_ops={} secs={:.3} rps={:.1} p50_us={:.1} p90_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1} mean_us={:.1} errors={} nil={} late={}",
        args.mode,
        args.conns,
        args.rate,
        stats.ops,
        stats.total,
        secs,
        stats.ops as f64 / secs,
        us(h, 0.50),
        us(h, 0.90),
        us(h, 0.99),
        us(h, 0.999),
        h.max() as f64 / 1000.0,
        h.mean() / 1000.0,
        stats.errors,
        stats.nil,
        u8::from(stats.late),
    );
    if let Some(e) = &stats.first_error {
        eprintln!("staykv-loadgen: {} errors, the first: {e}", stats.errors);
    }
}

/// Run the session workload and print one result line.
pub fn session(args: &SessionArgs) -> Result<(), String> {
    if args.sessions == 0 || args.conns == 0 {
        return Err("--sessions and --conns must be > 0".into());
    }
    let addr = resolve(&args.common.addr)?;
    let workload = Arc::new(Workload::new(args)?);
    let warmup = Duration::from_secs_f64(args.warmup.max(0.0));
    let duration = Duration::from_secs_f64(args.duration.max(0.001));
    let stats = if args.rate > 0.0 {
        if args.mode == Mode::Connect {
            return Err("--rate is not supported with --mode connect".into());
        }
        open_loop(args, addr, workload, warmup, duration)?
    } else {
        let rt = runtime(args.common.threads)?;
        let (mode, conns, seed) = (args.mode, args.conns, args.common.seed);
        rt.block_on(async move {
            let start = Instant::now();
            let measure_from = start + warmup;
            let end = measure_from + duration;
            let tasks: Vec<_> = (0..conns)
                .map(|i| {
                    let sources = connect_sources(mode, addr, i);
                    tokio::spawn(closed_task(
                        workload.clone(),
                        mode,
                        addr,
                        sources,
                        seed ^ (i as u64 + 1) << 20,
                        measure_from,
                        end,
                    ))
                })
                .collect();
            let mut all = Stats::new()?;
            for t in tasks {
                all.merge(t.await.map_err(|e| e.to_string())??)?;
            }
            Ok::<_, String>(all)
        })?
    };
    report(args, &stats, duration.as_secs_f64());
    Ok(())
}

/// Connect-per-request against a loopback server connects from many addresses.
fn connect_sources(mode: Mode, addr: SocketAddr, task: usize) -> Option<SourceAddrs> {
    let loopback = matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
    (mode == Mode::Connect && loopback).then(|| SourceAddrs::for_task(task))
}

async fn closed_task(
    wl: Arc<Workload>,
    mode: Mode,
    addr: SocketAddr,
    mut sources: Option<SourceAddrs>,
    seed: u64,
    measure_from: Instant,
    end: Instant,
) -> Result<Stats, String> {
    let mut stats = Stats::new()?;
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut req, mut key) = (Vec::with_capacity(2048), Vec::with_capacity(64));
    let mut conn: Option<Conn> = None;
    let http = mode == Mode::Http;
    loop {
        if Instant::now() >= end {
            break;
        }
        wl.next(&mut rng, &mut req, &mut key);
        let t0 = Instant::now();
        let result: Result<(Outcome, bool), String> = async {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => conn.insert(match sources.as_mut() {
                    Some(sources) => Conn::open_from(addr, sources.next()).await?,
                    None => Conn::open(addr).await?,
                }),
            };
            c.stream.write_all(&req).await.map_err(|e| format!("write: {e}"))?;
            c.read_reply(http).await
        }
        .await;
        let t1 = Instant::now();
        match result {
            Ok((outcome, close)) => {
                stats.total += 1;
                if t0 >= measure_from {
                    stats.ops += 1;
                    stats.hist.saturating_record((t1 - t0).as_nanos() as u64);
                    stats.outcome(outcome, conn.as_ref().and_then(|c| c.replies.first_error.as_deref()));
                }
                if close || mode == Mode::Connect {
                    // Connect-per-request: close after every reply, as a serverless function does.
                    conn = None;
                }
            }
            Err(e) => {
                stats.error(e);
                conn = None;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    Ok(stats)
}

fn open_loop(
    args: &SessionArgs,
    addr: SocketAddr,
    wl: Arc<Workload>,
    warmup: Duration,
    duration: Duration,
) -> Result<Stats, String> {
    let conns = args.conns;
    let interval = Duration::from_secs_f64(conns as f64 / args.rate);
    // Leave the threads time to connect before the schedule starts.
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + warmup;
    let end = measure_from + duration;
    // A connection that is more than 5 s behind its schedule stops (and says so).
    let hard_stop = end + Duration::from_secs(5);
    let http = args.mode == Mode::Http;
    let threads: Vec<_> = (0..conns)
        .map(|i| {
            let wl = wl.clone();
            let seed = args.common.seed ^ (i as u64 + 1) << 20;
            std::thread::spawn(move || -> Result<Stats, String> {
                let mut stats = Stats::new()?;
                let mut rng = SmallRng::seed_from_u64(seed);
                let (mut req, mut key) = (Vec::with_capacity(2048), Vec::with_capacity(64));
                let mut conn: Option<SyncConn> = None;
                // Stagger the connections evenly over one interval.
                let first = start + interval.mul_f64(i as f64 / conns as f64);
                let mut k: u32 = 0;
                loop {
                    let intended = first + interval * k;
                    k = k.saturating_add(1);
                    if intended >= end {
                        break;
                    }
                    let now = Instant::now();
                    if now >= hard_stop {
                        stats.late = true;
                        break;
                    }
                    if intended > now {
                        std::thread::sleep(intended - now);
                    }
                    wl.next(&mut rng, &mut req, &mut key);
                    let result = match conn.as_mut() {
                        Some(c) => c.roundtrip(&req, http),
                        None => match SyncConn::open(addr, Duration::from_secs(2)) {
                            Ok(c) => conn.insert(c).roundtrip(&req, http),
                            Err(e) => Err(e),
                        },
                    };
                    let done = Instant::now();
                    match result {
                        Ok((outcome, close)) => {
                            stats.total += 1;
                            if intended >= measure_from {
                                stats.ops += 1;
                                stats.hist.saturating_record((done - intended).as_nanos() as u64);
                                stats.outcome(outcome, conn.as_ref().and_then(|c| c.replies.first_error.as_deref()));
                            }
                            if close {
                                conn = None;
                            }
                        }
                        Err(e) => {
                            stats.error(e);
                            conn = None;
                        }
                    }
                }
                Ok(stats)
            })
        })
        .collect();
    let mut all = Stats::new()?;
    for t in threads {
        all.merge(t.join().map_err(|_| "a load thread panicked".to_string())??)?;
    }
    Ok(all)
}

/// Load keys `0..count` with `SET key value EX ttl`.
pub fn preload(common: &Common, count: u64, conns: usize, pipeline: usize) -> Result<(), String> {
    let addr = resolve(&common.addr)?;
    let conns = conns.max(1) as u64;
    let pipeline = pipeline.max(1);
    let (kind, seed, ttl) = (common.kind, common.seed, common.ttl.to_string());
    let values = Arc::new(gen::value_pool(&mut SmallRng::seed_from_u64(seed ^ 0xB0B), 64, common.value_size));
    let rt = runtime(common.threads)?;
    let start = Instant::now();
    let errors = rt.block_on(async move {
        let tasks: Vec<_> = (0..conns)
            .map(|id| {
                let (values, ttl) = (values.clone(), ttl.clone());
                tokio::spawn(async move {
                    let mut conn = Conn::open(addr).await?;
                    let mut rng = SmallRng::seed_from_u64(seed ^ id);
                    let (mut out, mut key) = (Vec::with_capacity(pipeline * 1200), Vec::with_capacity(64));
                    let mut errors = 0u64;
                    let mut first_error = None;
                    let mut i = id;
                    loop {
                        out.clear();
                        let mut n = 0;
                        while n < pipeline && i < count {
                            key.clear();
                            gen::push_key(&mut key, kind, seed, i);
                            let v = values.get(rng.gen_range(0..values.len())).map(Vec::as_slice).unwrap_or_default();
                            proto::encode_command(&mut out, &[b"SET", &key, v, b"EX", ttl.as_bytes()]);
                            i += conns;
                            n += 1;
                        }
                        if n == 0 {
                            break;
                        }
                        conn.stream.write_all(&out).await.map_err(|e| format!("write: {e}"))?;
                        for _ in 0..n {
                            if conn.read_reply(false).await?.0 == Outcome::Error {
                                errors += 1;
                                if first_error.is_none() {
                                    first_error = Some(String::from_utf8_lossy(&key).into_owned());
                                }
                            }
                        }
                    }
                    if let Some(k) = first_error {
                        let text = conn.replies.first_error.as_deref().unwrap_or_default();
                        eprintln!(
                            "staykv-loadgen: preload got {errors} error replies (near key {k}), the first: {text:?}"
                        );
                    }
                    Ok::<u64, String>(errors)
                })
            })
            .collect();
        let mut errors = 0;
        for t in tasks {
            errors += t.await.map_err(|e| e.to_string())??;
        }
        Ok::<u64, String>(errors)
    })?;
    let secs = start.elapsed().as_secs_f64();
    println!("loaded={count} errors={errors} secs={secs:.3} rps={:.1}", count as f64 / secs);
    if errors > 0 {
        return Err(format!("{errors} SETs failed"));
    }
    Ok(())
}

/// Poll `GET key` until it returns a value; print how long since `since_ns` the server
/// first accepted a connection and first served the key.
pub fn wait_ready(addr: &str, key: &str, since_ns: u128, timeout_secs: u64) -> Result<(), String> {
    let addr = resolve(addr)?;
    let elapsed_ms = || {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        now.saturating_sub(since_ns) as f64 / 1e6
    };
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    let mut req = Vec::new();
    proto::encode_command(&mut req, &[b"GET", key.as_bytes()]);
    let mut listen_ms = None;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match SyncConn::open(addr, Duration::from_millis(200)) {
            Ok(mut c) => {
                listen_ms.get_or_insert_with(elapsed_ms);
                let _ = c.stream.set_read_timeout(Some(Duration::from_secs(30)));
                // Stay on this connection while the server answers -LOADING.
                while Instant::now() < deadline {
                    match c.roundtrip(&req, false) {
                        Ok((Outcome::Ok, _)) => {
                            println!("listen_ms={:.1} ready_ms={:.1}", listen_ms.unwrap_or(0.0), elapsed_ms());
                            return Ok(());
                        }
                        Ok((o, _)) => last = format!("{o:?}"),
                        Err(e) => {
                            last = e;
                            break;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(format!("not ready after {timeout_secs} s (last: {last})"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_reply_is_kept_for_the_report() {
        let mut replies = Replies::new();
        let input = b"+OK\r\n-LOADING StayKV is loading\r\n-ERR other\r\n";
        let n = input.len();
        replies.spare().get_mut(..n).unwrap().copy_from_slice(input);
        replies.filled(n).unwrap();
        let outcomes: Vec<_> = std::iter::from_fn(|| replies.next(false).unwrap()).map(|(o, _)| o).collect();
        assert_eq!(outcomes, [Outcome::Ok, Outcome::Error, Outcome::Error]);
        assert_eq!(replies.first_error.as_deref(), Some("-LOADING StayKV is loading"));
    }

    #[test]
    fn connect_sources_are_distinct_loopback_addresses_per_task() {
        let mut seen = std::collections::HashSet::new();
        for task in 0..50 {
            let mut sources = SourceAddrs::for_task(task);
            for _ in 0..1000 {
                let source = sources.next();
                assert!(source.is_loopback(), "{source}");
                assert!(seen.insert(source), "{source} handed out twice");
            }
        }
    }

    #[test]
    fn only_connect_per_request_to_loopback_spreads_sources() {
        let local = SocketAddr::from(([127, 0, 0, 1], 6379));
        let remote = SocketAddr::from(([10, 0, 0, 5], 6379));
        assert!(connect_sources(Mode::Connect, local, 0).is_some());
        assert!(connect_sources(Mode::Resp, local, 0).is_none());
        assert!(connect_sources(Mode::Connect, remote, 0).is_none());
    }
}
