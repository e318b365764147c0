//! Lua scripting as Redis 7.0 has it: EVAL/EVALSHA (`eval.c`), FUNCTION/FCALL
//! (`functions.c`, `function_lua.c`) and the Lua API and conversions (`script_lua.c`).
//!
//! * **The VMs.** A real Lua 5.1 (the `mlua` crate, built from source) runs scripts: one state
//!   for EVAL scripts, one for function libraries, as in Redis. Both are created on first use
//!   and kept behind the engine's scripting mutex. EVAL and FCALL lock every shard
//!   (`ALL_SHARDS`), because scripts may touch keys they did not declare, so a script runs
//!   atomically; lock order is always shards, then this mutex.
//! * **The environment** is built by `prelude.lua` (see there): Redis's globals only, library
//!   tables and globals read-only, `redis.*`, `cjson`, `bit`, `struct`, `cmsgpack`, Redis's
//!   `math.random` (its `rand48` generator, shared by both states and never reseeded except by
//!   `math.randomseed`, as in Redis 7).
//! * **`redis.call`** runs the command through [`Ctx::call`]: the same locks and the same
//!   batch of effects as the script. A script's effects are therefore logged as one atomic
//!   batch, and replay re-runs the effects, not the script: `SPOP`, `TIME` and
//!   `math.random` inside a script replay identically because the effects record outcomes.
//!   `SELECT` inside a script changes only the script's database.
//! * **Errors** have Redis 7.0's texts: runtime errors become
//!   `ERR user_script:1: ... script: <sha>, on @user_script:1.`; command errors raised by
//!   `redis.call` keep their code and get the same suffix.
//! * **Time limit.** A script runs to completion under the shard locks. Past
//!   [`Scripting::busy_threshold_ms`] (Redis's `busy-reply-threshold`, 5 s) other clients get
//!   `BUSY` (see [`Scripting::busy_reply`]) and `SCRIPT KILL`/`FUNCTION KILL` stop a script
//!   that has not written (a count hook checks the kill flag every 10,000 instructions);
//!   one that wrote is `UNKILLABLE`, as in Redis. `FUNCTION LOAD` gives a library 50 million
//!   instructions to register its functions ("FUNCTION LOAD timeout", Redis: 500 ms).
//! * **`redis.log`** lines are kept (the last [`LOG_KEEP`]) for the server to drain with
//!   [`Scripting::drain_log`]; the engine does not log by itself.

mod bit;
pub(crate) mod cjson;
mod convert;
mod entry;
mod functions;
mod libutil;
mod msgpack;
mod structlib;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mlua::chunk::ChunkMode;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use parking_lot::Mutex;
use staykv_resp::{Protocol, Reply};

use crate::command::{flags, CommandSpec, Subcommand};
use crate::errors::err;
use crate::exec::Ctx;
use entry::Entry;
use libutil::ScriptError;

pub use functions::{FunctionInfo, RestorePolicy};

const PRELUDE: &str = include_str!("prelude.lua");
/// Chunk name of the prelude: error positions skip its frames.
const PRELUDE_NAME: &str = "=[staykv]";
/// The registry name of [`Vm::compiled`], where `redis.register_function` files functions.
const COMPILED: &str = "staykv.compiled";
/// How many `redis.log` lines are kept for [`Scripting::drain_log`].
pub const LOG_KEEP: usize = 1000;
/// Instructions between two checks of the kill flag.
const HOOK_EVERY: u32 = 10_000;
/// Hook ticks after which a script counts as running long (some 10 ms of plain Lua), and
/// between two later calls of the long-run callback (some 100 ms).
const LONG_RUN_TICKS: u64 = 200;
const LONG_RUN_EVERY: u64 = 2_000;
/// `redis.call`s counted as one hook tick of work. A call is a few Lua instructions but
/// microseconds of work: counted as instructions alone, a script looping on `redis.call`
/// ran for seconds before it counted as running long, its worker's other clients (PING
/// included) unserved meanwhile.
const CALLS_PER_TICK: u64 = 20;
/// Hook ticks (of [`HOOK_EVERY`] instructions) a library may take to load.
const LOAD_BUDGET_TICKS: i64 = 5_000;
/// Redis's `busy-reply-threshold` default.
pub const DEFAULT_BUSY_THRESHOLD_MS: u64 = 5_000;

const KILLED: &str = "Script killed by user with SCRIPT KILL...";
const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";
const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";

/// Script and function flags (`#!lua flags=...`, `redis.register_function{flags=...}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptFlags(u8);

impl ScriptFlags {
    pub const NO_WRITES: u8 = 1;
    pub const ALLOW_OOM: u8 = 2;
    pub const ALLOW_STALE: u8 = 4;
    pub const NO_CLUSTER: u8 = 8;
    pub const ALLOW_CROSS_SLOT_KEYS: u8 = 16;
    /// In Redis's order (`scripts_flags_def`), as FUNCTION LIST prints them.
    pub const NAMES: [(u8, &'static str); 5] = [
        (Self::NO_WRITES, "no-writes"),
        (Self::ALLOW_OOM, "allow-oom"),
        (Self::ALLOW_STALE, "allow-stale"),
        (Self::NO_CLUSTER, "no-cluster"),
        (Self::ALLOW_CROSS_SLOT_KEYS, "allow-cross-slot-keys"),
    ];

    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    /// The flag named `name` (`nocase` for register_function, exact for shebangs).
    fn parse(name: &[u8], nocase: bool) -> Option<u8> {
        Self::NAMES
            .iter()
            .find(|(_, n)| if nocase { n.as_bytes().eq_ignore_ascii_case(name) } else { n.as_bytes() == name })
            .map(|(f, _)| *f)
    }

    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES.into_iter().filter(move |(f, _)| self.has(*f)).map(|(_, n)| n)
    }
}

/// Redis's `rand48` (`redisLrand48`), the generator behind `math.random`.
#[derive(Debug, Clone, Copy)]
struct Rand48(u64);

impl Rand48 {
    const MASK: u64 = (1 << 48) - 1;

    fn new() -> Rand48 {
        Rand48(0x1234_ABCD_330E)
    }

    fn seed(&mut self, seed: i32) {
        self.0 = ((u64::from(seed as u32) << 16) | 0x330E) & Self::MASK;
    }

    fn next(&mut self) -> i32 {
        self.0 = (self.0.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & Self::MASK;
        (self.0 >> 17) as i32
    }
}

/// State shared with the Rust functions inside the Lua states.
#[derive(Debug)]
struct Shared {
    kill: AtomicBool,
    rng: Mutex<Rand48>,
    log: Mutex<VecDeque<(u8, String)>>,
    /// The running script's work so far, in `redis.call`s: each hook tick counts
    /// [`CALLS_PER_TICK`].
    work: AtomicU64,
    /// The work at which the long-run callback runs next.
    next_long_run: AtomicU64,
    long_run: OnLongRun,
}

/// What the server wants done on the script's thread once a script runs long
/// ([`Scripting::on_long_run`]).
#[derive(Default)]
struct OnLongRun(std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>);

impl std::fmt::Debug for OnLongRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "OnLongRun(set)" } else { "OnLongRun(unset)" })
    }
}

impl Shared {
    /// The error a killed script raises: from the hook, and again each time the script
    /// comes out of a `pcall` (Redis raises it on every line once killed, so that no
    /// `pcall` loop outlives SCRIPT KILL or FUNCTION KILL).
    fn check_killed(&self) -> mlua::Result<()> {
        if self.kill.load(Ordering::Acquire) {
            return Err(mlua::Error::RuntimeError(KILLED.into()));
        }
        Ok(())
    }

    /// One hook tick of the running script: once its work passes [`LONG_RUN_TICKS`] ticks,
    /// and every [`LONG_RUN_EVERY`] after, the server's long-run callback runs.
    fn tick(&self) {
        let work = self.work.fetch_add(CALLS_PER_TICK, Ordering::Relaxed) + CALLS_PER_TICK;
        if work >= self.next_long_run.load(Ordering::Relaxed) {
            self.next_long_run.store(work + LONG_RUN_EVERY * CALLS_PER_TICK, Ordering::Relaxed);
            if let Some(callback) = self.long_run.0.get() {
                callback();
            }
        }
    }
}

/// Per-run settings the Lua-side functions read (`redis.setresp`).
#[derive(Debug, Clone, Copy, Default)]
struct RunFlags {
    resp3: bool,
}

/// A Lua state with Redis's environment.
struct Vm {
    lua: Lua,
    /// What scripts see as `_G` (an empty proxy).
    env: Table,
    /// The real globals table behind it (KEYS and ARGV are set here).
    globals: Table,
    /// `slot.call` / `slot.acl`: the current run's command functions.
    slot: Table,
    handler: Function,
    run_eval: Function,
    run_function: Function,
    run_load: Function,
    begin_load: Option<Function>,
    end_load: Option<Function>,
    /// Hook ticks left for the library being loaded (-1: not loading).
    load_budget: Arc<AtomicI64>,
    /// The compiled scripts (by sha) or functions (by slot), kept on the Lua side: a
    /// `Function` held in Rust takes one of the Lua binding's references, of which fewer than
    /// 8,000 fit (past that none can be made), and an application may well cache more scripts.
    compiled: Table,
    /// Scripts and functions run in this VM, for the GC step every [`GC_STEP_EVERY`].
    runs: AtomicU64,
    /// `collectgarbage('step', kbytes)`.
    gc_step: Function,
}

/// Runs between two Lua GC steps of as many KiB, as Redis's `LUA_GC_CYCLE_PERIOD`: garbage
/// is collected a little at a time rather than left for a full cycle, which would make one run
/// slow, and `used_memory_lua` stays near what the VM holds.
const GC_STEP_EVERY: u64 = 50;

/// A heap past which a run ends with a full collection. A script that built a large table
/// leaves it as garbage, and Lua's collector waits for the heap to double before its next
/// cycle: a 1 GB table would hold 1 GB (and `used_memory`, and maybe evictions) until other
/// scripts allocated as much. A full cycle takes about 0.4 ms per MB (3 million small tables,
/// 307 MB: 132 ms, after a script that ran 0.6 s to build them), so it runs only for heaps no
/// ordinary script reaches.
const COLLECT_PAST_HEAP: usize = 64 << 20;

/// A script in the EVAL cache (its code is in [`Vm::compiled`]).
struct CachedScript {
    /// `None`: no shebang (Redis's "eval compatibility mode").
    flags: Option<ScriptFlags>,
}

/// What is running now, for SCRIPT KILL, FUNCTION STATS and BUSY.
#[derive(Debug, Clone)]
struct Running {
    started_ms: u64,
    is_eval: bool,
    name: String,
    argv: Vec<Bytes>,
    wrote: Arc<AtomicBool>,
}

struct State {
    eval: Option<Vm>,
    functions: Option<Vm>,
    scripts: HashMap<String, CachedScript>,
    libraries: BTreeMap<String, functions::Library>,
    /// Function name → library name.
    function_index: HashMap<String, String>,
}

/// The script caches' sizes, kept beside [`State`] because a running script holds its lock
/// while the commands it calls (MEMORY STATS, INFO) may ask for them.
#[derive(Debug, Default)]
struct Footprint {
    scripts: AtomicUsize,
    script_bytes: AtomicUsize,
    function_bytes: AtomicUsize,
    /// FUNCTION STATS' counts: it answers while a function runs, holding [`State`].
    libraries: AtomicUsize,
    functions: AtomicUsize,
    /// The Lua states' heaps as last read ([`Scripting::memory`]).
    eval_heap: AtomicUsize,
    functions_heap: AtomicUsize,
}

/// What the scripting engine holds, for INFO's memory section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptMemory {
    /// The EVAL Lua state's heap (`used_memory_vm_eval`, alias `used_memory_lua`).
    pub eval_heap: usize,
    /// The functions' Lua state's heap (`used_memory_vm_functions`).
    pub functions_heap: usize,
    /// The script cache's own entries (`used_memory_scripts_eval`).
    pub scripts: usize,
    /// The function registry's own entries (`used_memory_functions`).
    pub functions: usize,
    pub function_count: usize,
    pub library_count: usize,
}

/// The engine's scripting: Lua states, the script cache, function libraries.
pub struct Scripting {
    state: Mutex<State>,
    footprint: Footprint,
    running: Mutex<Option<Running>>,
    /// Whether `running` is set (read on every command without taking the mutex).
    active: AtomicBool,
    shared: Arc<Shared>,
    busy_threshold_ms: AtomicU64,
}

impl std::fmt::Debug for Scripting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripting").field("running", &self.running.lock().as_ref().map(|r| r.name.clone())).finish()
    }
}

impl Default for Scripting {
    fn default() -> Self {
        Scripting {
            state: Mutex::new(State {
                eval: None,
                functions: None,
                scripts: HashMap::new(),
                libraries: BTreeMap::new(),
                function_index: HashMap::new(),
            }),
            footprint: Footprint::default(),
            running: Mutex::new(None),
            active: AtomicBool::new(false),
            shared: Arc::new(Shared {
                kill: AtomicBool::new(false),
                rng: Mutex::new(Rand48::new()),
                log: Mutex::new(VecDeque::new()),
                work: AtomicU64::new(0),
                next_long_run: AtomicU64::new(LONG_RUN_TICKS * CALLS_PER_TICK),
                long_run: OnLongRun::default(),
            }),
            busy_threshold_ms: AtomicU64::new(DEFAULT_BUSY_THRESHOLD_MS),
        }
    }
}

/// How an EVAL-family command was called.
#[derive(Debug, Clone, Copy)]
pub struct EvalMode {
    /// EVALSHA / EVALSHA_RO.
    pub by_sha: bool,
    /// EVAL_RO / EVALSHA_RO.
    pub read_only: bool,
}

/// Marks the end of a script's run when dropped (see [`Scripting::run`]).
struct RunFinished<'a>(&'a Scripting);

impl Drop for RunFinished<'_> {
    fn drop(&mut self) {
        *self.0.running.lock() = None;
        self.0.active.store(false, Ordering::Release);
        self.0.shared.kill.store(false, Ordering::Release);
    }
}

impl Scripting {
    /// Redis's `busy-reply-threshold` (`lua-time-limit`) in ms; 0 disables BUSY and KILL.
    pub fn busy_threshold_ms(&self) -> u64 {
        self.busy_threshold_ms.load(Ordering::Relaxed)
    }

    /// Set by the server's `CONFIG SET busy-reply-threshold` / `lua-time-limit`.
    pub fn set_busy_threshold_ms(&self, ms: u64) {
        self.busy_threshold_ms.store(ms, Ordering::Relaxed);
    }

    /// Sets what runs on a script's own thread once the script has run for long (some 10 ms
    /// of Lua), and again every 100 ms or so while it goes on: the server moves the other work
    /// of that thread elsewhere. Set once; later calls are ignored.
    pub fn on_long_run(&self, callback: Box<dyn Fn() + Send + Sync>) {
        let _ = self.shared.long_run.0.set(callback);
    }

    /// The `redis.log` lines written since the last call, oldest first, with Redis's levels
    /// (0 debug, 1 verbose, 2 notice, 3 warning).
    pub fn drain_log(&self) -> Vec<(u8, String)> {
        self.shared.log.lock().drain(..).collect()
    }

    /// Whether other clients' commands should wait for a running script at `now`: one runs
    /// and has not yet passed the busy threshold (past it they get `BUSY`; with the threshold
    /// at 0 they wait until it ends, as Redis serves no one then). One atomic load when no
    /// script runs.
    pub fn holds_keyspace(&self, now: u64) -> bool {
        if !self.is_running() {
            return false;
        }
        let threshold = self.busy_threshold_ms();
        self.running.lock().as_ref().is_some_and(|r| threshold == 0 || now.saturating_sub(r.started_ms) < threshold)
    }

    /// The flags the script or function `target` of `command` (EVAL, EVALSHA, FCALL or their
    /// `_RO` forms) would run with, declared, as Redis's `evalGetCommandFlags` and
    /// `fcallGetCommandFlags` find them before running it: `None` for a script without a
    /// shebang line, one not known yet or a malformed one, and while a script runs (which
    /// holds the caches).
    pub fn declared_flags(&self, command: &str, target: &[u8]) -> Option<ScriptFlags> {
        let state = self.state.try_lock()?;
        if command.starts_with("fcall") {
            return state.function(&String::from_utf8_lossy(target)).map(|f| f.flags);
        }
        let by_sha = command.starts_with("evalsha");
        match state.scripts.get(&script_sha(target, by_sha)) {
            Some(script) => script.flags,
            None if by_sha => None,
            None => parse_shebang(target).ok()?.0,
        }
    }

    /// Whether a script (or function) runs now: one atomic load.
    pub fn is_running(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Whether a script has run past the busy threshold at `now`: then it holds every shard
    /// until it ends, and the commands it lets through take none. One atomic load when no
    /// script runs.
    pub fn is_busy(&self, now: u64) -> bool {
        self.is_running() && self.past_threshold(now, |_| ()).is_some()
    }

    /// The running script, if it has run for longer than the busy threshold at `now`.
    fn busy(&self, now: u64) -> Option<Running> {
        self.past_threshold(now, Running::clone)
    }

    /// `read` of the running script, if it has run for longer than the busy threshold at `now`.
    fn past_threshold<T>(&self, now: u64, read: impl FnOnce(&Running) -> T) -> Option<T> {
        let threshold = self.busy_threshold_ms();
        let running = self.running.lock();
        let r = running.as_ref()?;
        (threshold > 0 && now.saturating_sub(r.started_ms) >= threshold).then(|| read(r))
    }

    /// The `BUSY` error another client gets while a script has run past the threshold, for
    /// commands other than those it [lets through](Scripting::lets_through). SCRIPT KILL and
    /// FUNCTION KILL are answered here, before the dispatcher would wait for the shard locks
    /// the script holds.
    pub fn busy_reply(&self, spec: &CommandSpec, args: &[Bytes], now: u64) -> Option<Reply> {
        if !self.is_running() {
            return None;
        }
        let running = self.busy(now)?;
        if Self::lets_through(spec, args) {
            return None;
        }
        if matches!(spec.name, "script" | "function") && is_only_subcommand(args, b"kill") {
            return Some(self.kill(spec.name == "script", now).unwrap_or_else(|e| e));
        }
        Some(busy_error(running.is_eval))
    }

    /// The `BUSY` error while a script has run past the threshold at `now`, for the commands
    /// let through that refuse to run beside it (SHUTDOWN without NOSAVE).
    pub fn busy_refusal(&self, now: u64) -> Option<Reply> {
        self.past_threshold(now, |running| busy_error(running.is_eval))
    }

    /// Whether a command runs while a script is busy: those Redis flags `allow_busy` (AUTH,
    /// HELLO, MULTI, WATCH, SHUTDOWN...) and FUNCTION STATS.
    pub fn lets_through(spec: &CommandSpec, args: &[Bytes]) -> bool {
        match spec.name {
            "function" => is_only_subcommand(args, b"stats"),
            _ => spec.has(flags::ALLOW_BUSY),
        }
    }

    /// SCRIPT KILL (`is_eval`) or FUNCTION KILL.
    pub fn kill(&self, is_eval: bool, now: u64) -> Result<Reply, Reply> {
        let Some(running) = self.busy(now) else { return Err(err(NOTBUSY)) };
        if running.wrote.load(Ordering::Acquire) {
            return Err(err(UNKILLABLE));
        }
        if is_eval && !running.is_eval {
            return Err(err(
                "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.",
            ));
        }
        if !is_eval && running.is_eval {
            return Err(err("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."));
        }
        self.shared.kill.store(true, Ordering::Release);
        Ok(Reply::Ok)
    }

    /// What scripting holds in memory. The Lua heaps are read afresh unless a script holds
    /// the state (INFO called from a script): then they are as last read.
    pub fn memory(&self) -> ScriptMemory {
        let footprint = &self.footprint;
        if let Some(state) = self.state.try_lock() {
            let heap = |vm: &Option<Vm>| vm.as_ref().map_or(0, |vm| vm.lua.used_memory());
            footprint.eval_heap.store(heap(&state.eval), Ordering::Relaxed);
            footprint.functions_heap.store(heap(&state.functions), Ordering::Relaxed);
        }
        let (scripts, functions) = self.cache_bytes();
        ScriptMemory {
            eval_heap: footprint.eval_heap.load(Ordering::Relaxed),
            functions_heap: footprint.functions_heap.load(Ordering::Relaxed),
            scripts,
            functions,
            function_count: footprint.functions.load(Ordering::Relaxed),
            library_count: footprint.libraries.load(Ordering::Relaxed),
        }
    }

    /// Scripts in the EVAL cache (INFO's `number_of_cached_scripts`).
    pub fn cached_scripts(&self) -> usize {
        self.footprint.scripts.load(Ordering::Relaxed)
    }

    /// Bytes of the EVAL script cache's and the function registry's own entries (MEMORY
    /// STATS' `lua.caches` and `functions.caches`).
    pub fn cache_bytes(&self) -> (usize, usize) {
        (self.footprint.script_bytes.load(Ordering::Relaxed), self.footprint.function_bytes.load(Ordering::Relaxed))
    }

    /// A script entered the EVAL cache: counted as it comes, since an application may cache
    /// thousands. The compiled code lives in the Lua state's heap, which the allocator counts
    /// in used memory but which cannot be told apart per script, so it is left out: this is
    /// the entry StayKV keeps beside it.
    fn note_script_cached(&self, sha: &str) {
        let entry = std::mem::size_of::<String>() + sha.len() + std::mem::size_of::<CachedScript>();
        self.footprint.scripts.fetch_add(1, Ordering::Relaxed);
        self.footprint.script_bytes.fetch_add(entry, Ordering::Relaxed);
    }

    /// Records the function registry's size after a change (libraries are few: summed again).
    fn note_functions_footprint(&self, state: &State) {
        use std::mem::size_of;
        let libraries: usize =
            state.libraries.iter().map(|(name, library)| size_of::<String>() + name.len() + library.footprint()).sum();
        let index: usize = state.function_index.iter().map(|(f, l)| 2 * size_of::<String>() + f.len() + l.len()).sum();
        self.footprint.function_bytes.store(libraries + index, Ordering::Relaxed);
        self.footprint.libraries.store(state.libraries.len(), Ordering::Relaxed);
        self.footprint.functions.store(state.function_index.len(), Ordering::Relaxed);
    }

    /// SCRIPT EXISTS for one sha.
    pub fn script_exists(&self, sha: &[u8]) -> bool {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.state.lock().scripts.contains_key(&sha)
    }

    /// SCRIPT FLUSH: forget every script and start a new EVAL Lua state.
    pub fn script_flush(&self) {
        let mut state = self.state.lock();
        state.scripts.clear();
        state.eval = None;
        self.footprint.scripts.store(0, Ordering::Relaxed);
        self.footprint.script_bytes.store(0, Ordering::Relaxed);
    }

    /// SCRIPT LOAD: compile and cache; returns the sha.
    pub fn script_load(&self, body: &Bytes) -> Result<String, Reply> {
        let mut state = self.state.lock();
        let sha = sha1_hex(body);
        self.ensure_script(&mut state, &sha, body)?;
        Ok(sha)
    }

    fn vm<'s>(&self, slot: &'s mut Option<Vm>, functions_vm: bool) -> Result<&'s Vm, Reply> {
        if slot.is_none() {
            let vm = new_vm(&self.shared, functions_vm)
                .map_err(|e| Reply::Error(format!("ERR Failed to initialize the Lua interpreter: {e}")))?;
            *slot = Some(vm);
        }
        slot.as_ref().ok_or_else(|| err("ERR Failed to initialize the Lua interpreter"))
    }

    /// Compile `body` into the cache under `sha` unless it is there.
    fn ensure_script(&self, state: &mut State, sha: &str, body: &Bytes) -> Result<(), Reply> {
        if state.scripts.contains_key(sha) {
            return Ok(());
        }
        let (flags, code) = parse_shebang(body)?;
        let vm = self.vm(&mut state.eval, false)?;
        let function = vm
            .lua
            .load(code)
            .set_name("@user_script")
            .set_mode(ChunkMode::Text)
            .set_environment(vm.env.clone())
            .into_function()
            .map_err(|e| Reply::Error(format!("ERR Error compiling script (new function): {}", lua_error_text(&e))))?;
        vm.compiled.raw_set(sha, function).map_err(|e| Reply::Error(format!("ERR {}", lua_error_text(&e))))?;
        state.scripts.insert(sha.to_string(), CachedScript { flags });
        self.note_script_cached(sha);
        Ok(())
    }

    /// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO.
    pub fn eval(&self, ctx: &mut Ctx, args: &[Bytes], mode: EvalMode) -> Result<Reply, Reply> {
        let (keys, argv) = split_keys(args, "ERR value is not an integer or out of range")?;
        let script = args.get(1).cloned().unwrap_or_default();
        if mode.by_sha && script.len() != 40 {
            return Err(noscript());
        }
        let sha = script_sha(&script, mode.by_sha);
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if !state.scripts.contains_key(&sha) {
            if mode.by_sha {
                return Err(noscript());
            }
            self.ensure_script(state, &sha, &script)?;
        }
        let flags = state.scripts.get(&sha).map(|s| s.flags).ok_or_else(noscript)?;
        let rules = CallRules::at_start(ctx, flags, mode.read_only)?;
        let vm = self.vm(&mut state.eval, false)?;
        let function: Function = vm.compiled.raw_get(sha.as_str()).map_err(|_| noscript())?;
        let run = Run { name: sha, is_eval: true, rules, argv: args.to_vec() };
        Ok(self.run(vm, ctx, &function, keys, argv, run))
    }

    /// Run a compiled script or function under `ctx`.
    fn run(&self, vm: &Vm, ctx: &mut Ctx, function: &Function, keys: &[Bytes], argv: &[Bytes], run: Run) -> Reply {
        let wrote = Arc::new(AtomicBool::new(false));
        self.shared.kill.store(false, Ordering::Release);
        self.shared.work.store(0, Ordering::Relaxed);
        self.shared.next_long_run.store(LONG_RUN_TICKS * CALLS_PER_TICK, Ordering::Relaxed);
        *self.running.lock() = Some(Running {
            started_ms: ctx.now,
            is_eval: run.is_eval,
            name: run.name.clone(),
            argv: run.argv.clone(),
            wrote: wrote.clone(),
        });
        self.active.store(true, Ordering::Release);
        // Whatever way the run ends, a panic included: left set, every client would be told
        // BUSY until a restart.
        let _finished = RunFinished(self);
        vm.lua.set_app_data(RunFlags::default());
        let saved_db = ctx.client.db;
        let saved_protocol = ctx.client.protocol;
        let reply = self
            .run_in_lua(vm, ctx, function, keys, argv, &run, &wrote)
            .unwrap_or_else(|e| Reply::Error(format!("ERR Error running script {}, {}", run.name, lua_error_text(&e))));
        ctx.client.db = saved_db;
        ctx.client.protocol = saved_protocol;
        let _ = vm.slot.raw_set("call", Value::Nil);
        let _ = vm.slot.raw_set("acl", Value::Nil);
        if vm.lua.used_memory() > COLLECT_PAST_HEAP {
            let _ = vm.lua.gc_collect();
        } else if vm.runs.fetch_add(1, Ordering::Relaxed) % GC_STEP_EVERY == GC_STEP_EVERY - 1 {
            let _ = vm.gc_step.call::<()>(GC_STEP_EVERY);
        }
        reply
    }

    #[allow(clippy::too_many_arguments)]
    fn run_in_lua(
        &self,
        vm: &Vm,
        ctx: &mut Ctx,
        function: &Function,
        keys: &[Bytes],
        argv: &[Bytes],
        run: &Run,
        wrote: &Arc<AtomicBool>,
    ) -> mlua::Result<Reply> {
        let lua = &vm.lua;
        let keys_table = string_array(lua, keys)?;
        let argv_table = string_array(lua, argv)?;
        if run.is_eval {
            vm.globals.raw_set("KEYS", keys_table.clone())?;
            vm.globals.raw_set("ARGV", argv_table.clone())?;
        }
        let rules = run.rules;
        // Both functions reach the caller's context; they never run inside each other.
        let ctx = std::cell::RefCell::new(ctx);
        let outcome: MultiValue = lua.scope(|scope| {
            let call = scope.create_function(|lua, ()| match ctx.try_borrow_mut() {
                Ok(mut ctx) => {
                    self.shared.work.fetch_add(1, Ordering::Relaxed);
                    redis_call(lua, &mut ctx, entry::take_argv(), rules, wrote)
                }
                Err(_) => Err(mlua::Error::RecursiveMutCallback),
            })?;
            let acl = scope.create_function(|lua, ()| match ctx.try_borrow() {
                Ok(ctx) => acl_check(lua, &ctx, entry::take_argv()),
                Err(_) => Err(mlua::Error::RecursiveMutCallback),
            })?;
            vm.slot.raw_set("call", call)?;
            vm.slot.raw_set("acl", acl)?;
            let outcome = if run.is_eval {
                vm.run_eval.call::<MultiValue>((function.clone(), vm.handler.clone()))
            } else {
                vm.run_function.call::<MultiValue>((function.clone(), vm.handler.clone(), keys_table, argv_table))
            };
            vm.slot.raw_set("call", Value::Nil)?;
            vm.slot.raw_set("acl", Value::Nil)?;
            outcome
        })?;
        let mut values = outcome.into_iter();
        let ok = matches!(values.next(), Some(Value::Boolean(true)));
        let value = values.next().unwrap_or(Value::Nil);
        // An error a called command replied with (raised by redis.call, or returned after
        // redis.pcall) was counted when it arose: the script's reply is not counted again.
        let counted = |t: &Table| matches!(t.raw_get::<Value>("ignore_error_stats_update"), Ok(Value::Boolean(true)));
        ctx.into_inner().error_counted = matches!(&value, Value::Table(t) if counted(t));
        if ok {
            let resp3 = lua.app_data_ref::<RunFlags>().map(|f| f.resp3).unwrap_or(false);
            return convert::lua_to_reply(lua, &value, resp3);
        }
        let Value::Table(error) = value else {
            let text = match &value {
                Value::String(s) => s.to_string_lossy(),
                _ => "execution failure".to_string(),
            };
            let text: String = text.chars().take(100).collect();
            return Ok(Reply::Error(format!("ERR Error running script {}, {text}", run.name)));
        };
        let message = convert::error_message(lua, &error)?;
        let mut text = String::from_utf8_lossy(&message).into_owned();
        let source = convert::field_text(lua, &error.get::<Value>("source")?)?;
        let line = convert::field_text(lua, &error.get::<Value>("line")?)?;
        if let (Some(source), Some(line)) = (source, line) {
            text.push_str(&format!(
                " script: {}, on {}:{}.",
                run.name,
                String::from_utf8_lossy(&source),
                String::from_utf8_lossy(&line)
            ));
        }
        Ok(Reply::Error(text))
    }
}

/// What one run is.
struct Run {
    /// The sha (EVAL) or function name (FCALL), as error texts name it.
    name: String,
    is_eval: bool,
    rules: CallRules,
    argv: Vec<Bytes>,
}

/// What a run's `redis.call`s may do, fixed when it starts.
#[derive(Debug, Clone, Copy)]
struct CallRules {
    /// Writes are refused (`*_RO`, or a script that declared `no-writes`).
    read_only: bool,
    /// The server was past `maxmemory` with nothing to evict when the run started
    /// ([`crate::client::Client::out_of_memory`]) and the script did not declare `allow-oom`:
    /// a command that may add data is refused until the run's first write, after which
    /// stopping halfway would do more harm (Redis's `scriptVerifyOOM`).
    deny_oom: bool,
}

impl CallRules {
    /// Redis's checks before a run (`processCommand` with the script's flags, then
    /// `scriptPrepareForRun`). `declared` is `None` for an EVAL without a shebang line, which
    /// runs as before Redis 7.0: may write, and is refused nothing past `maxmemory` up front.
    /// A script that declared flags is refused past `maxmemory` unless it declared
    /// `allow-oom` or `no-writes`, and one that may write is refused by the `*_RO` commands.
    fn at_start(ctx: &Ctx, declared: Option<ScriptFlags>, ro_command: bool) -> Result<CallRules, Reply> {
        let over_memory = ctx.client.out_of_memory;
        let Some(flags) = declared else { return Ok(CallRules { read_only: ro_command, deny_oom: over_memory }) };
        let no_writes = flags.has(ScriptFlags::NO_WRITES);
        if over_memory && !no_writes && !flags.has(ScriptFlags::ALLOW_OOM) {
            return Err(crate::errors::oom());
        }
        if ro_command && !no_writes {
            return Err(err("ERR Can not execute a script with write flag using *_ro command."));
        }
        Ok(CallRules {
            read_only: ro_command || no_writes,
            deny_oom: over_memory && !flags.has(ScriptFlags::ALLOW_OOM),
        })
    }
}

/// The sha a script is cached under: EVALSHA's argument (any case), or EVAL's body hashed.
fn script_sha(script: &[u8], by_sha: bool) -> String {
    if by_sha {
        String::from_utf8_lossy(script).to_ascii_lowercase()
    } else {
        sha1_hex(script)
    }
}

fn noscript() -> Reply {
    err("NOSCRIPT No matching script. Please use EVAL.")
}

/// The lowercase hex SHA1 of `data`.
pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// `numkeys` at `argv[2]`: the keys and the remaining arguments.
fn split_keys<'a>(args: &'a [Bytes], bad_number: &str) -> Result<(&'a [Bytes], &'a [Bytes]), Reply> {
    let numkeys = args.get(2).and_then(|n| crate::num::parse_i64(n)).ok_or_else(|| err(bad_number))?;
    let available = args.len().saturating_sub(3);
    if numkeys > i64::try_from(available).unwrap_or(i64::MAX) {
        return Err(err("ERR Number of keys can't be greater than number of args"));
    }
    let numkeys = usize::try_from(numkeys).map_err(|_| err("ERR Number of keys can't be negative"))?;
    let rest = args.get(3..).unwrap_or_default();
    Ok(rest.split_at(numkeys.min(rest.len())))
}

/// EVAL's key positions: `numkeys` keys after it.
pub fn eval_keys(args: &[Bytes]) -> Vec<usize> {
    let Some(n) = args.get(2).and_then(|n| crate::num::parse_i64(n)) else { return Vec::new() };
    let n = usize::try_from(n).unwrap_or(0).min(args.len().saturating_sub(3));
    (3..3 + n).collect()
}

/// Parse an EVAL script's shebang line: its flags (`None` without a shebang) and the code
/// Lua compiles (from the end of the shebang line, so line numbers stay right).
fn parse_shebang(body: &[u8]) -> Result<(Option<ScriptFlags>, &[u8]), Reply> {
    if !body.starts_with(b"#!") {
        return Ok((None, body));
    }
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err(err("ERR Invalid script shebang"));
    };
    // Split as Redis splits it (`sdssplitargs`): any white space, `\r` of a CRLF line
    // included, separates; quotes group.
    let line = body.get(..end).unwrap_or_default();
    let parts = staykv_resp::split_args(line).ok_or_else(|| err("ERR Invalid engine in script shebang"))?;
    let engine = parts.first().map(Vec::as_slice).unwrap_or_default();
    if engine != b"#!lua" {
        return Err(Reply::Error(format!(
            "ERR Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(engine)
        )));
    }
    let mut flags = ScriptFlags::default();
    for part in parts.iter().skip(1) {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(Reply::Error(format!("ERR Unknown lua shebang option: {}", String::from_utf8_lossy(part))));
        };
        // `flags=` names none; otherwise every name between commas must be a flag, an empty
        // one too. `allow-key-locking` is Upstash's (sent by @upstash/ratelimit 2.1+):
        // scripts here always run with every shard locked, so it asks for nothing more and
        // is accepted.
        let names = list.split(|&c| c == b',').filter(|_| !list.is_empty());
        for name in names.filter(|n| *n != b"allow-key-locking") {
            let flag = ScriptFlags::parse(name, false).ok_or_else(|| {
                Reply::Error(format!("ERR Unexpected flag in script shebang: {}", String::from_utf8_lossy(name)))
            })?;
            flags.0 |= flag;
        }
    }
    Ok((Some(flags), body.get(end..).unwrap_or_default()))
}

fn string_array(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(t)
}

/// `redis.call`/`redis.pcall` inside a run: returns the converted reply and whether it is an
/// error (which `redis.call` raises).
fn redis_call(
    lua: &Lua,
    ctx: &mut Ctx,
    argv: entry::Argv,
    rules: CallRules,
    wrote: &AtomicBool,
) -> mlua::Result<(Value, bool)> {
    let argv = match argv {
        Ok(argv) => argv,
        Err(text) => return Ok((Value::Table(convert::plain_error_table(lua, text)?), true)),
    };
    let engine = ctx.engine;
    // Counted here, as Redis counts a refused call (in the errors, and in the command's
    // `rejected_calls` once it is known); the script's own error reply, if this ends it, is
    // then not counted again.
    let refuse_with = |error: Reply, stat: Option<usize>| -> mlua::Result<(Value, bool)> {
        let text = error.error_text().unwrap_or_default();
        let t = convert::plain_error_table(lua, &format!("-{text}"))?;
        t.raw_set("ignore_error_stats_update", true)?;
        engine.counters.record_error(&text);
        engine.counters.record_rejected(stat);
        Ok((Value::Table(t), true))
    };
    let refuse = |text: &str, stat: Option<usize>| refuse_with(Reply::Error(format!("ERR {text}")), stat);
    let Some((index, spec)) = argv.first().and_then(|name| ctx.engine.table.lookup(name)) else {
        return refuse("Unknown Redis command called from script", None);
    };
    // Redis looks subcommands up like commands: an unknown one is an unknown command.
    let sub = spec.subcommand(&argv);
    if sub == Subcommand::Unknown {
        return refuse("Unknown Redis command called from script", None);
    }
    let stat = engine.table.stat_index(index, &argv);
    if !spec.arity_ok(argv.len()) || matches!(sub, Subcommand::WrongArity(_)) {
        return refuse("Wrong number of args calling Redis command from script", stat);
    }
    if spec.runs_with(flags::NOSCRIPT, &argv) {
        return refuse("This Redis command is not allowed from script", stat);
    }
    if rules.read_only && (spec.writes(&argv) || spec.has(flags::MAY_REPLICATE)) {
        return refuse("Write commands are not allowed from read-only scripts.", stat);
    }
    if rules.deny_oom && !wrote.load(Ordering::Acquire) && spec.denies_oom(&argv) {
        return refuse_with(crate::errors::oom(), stat);
    }
    if spec.writes(&argv) {
        wrote.store(true, Ordering::Release);
    }
    let resp3 = lua.app_data_ref::<RunFlags>().map(|f| f.resp3).unwrap_or(false);
    let saved = ctx.client.protocol;
    ctx.client.protocol = if resp3 { Protocol::Resp3 } else { Protocol::Resp2 };
    let reply = ctx.call(&argv);
    ctx.client.protocol = saved;
    let failed = reply.is_error();
    Ok((convert::reply_to_lua(lua, &reply, resp3)?, failed))
}

/// `redis.acl_check_cmd`: whether the calling user's ACL allows the command (without
/// logging a refusal, as Redis's `ACLCheckAllUserCommandPerm`).
fn acl_check(lua: &Lua, ctx: &Ctx, argv: entry::Argv) -> mlua::Result<(Value, bool)> {
    let argv = match argv {
        Ok(argv) => argv,
        Err(text) => return Ok((Value::Table(convert::plain_error_table(lua, text)?), true)),
    };
    let engine = ctx.engine;
    // Found as Redis's `lookupCommand` finds it: a container's subcommand must exist too
    // (its arity is not looked at).
    let found = argv.first().and_then(|name| engine.table.lookup(name));
    let Some((index, spec)) = found.filter(|(_, spec)| !matches!(spec.subcommand(&argv), Subcommand::Unknown)) else {
        let error = convert::plain_error_table(lua, "Invalid command passed to redis.acl_check_cmd()")?;
        return Ok((Value::Table(error), true));
    };
    let allowed = ctx.client.acl_exempt
        || engine.acl.user(&ctx.client.user).is_some_and(|user| user.check(index, spec, &argv).is_ok());
    Ok((Value::Boolean(allowed), false))
}

/// The text of an mlua error as Lua would print it.
fn lua_error_text(e: &mlua::Error) -> String {
    if let Some(script_error) = ScriptError::find(e) {
        return script_error.to_string();
    }
    match e {
        mlua::Error::RuntimeError(s) | mlua::Error::MemoryError(s) => s.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        other => other.to_string(),
    }
}

/// The error handler of every run (Redis's `__redis__err__handler`): turns the error into a
/// table `{err=..., source=..., line=...}` naming the innermost line of user code.
fn error_handler(lua: &Lua, error: Value) -> mlua::Result<Table> {
    let location = user_location(lua);
    let table = match script_error_value(lua, error)? {
        Value::Table(t) => t,
        other => {
            let mut text = b"ERR ".to_vec();
            text.extend_from_slice(&value_text(lua, &other)?);
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(text)?)?;
            t
        }
    };
    if let Some((source, line)) = location {
        table.set("source", source)?;
        table.set("line", line)?;
    }
    Ok(table)
}

/// `redis.call` (whose errors are raised), `redis.pcall` and `redis.acl_check_cmd`: the
/// permanent functions scripts hold, calling what the current run put in the slot. Their
/// arguments come through [`entry`].
fn slot_function(lua: &Lua, slot: &Table, which: Entry) -> mlua::Result<Function> {
    let slot = slot.clone();
    let raise = !matches!(which, Entry::Pcall);
    let (name, what) = match which {
        Entry::Call | Entry::Pcall => ("call", "redis.call/pcall"),
        Entry::AclCheckCmd => ("acl", "redis.acl_check_cmd"),
    };
    let inner = lua.create_function(move |lua, ()| {
        let Value::Function(f) = slot.raw_get::<Value>(name)? else {
            entry::take_argv().ok();
            let text = format!("ERR {what} can only be called inside a script invocation");
            return Err(ScriptError::table(text.into_bytes(), false));
        };
        let (value, failed) = f.call::<(Value, bool)>(())?;
        if failed && raise {
            if let Value::Table(t) = &value {
                let ignore = matches!(t.raw_get::<Value>("ignore_error_stats_update")?, Value::Boolean(true));
                return Err(ScriptError::table(convert::error_message(lua, t)?, ignore));
            }
        }
        Ok(value)
    })?;
    which.function(lua, inner)
}

/// An error value as the C implementation would have raised it: errors raised by StayKV's
/// Rust functions (userdata) become their message string or error table; others pass.
fn script_error_value(lua: &Lua, value: Value) -> mlua::Result<Value> {
    let Value::Error(e) = &value else { return Ok(value) };
    Ok(match ScriptError::find(e) {
        Some(ScriptError::Table { err, ignore_stats }) => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(err)?)?;
            if *ignore_stats {
                t.raw_set("ignore_error_stats_update", true)?;
            }
            Value::Table(t)
        }
        Some(ScriptError::Message(m)) => Value::String(lua.create_string(m)?),
        None => Value::String(lua.create_string(lua_error_text(e))?),
    })
}

/// `tostring` of an error value.
fn value_text(lua: &Lua, value: &Value) -> mlua::Result<Vec<u8>> {
    Ok(match value {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(_) | Value::Number(_) => libutil::to_bytes(lua, Some(value))?.unwrap_or_default(),
        Value::Nil => b"nil".to_vec(),
        Value::Boolean(b) => b.to_string().into_bytes(),
        Value::Error(e) => lua_error_text(e).into_bytes(),
        other => other.to_string().unwrap_or_default().into_bytes(),
    })
}

/// The innermost frame of user code: its source and current line.
fn user_location(lua: &Lua) -> Option<(String, i64)> {
    for level in 1..256 {
        let frame = lua.inspect_stack(level, |debug| {
            let source = debug.source();
            let line = debug.current_line().map_or(-1, |l| i64::try_from(l).unwrap_or(-1));
            (source.what, source.source.map(|s| s.into_owned()), line)
        })?;
        match frame {
            // A tail call's lost caller: StayKV's pcall wrapper returns through one.
            ("C" | "tail", _, _) => continue,
            (_, Some(source), _) if source.starts_with(PRELUDE_NAME) => continue,
            (_, Some(source), line) => return Some((source, line)),
            _ => continue,
        }
    }
    None
}

/// A new Lua state with Redis's environment.
fn new_vm(shared: &Arc<Shared>, functions_vm: bool) -> mlua::Result<Vm> {
    let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::new())?;
    let compiled = lua.create_table()?;
    lua.set_named_registry_value(COMPILED, &compiled)?;
    let api = lua.create_table()?;
    api.raw_set("functions_vm", functions_vm)?;
    api.raw_set("cjson", cjson::table(&lua)?)?;
    api.raw_set("null", Value::NULL)?;
    api.raw_set("bit", bit::table(&lua)?)?;
    api.raw_set("struct", structlib::table(&lua)?)?;
    api.raw_set("cmsgpack", msgpack::table(&lua)?)?;
    let version = crate::cmd::connection::REDIS_COMPAT_VERSION;
    api.raw_set("version", version)?;
    api.raw_set("version_num", version_number(version))?;
    let slot = lua.create_table()?;
    api.raw_set("slot", slot.clone())?;
    let handler = lua.create_function(error_handler)?;
    api.raw_set("err_handler", handler.clone())?;

    let rng = shared.clone();
    api.raw_set("random", libutil::lib_function_closure(&lua, move |lua, args| math_random(lua, args, &rng))?)?;
    let rng = shared.clone();
    api.raw_set(
        "randomseed",
        libutil::lib_function_closure(&lua, move |lua, args| {
            let seed = match libutil::check_number(lua, args, 1, "randomseed")? {
                Ok(n) => libutil::c_cast_i32(n),
                Err(message) => return Ok(Err(message)),
            };
            rng.rng.lock().seed(seed);
            Ok(Ok(MultiValue::new()))
        })?,
    )?;
    api.raw_set("sha1hex", libutil::table_error_function(&lua, sha1hex)?)?;
    let log = shared.clone();
    api.raw_set(
        "log",
        lua.create_function(move |lua, args: MultiValue| match redis_log(lua, &args.into_vec(), &log)? {
            Ok(values) => Ok(values),
            Err(message) => Err(ScriptError::table(convert::error_text(message.as_bytes()), false)),
        })?,
    )?;
    api.raw_set("setresp", libutil::table_error_function(&lua, setresp)?)?;
    api.raw_set("set_repl", libutil::table_error_function(&lua, set_repl)?)?;
    api.raw_set("register_function", libutil::table_error_function(&lua, functions::register_function)?)?;
    for (name, which) in [("call", Entry::Call), ("pcall", Entry::Pcall), ("acl_check_cmd", Entry::AclCheckCmd)] {
        api.raw_set(name, slot_function(&lua, &slot, which)?)?;
    }
    api.raw_set("error_value", lua.create_function(|lua, value: Value| script_error_value(lua, value))?)?;
    let killable = shared.clone();
    api.raw_set("check_killed", lua.create_function(move |_, ()| killable.check_killed())?)?;

    let result: Table = lua.load(PRELUDE).set_name(PRELUDE_NAME).set_mode(ChunkMode::Text).call(api)?;
    let env: Table = result.get("env")?;
    lua.set_globals(env.clone())?;

    let hooked = shared.clone();
    let load_budget = Arc::new(AtomicI64::new(-1));
    let budget = load_budget.clone();
    // Global: a hook set on the main thread only is not run in coroutines, where a loop could
    // then never be killed (`coroutine.wrap(function() while true do end end)()`).
    lua.set_global_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |_lua, _debug| {
        hooked.check_killed()?;
        hooked.tick();
        match budget.load(Ordering::Relaxed) {
            0 => return Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into())),
            b if b > 0 => {
                budget.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        Ok(VmState::Continue)
    })?;

    Ok(Vm {
        env,
        globals: result.get("globals")?,
        slot,
        handler,
        run_eval: result.get("run_eval")?,
        run_function: result.get("run_function")?,
        run_load: result.get("run_load")?,
        begin_load: result.get("begin_load")?,
        end_load: result.get("end_load")?,
        load_budget,
        compiled,
        runs: AtomicU64::new(0),
        gc_step: result.get("gc_step")?,
        lua,
    })
}

/// `REDIS_VERSION_NUM`: 0x00MMmmpp.
fn version_number(version: &str) -> i64 {
    let mut parts = version.split('.').map(|p| p.parse::<i64>().unwrap_or(0));
    let (major, minor, patch) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major << 16) | (minor << 8) | patch
}

/// Redis's `math.random`: rand48 scaled as Lua's own `math.random` scales `rand()`.
fn math_random(lua: &Lua, args: &[Value], shared: &Shared) -> mlua::Result<libutil::LibResult> {
    const MAX: f64 = i32::MAX as f64;
    let r = f64::from(shared.rng.lock().next() % i32::MAX) / MAX;
    let value = match args.len() {
        0 => r,
        1 => {
            let u = match libutil::check_number(lua, args, 1, "random")? {
                Ok(n) => libutil::c_cast_i32(n),
                Err(message) => return Ok(Err(message)),
            };
            if u < 1 {
                return Ok(Err(libutil::arg_error(1, "random", "interval is empty")));
            }
            (r * f64::from(u)).floor() + 1.0
        }
        2 => {
            let l = match libutil::check_number(lua, args, 1, "random")? {
                Ok(n) => libutil::c_cast_i32(n),
                Err(message) => return Ok(Err(message)),
            };
            let u = match libutil::check_number(lua, args, 2, "random")? {
                Ok(n) => libutil::c_cast_i32(n),
                Err(message) => return Ok(Err(message)),
            };
            if l > u {
                return Ok(Err(libutil::arg_error(2, "random", "interval is empty")));
            }
            (r * (f64::from(u) - f64::from(l) + 1.0)).floor() + f64::from(l)
        }
        _ => return Ok(Err("wrong number of arguments".into())),
    };
    Ok(Ok([Value::Number(value)].into_iter().collect()))
}

fn sha1hex(lua: &Lua, args: &[Value]) -> mlua::Result<libutil::LibResult> {
    if args.len() != 1 {
        return Ok(Err("wrong number of arguments".into()));
    }
    let data = libutil::to_bytes(lua, args.first())?.unwrap_or_default();
    Ok(Ok([Value::String(lua.create_string(sha1_hex(&data))?)].into_iter().collect()))
}

fn redis_log(lua: &Lua, args: &[Value], shared: &Shared) -> mlua::Result<libutil::LibResult> {
    if args.len() < 2 {
        return Ok(Err("redis.log() requires two arguments or more.".into()));
    }
    let Some(level) = libutil::to_number(lua, args.first())? else {
        return Ok(Err("First argument must be a number (log level).".into()));
    };
    let level = libutil::c_cast_i32(level);
    if !(0..=3).contains(&level) {
        return Ok(Err("Invalid debug level.".into()));
    }
    let mut line = Vec::new();
    for (i, value) in args.iter().enumerate().skip(1) {
        if let Some(text) = libutil::to_bytes(lua, Some(value))? {
            if i != 1 {
                line.push(b' ');
            }
            line.extend_from_slice(&text);
        }
    }
    let mut log = shared.log.lock();
    if log.len() >= LOG_KEEP {
        log.pop_front();
    }
    log.push_back((level as u8, String::from_utf8_lossy(&line).into_owned()));
    Ok(Ok(MultiValue::new()))
}

fn setresp(lua: &Lua, args: &[Value]) -> mlua::Result<libutil::LibResult> {
    if args.len() != 1 {
        return Ok(Err("redis.setresp() requires one argument.".into()));
    }
    let resp = libutil::to_number(lua, args.first())?.map_or(0, libutil::c_cast_i32);
    if resp != 2 && resp != 3 {
        return Ok(Err("RESP version must be 2 or 3.".into()));
    }
    lua.set_app_data(RunFlags { resp3: resp == 3 });
    Ok(Ok(MultiValue::new()))
}

fn set_repl(lua: &Lua, args: &[Value]) -> mlua::Result<libutil::LibResult> {
    if args.len() != 1 {
        return Ok(Err("redis.set_repl() requires two arguments.".into()));
    }
    let flags = libutil::to_number(lua, args.first())?.map_or(0, libutil::c_cast_i32);
    if flags & !3 != 0 {
        return Ok(Err("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.".into()));
    }
    Ok(Ok(MultiValue::new()))
}

/// Redis's `BUSY` error while a script (`is_eval`) or a function runs past the threshold.
pub(crate) fn busy_error(is_eval: bool) -> Reply {
    let which = if is_eval { "SCRIPT" } else { "FUNCTION" };
    Reply::Error(format!("BUSY Redis is busy running a script. You can only call {which} KILL or SHUTDOWN NOSAVE."))
}

/// Whether `args` is a command with `sub` as its one argument (`FUNCTION STATS`).
fn is_only_subcommand(args: &[Bytes], sub: &[u8]) -> bool {
    matches!(args, [_, given] if given.eq_ignore_ascii_case(sub))
}

#[cfg(test)]
mod tests;
