//! Function libraries (Redis 7.0's `functions.c` and `function_lua.c`): FUNCTION LOAD,
//! DELETE, FLUSH, LIST, STATS and FCALL/FCALL_RO.
//!
//! A library is Lua code with a `#!lua name=<lib>` first line. FUNCTION LOAD runs it once in
//! the functions Lua state with only `redis.register_function`, `redis.log` and the version
//! fields visible; the functions it registers are kept with their flags and description and
//! run by FCALL with `(keys, args)`. Libraries are listed by name.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, MultiValue, Table, Value};
use staykv_resp::Reply;

use super::libutil::LibResult;
use super::{
    convert, lua_error_text, split_keys, value_text, CallRules, Run, ScriptFlags, Scripting, State, LOAD_BUDGET_TICKS,
};
use crate::errors::err;
use crate::exec::Ctx;

/// One registered function (its code is in the functions Lua state's `compiled` table).
pub(crate) struct FunctionDef {
    name: String,
    description: Option<Bytes>,
    pub(super) flags: ScriptFlags,
    /// Its key in the `compiled` table.
    slot: u64,
}

/// Keys of the `compiled` table, never reused (a library that failed to load, or that was
/// replaced, leaves its slots to [`Scripting::prune_compiled`]).
static NEXT_SLOT: AtomicU64 = AtomicU64::new(1);

/// One library.
pub(crate) struct Library {
    code: Bytes,
    functions: Vec<FunctionDef>,
}

impl Library {
    /// Bytes it holds outside the Lua state: itself, its source (kept for FUNCTION DUMP and
    /// LIST WITHCODE) and its functions' entries.
    pub(crate) fn footprint(&self) -> usize {
        std::mem::size_of::<Library>() + self.code.len() + self.functions.len() * std::mem::size_of::<FunctionDef>()
    }
}

/// What FUNCTION LIST reports about a function.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub name: String,
    pub description: Option<Bytes>,
    pub flags: ScriptFlags,
}

/// Functions registered by the library being loaded (app data of the functions state).
#[derive(Default)]
struct LoadCtx {
    functions: Vec<FunctionDef>,
}

const BAD_NAME: &str =
    "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

impl State {
    /// The function FCALL `name` runs: names ignore case, and of two in one library that
    /// differ only in case, the first registered.
    pub(super) fn function(&self, name: &str) -> Option<&FunctionDef> {
        let library = self.libraries.get(self.function_index.get(&index_key(name))?)?;
        library.functions.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// A function's key in the index FCALL looks names up in: function names are ASCII, and
/// FCALL finds them whatever their case, as Redis's function dictionary compares them.
fn index_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// `redis.register_function(name, callback)` or `redis.register_function{...}`.
pub(crate) fn register_function(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    if lua.app_data_ref::<LoadCtx>().is_none() {
        return Ok(Err("redis.register_function can only be called on FUNCTION LOAD command".into()));
    }
    let parsed = match args {
        [single] => named_args(lua, single)?,
        [name, callback] => {
            let Some(name) = super::libutil::to_bytes(lua, Some(name))? else {
                return Ok(Err("first argument to redis.register_function must be a string".into()));
            };
            let Value::Function(callback) = callback else {
                return Ok(Err("second argument to redis.register_function must be a function".into()));
            };
            Ok((name, None, ScriptFlags::default(), callback.clone()))
        }
        _ => Err("wrong number of arguments to redis.register_function".to_string()),
    };
    let (name, description, flags, function) = match parsed {
        Ok(p) => p,
        Err(message) => return Ok(Err(message)),
    };
    if !valid_name(&name) {
        return Ok(Err(BAD_NAME.into()));
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    let Some(mut load) = lua.app_data_mut::<LoadCtx>() else {
        return Ok(Err("redis.register_function can only be called on FUNCTION LOAD command".into()));
    };
    if load.functions.iter().any(|f| f.name == name) {
        return Ok(Err("Function already exists in the library".into()));
    }
    let slot = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
    lua.named_registry_value::<Table>(super::COMPILED)?.raw_set(slot, function)?;
    load.functions.push(FunctionDef { name, description, flags, slot });
    Ok(Ok(MultiValue::new()))
}

type NamedArgs = (Vec<u8>, Option<Bytes>, ScriptFlags, Function);

fn named_args(lua: &Lua, table: &Value) -> mlua::Result<Result<NamedArgs, String>> {
    let Value::Table(table) = table else {
        return Ok(Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into()));
    };
    let (mut name, mut description, mut flags, mut callback) = (None, None, ScriptFlags::default(), None);
    for pair in table.pairs::<Value, Value>() {
        let (key, value) = pair?;
        let Some(key) = super::libutil::to_bytes(lua, Some(&key))? else {
            return Ok(Err("named argument key given to redis.register_function is not a string".into()));
        };
        if key.eq_ignore_ascii_case(b"function_name") {
            match super::libutil::to_bytes(lua, Some(&value))? {
                Some(n) => name = Some(n),
                None => {
                    return Ok(Err("function_name argument given to redis.register_function must be a string".into()))
                }
            }
        } else if key.eq_ignore_ascii_case(b"description") {
            match super::libutil::to_bytes(lua, Some(&value))? {
                Some(d) => description = Some(Bytes::from(d)),
                None => {
                    return Ok(Err("description argument given to redis.register_function must be a string".into()))
                }
            }
        } else if key.eq_ignore_ascii_case(b"callback") {
            match value {
                Value::Function(f) => callback = Some(f),
                _ => return Ok(Err("callback argument given to redis.register_function must be a function".into())),
            }
        } else if key.eq_ignore_ascii_case(b"flags") {
            let Value::Table(list) = value else {
                return Ok(Err(
                    "flags argument to redis.register_function must be a table representing function flags".into(),
                ));
            };
            let mut j = 1;
            loop {
                let item: Value = list.get(j)?;
                if item.is_nil() {
                    break;
                }
                let flag = super::libutil::to_bytes(lua, Some(&item))?.and_then(|f| ScriptFlags::parse(&f, true));
                match flag {
                    Some(f) => flags.0 |= f,
                    None => return Ok(Err("unknown flag given".into())),
                }
                j += 1;
            }
        } else {
            return Ok(Err("unknown argument given to redis.register_function".into()));
        }
    }
    let Some(name) = name else {
        return Ok(Err("redis.register_function must get a function name argument".into()));
    };
    let Some(callback) = callback else {
        return Ok(Err("redis.register_function must get a callback argument".into()));
    };
    Ok(Ok((name, description, flags, callback)))
}

/// The library name and the code after the `#!lua name=...` line.
fn parse_metadata(code: &[u8]) -> Result<(String, &[u8]), Reply> {
    if !code.starts_with(b"#!") {
        return Err(err("ERR Missing library metadata"));
    }
    let Some(end) = code.iter().position(|&c| c == b'\n') else {
        return Err(err("ERR Invalid library metadata"));
    };
    let line = code.get(..end).unwrap_or_default();
    let parts =
        staykv_resp::split_args(line).filter(|p| !p.is_empty()).ok_or_else(|| err("ERR Invalid library metadata"))?;
    let engine = parts.first().and_then(|p| p.get(2..)).unwrap_or_default();
    let mut name: Option<Vec<u8>> = None;
    for part in parts.iter().skip(1) {
        if part.len() >= 5 && part.get(..5).is_some_and(|p| p.eq_ignore_ascii_case(b"name=")) {
            if name.is_some() {
                return Err(err("ERR Invalid metadata value, name argument was given multiple times"));
            }
            name = Some(part.get(5..).unwrap_or_default().to_vec());
            continue;
        }
        return Err(Reply::Error(format!("ERR Invalid metadata value given: {}", String::from_utf8_lossy(part))));
    }
    let Some(name) = name else { return Err(err("ERR Library name was not given")) };
    if !valid_name(&name) {
        return Err(Reply::Error(format!("ERR {BAD_NAME}")));
    }
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(Reply::Error(format!("ERR Engine '{}' not found", String::from_utf8_lossy(engine))));
    }
    Ok((String::from_utf8_lossy(&name).into_owned(), code.get(end..).unwrap_or_default()))
}

/// What FUNCTION RESTORE does with the libraries already loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    /// They stay; a library of the same name fails the restore (the default).
    Append,
    /// They stay, but a library of the same name is replaced.
    Replace,
    /// They all go first.
    Flush,
}

/// Adds libraries to those loaded (Redis's `libraryJoin`): a library of the same name is
/// replaced if `replace`, else refused; a function another library keeps is refused. Nothing
/// changes on a refusal.
fn join(state: &mut State, incoming: BTreeMap<String, Library>, replace: bool) -> Result<(), Reply> {
    if let Some(name) = incoming.keys().find(|name| state.libraries.contains_key(*name)).filter(|_| !replace) {
        return Err(Reply::Error(format!("ERR Library {name} already exists")));
    }
    for f in incoming.values().flat_map(|l| &l.functions) {
        if state.function_index.get(&index_key(&f.name)).is_some_and(|owner| !incoming.contains_key(owner)) {
            return Err(Reply::Error(format!("ERR Function {} already exists", f.name)));
        }
    }
    for (name, library) in incoming {
        if let Some(old) = state.libraries.remove(&name) {
            for f in old.functions {
                state.function_index.remove(&index_key(&f.name));
            }
        }
        for f in &library.functions {
            // As Redis's dictAdd: of two names in one library that differ only in case, the
            // first registered is the one FCALL finds.
            state.function_index.entry(index_key(&f.name)).or_insert_with(|| name.clone());
        }
        state.libraries.insert(name, library);
    }
    Ok(())
}

impl Scripting {
    /// `FUNCTION LOAD [REPLACE]`: returns the library name.
    pub fn function_load(&self, code: &Bytes, replace: bool) -> Result<String, Reply> {
        let (name, body) = parse_metadata(code)?;
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if state.libraries.contains_key(&name) && !replace {
            return Err(Reply::Error(format!("ERR Library '{name}' already exists")));
        }
        let loaded = self
            .compile_library(state, code, body)
            .and_then(|library| join(state, BTreeMap::from([(name.clone(), library)]), true));
        self.prune_compiled(state);
        loaded?;
        self.note_functions_footprint(state);
        Ok(name)
    }

    /// `FUNCTION RESTORE`: the libraries of a FUNCTION DUMP payload (their sources) join
    /// those loaded as `policy` says, or none does.
    pub fn function_restore(&self, codes: &[Vec<u8>], policy: RestorePolicy) -> Result<(), Reply> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let restored = self.restore_libraries(state, codes, policy);
        self.prune_compiled(state);
        restored?;
        self.note_functions_footprint(state);
        Ok(())
    }

    /// [`Scripting::function_restore`] but the cleaning up after it.
    fn restore_libraries(&self, state: &mut State, codes: &[Vec<u8>], policy: RestorePolicy) -> Result<(), Reply> {
        let mut incoming: BTreeMap<String, Library> = BTreeMap::new();
        for code in codes {
            let code = Bytes::copy_from_slice(code);
            let (name, body) = parse_metadata(&code)?;
            if incoming.contains_key(&name) {
                return Err(Reply::Error(format!("ERR Library '{name}' already exists")));
            }
            let library = self.compile_library(state, &code, body)?;
            if let Some(f) = library
                .functions
                .iter()
                .find(|f| incoming.values().flat_map(|l| &l.functions).any(|g| g.name.eq_ignore_ascii_case(&f.name)))
            {
                return Err(Reply::Error(format!("ERR Function {} already exists", f.name)));
            }
            incoming.insert(name, library);
        }
        if policy == RestorePolicy::Flush {
            state.libraries.clear();
            state.function_index.clear();
        }
        join(state, incoming, policy == RestorePolicy::Replace)
    }

    /// Runs a library's code (`body`, after its `#!lua` line) in the functions Lua state and
    /// returns what it registered.
    fn compile_library(&self, state: &mut State, code: &Bytes, body: &[u8]) -> Result<Library, Reply> {
        let vm = self.vm(&mut state.functions, true)?;
        let lua = &vm.lua;
        let compiled = lua
            .load(body)
            .set_name("@user_function")
            .set_mode(ChunkMode::Text)
            .set_environment(vm.env.clone())
            .into_function()
            .map_err(|e| Reply::Error(format!("ERR Error compiling function: {}", lua_error_text(&e))))?;
        let internal =
            |e: mlua::Error| Reply::Error(format!("ERR Error registering functions: {}", lua_error_text(&e)));
        if let Some(begin) = &vm.begin_load {
            begin.call::<()>(()).map_err(internal)?;
        }
        lua.set_app_data(LoadCtx::default());
        vm.load_budget.store(LOAD_BUDGET_TICKS, Ordering::Relaxed);
        let outcome = vm.run_load.call::<MultiValue>(compiled);
        vm.load_budget.store(-1, Ordering::Relaxed);
        let registered = lua.remove_app_data::<LoadCtx>().unwrap_or_default();
        if let Some(end) = &vm.end_load {
            end.call::<()>(()).map_err(internal)?;
        }
        let mut values = outcome.map_err(internal)?.into_iter();
        if !matches!(values.next(), Some(Value::Boolean(true))) {
            let error = super::script_error_value(lua, values.next().unwrap_or(Value::Nil)).map_err(internal)?;
            let message = match &error {
                Value::Table(t) => convert::error_message(lua, t).map_err(internal)?,
                other => {
                    let mut text = b"ERR ".to_vec();
                    text.extend_from_slice(&value_text(lua, other).map_err(internal)?);
                    text
                }
            };
            return Err(Reply::Error(format!(
                "ERR Error registering functions: {}",
                String::from_utf8_lossy(&message)
            )));
        }
        if registered.functions.is_empty() {
            return Err(err("ERR No functions registered"));
        }
        Ok(Library { code: code.clone(), functions: registered.functions })
    }

    /// FUNCTION DELETE.
    pub fn function_delete(&self, name: &[u8]) -> Result<(), Reply> {
        let mut state = self.state.lock();
        let name = String::from_utf8_lossy(name).into_owned();
        let library = state.libraries.remove(&name).ok_or_else(|| err("ERR Library not found"))?;
        for f in library.functions {
            state.function_index.remove(&index_key(&f.name));
        }
        self.prune_compiled(&state);
        self.note_functions_footprint(&state);
        Ok(())
    }

    /// FUNCTION FLUSH: every library goes, and the functions Lua state with them.
    pub fn function_flush(&self) {
        let mut state = self.state.lock();
        state.libraries.clear();
        state.function_index.clear();
        state.functions = None;
        self.note_functions_footprint(&state);
    }

    /// The code of every library, by name (what FUNCTION DUMP and RDB files carry; load it
    /// back with [`Scripting::function_load`]).
    pub fn library_codes(&self) -> Vec<Bytes> {
        self.state.lock().libraries.values().map(|l| l.code.clone()).collect()
    }

    /// Library name and its functions, by name.
    pub fn libraries(&self) -> Vec<(String, Vec<FunctionInfo>)> {
        let state = self.state.lock();
        state
            .libraries
            .iter()
            .map(|(name, lib)| {
                let functions = lib
                    .functions
                    .iter()
                    .map(|f| FunctionInfo { name: f.name.clone(), description: f.description.clone(), flags: f.flags })
                    .collect();
                (name.clone(), functions)
            })
            .collect()
    }

    /// `FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]`.
    pub fn function_list(&self, pattern: Option<&[u8]>, with_code: bool) -> Reply {
        let state = self.state.lock();
        let mut out = Vec::new();
        for (name, lib) in &state.libraries {
            if pattern.is_some_and(|p| !crate::glob::matches(p, name.as_bytes(), true)) {
                continue;
            }
            let mut functions: Vec<&FunctionDef> = lib.functions.iter().collect();
            functions.sort_by(|a, b| a.name.cmp(&b.name));
            let functions = functions
                .into_iter()
                .map(|f| {
                    Reply::Map(vec![
                        (Reply::bulk_str("name"), Reply::bulk_str(&f.name)),
                        (Reply::bulk_str("description"), f.description.clone().map_or(Reply::Nil, Reply::Bulk)),
                        (Reply::bulk_str("flags"), Reply::Set(f.flags.names().map(Reply::Status).collect())),
                    ])
                })
                .collect();
            let mut fields = vec![
                (Reply::bulk_str("library_name"), Reply::bulk_str(name)),
                (Reply::bulk_str("engine"), Reply::bulk_str("LUA")),
                (Reply::bulk_str("functions"), Reply::Array(functions)),
            ];
            if with_code {
                fields.push((Reply::bulk_str("library_code"), Reply::Bulk(lib.code.clone())));
            }
            out.push(Reply::Map(fields));
        }
        Reply::Array(out)
    }

    /// FUNCTION STATS.
    pub fn function_stats(&self, now: u64) -> Reply {
        let running = self.running.lock().clone();
        // Redis answers for functions only: past an EVAL's busy threshold, its BUSY error.
        if self.busy(now).is_some_and(|r| r.is_eval) {
            return super::busy_error(true);
        }
        let running = match running {
            None => Reply::Nil,
            Some(r) => Reply::Map(vec![
                (Reply::bulk_str("name"), Reply::bulk_str(&r.name)),
                (Reply::bulk_str("command"), Reply::bulks(r.argv.iter().cloned())),
                (
                    Reply::bulk_str("duration_ms"),
                    Reply::Int(i64::try_from(now.saturating_sub(r.started_ms)).unwrap_or(0)),
                ),
            ]),
        };
        // Not from `state`: the running function holds it.
        let libraries = self.footprint.libraries.load(Ordering::Relaxed);
        let functions = self.footprint.functions.load(Ordering::Relaxed);
        Reply::Map(vec![
            (Reply::bulk_str("running_script"), running),
            (
                Reply::bulk_str("engines"),
                Reply::Map(vec![(
                    Reply::bulk_str("LUA"),
                    Reply::Map(vec![
                        (Reply::bulk_str("libraries_count"), Reply::Int(libraries as i64)),
                        (Reply::bulk_str("functions_count"), Reply::Int(functions as i64)),
                    ]),
                )]),
            ),
        ])
    }

    /// FCALL and FCALL_RO.
    pub fn fcall(&self, ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> Result<Reply, Reply> {
        let name = String::from_utf8_lossy(args.get(1).map(|a| &a[..]).unwrap_or_default()).into_owned();
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let def = state.function(&name).ok_or_else(|| err("ERR Function not found"))?;
        let (slot, flags) = (def.slot, def.flags);
        let (keys, argv) = split_keys(args, "ERR Bad number of keys provided")?;
        let rules = CallRules::at_start(ctx, Some(flags), read_only)?;
        let vm = self.vm(&mut state.functions, true)?;
        let function: Function = vm.compiled.raw_get(slot).map_err(|_| err("ERR Function not found"))?;
        let run = Run { name, is_eval: false, rules, argv: args.to_vec() };
        Ok(self.run(vm, ctx, &function, keys, argv, run))
    }

    /// Drops from the functions Lua state the code of every function no loaded library
    /// registers: those of libraries replaced, deleted, or that failed to load.
    fn prune_compiled(&self, state: &State) {
        let Some(vm) = &state.functions else { return };
        let live: std::collections::HashSet<u64> =
            state.libraries.values().flat_map(|l| l.functions.iter().map(|f| f.slot)).collect();
        let dead: Vec<u64> = vm
            .compiled
            .pairs::<u64, Value>()
            .filter_map(|pair| pair.ok())
            .map(|(slot, _)| slot)
            .filter(|slot| !live.contains(slot))
            .collect();
        for slot in dead {
            let _ = vm.compiled.raw_set(slot, Value::Nil);
        }
    }
}
