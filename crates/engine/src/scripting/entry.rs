//! The C entry points of `redis.call`, `redis.pcall` and `redis.acl_check_cmd`.
//!
//! mlua hands each string argument of a Rust function over as a reference, taken from a pool
//! of about 8,000 that the whole Lua state shares, and fails the call past it ("out of Lua
//! stack"; the library functions still do, where Redis's take any count). Redis takes 7,999
//! arguments (`redis.call('del', unpack(keys))` with thousands of keys is a common script),
//! so these three read their arguments off the Lua stack themselves, as Redis's
//! `luaArgsToRedisArgv` does, leave them for [`take_argv`], and call the Rust function
//! registered under their name with no arguments.
//!
//! They have to be C functions: a Lua wrapper would do, but `return redis.call(...)` is then
//! a tail call, which replaces the script's frame and with it the line an error names.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_int, CStr};

use bytes::Bytes;
use mlua::{ffi, Function, Lua};

use super::libutil::format_g;

/// A call's arguments as Redis reads them, or the error text that refuses them.
pub(super) type Argv = Result<Vec<Bytes>, &'static str>;

const NO_ARGUMENTS: &str = "Please specify at least one argument for this redis lib call";
const NOT_STRINGS: &str = "Lua redis lib command arguments must be strings or integers";

thread_local! {
    /// The arguments the entry point read, for the function it calls next on this thread.
    static ARGV: RefCell<Option<Argv>> = const { RefCell::new(None) };
}

/// The arguments of the call in progress (taken: a second take finds none).
pub(super) fn take_argv() -> Argv {
    ARGV.with(|argv| argv.borrow_mut().take()).unwrap_or(Err(NO_ARGUMENTS))
}

/// Which of the three entry points.
#[derive(Debug, Clone, Copy)]
pub(super) enum Entry {
    Call,
    Pcall,
    AclCheckCmd,
}

impl Entry {
    /// The registry key of the Rust function the entry point calls.
    fn key(self) -> &'static CStr {
        match self {
            Entry::Call => c"staykv.redis.call",
            Entry::Pcall => c"staykv.redis.pcall",
            Entry::AclCheckCmd => c"staykv.redis.acl_check_cmd",
        }
    }

    fn c_function(self) -> ffi::lua_CFunction {
        match self {
            Entry::Call => call,
            Entry::Pcall => pcall,
            Entry::AclCheckCmd => acl_check_cmd,
        }
    }

    /// The function scripts call, entering `inner` (which finds its arguments with
    /// [`take_argv`]).
    pub(super) fn function(self, lua: &Lua, inner: Function) -> mlua::Result<Function> {
        let key = self.key().to_str().map_err(mlua::Error::external)?;
        lua.set_named_registry_value(key, inner)?;
        // SAFETY: the function is one of the three below, which keep to the Lua C API's rules
        // (see `enter`).
        unsafe { lua.create_c_function(self.c_function()) }
    }
}

unsafe extern "C-unwind" fn call(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this as a C function, with its own state.
    unsafe { enter(state, Entry::Call) }
}

unsafe extern "C-unwind" fn pcall(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as for `call`.
    unsafe { enter(state, Entry::Pcall) }
}

unsafe extern "C-unwind" fn acl_check_cmd(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as for `call`.
    unsafe { enter(state, Entry::AclCheckCmd) }
}

/// Read the arguments, then call the entry's Rust function with none and return what it
/// returns.
///
/// # Safety
/// `state` must be the running Lua state calling a C function. An error raised by the called
/// function unwinds through this frame with `longjmp`, which skips destructors: no value with
/// one may be alive across `lua_call` (the arguments are in `ARGV` by then).
unsafe fn enter(state: *mut ffi::lua_State, entry: Entry) -> c_int {
    // A panic must not unwind into Lua's C frames; reading arguments has none to raise.
    // SAFETY: `state` is the caller's, its arguments on the stack.
    let argv = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { read_argv(state) }))
        .unwrap_or(Err(NOT_STRINGS));
    let _ = ARGV.try_with(|slot| *slot.borrow_mut() = Some(argv));
    // SAFETY: a C function may clear its stack and call a function with the room
    // LUA_MINSTACK gives it; the key names an existing, interned string, so the lookup
    // allocates nothing.
    unsafe {
        ffi::lua_settop(state, 0);
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, entry.key().as_ptr());
        ffi::lua_call(state, 0, ffi::LUA_MULTRET);
        ffi::lua_gettop(state)
    }
}

/// `luaArgsToRedisArgv`: strings as they are, numbers printed with `%.17g`, anything else
/// refused.
///
/// # Safety
/// `state` must be a Lua state inside a C function call.
unsafe fn read_argv(state: *mut ffi::lua_State) -> Argv {
    // SAFETY: reads of the calling function's own stack slots, 1 to its top; a string stays
    // alive while it is on the stack, and is copied at once.
    unsafe {
        let count = ffi::lua_gettop(state);
        if count == 0 {
            return Err(NO_ARGUMENTS);
        }
        let mut argv = Vec::with_capacity(usize::try_from(count).unwrap_or_default());
        for index in 1..=count {
            argv.push(match ffi::lua_type(state, index) {
                ffi::LUA_TNUMBER => Bytes::from(format_g(ffi::lua_tonumber(state, index), 17)),
                ffi::LUA_TSTRING => {
                    let mut len = 0;
                    let data = ffi::lua_tolstring(state, index, &mut len);
                    Bytes::copy_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), len))
                }
                _ => return Err(NOT_STRINGS),
            });
        }
        Ok(argv)
    }
}
