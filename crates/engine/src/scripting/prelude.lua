-- StayKV's scripting prelude. It runs once in each new Lua state, before any user code, and
-- builds Redis 7.0's script environment out of the Rust functions in `api` (scripting/mod.rs):
--
-- * the `redis` table, `cjson`, `bit`, `struct`, `cmsgpack`, Redis's `math.random`;
-- * `pcall` returning an error table's message, as Redis 7 does;
-- * the sandbox: only Redis's globals exist, reading any other global is an error, and no
--   global or library table can be changed ("Attempt to modify a readonly table"). Scripts
--   see the globals through an empty proxy table whose metatable forwards reads; library
--   tables are proxies too. This file's chunk is named "=[staykv]": error positions skip it.
--
-- It returns the pieces the Rust side needs (the environment, runners, load-time switches).

local api = ...
local functions_vm = api.functions_vm

local type, error, tostring, select, pairs, next = type, error, tostring, select, pairs, next
local rawget, rawset, setmetatable, getmetatable = rawget, rawset, setmetatable, getmetatable
local raw_pcall, raw_xpcall, raw_loadstring = pcall, xpcall, loadstring
local sbyte, ssub, sfind, sformat, sgsub = string.byte, string.sub, string.find, string.format, string.gsub
local tconcat = table.concat

local function readonly()
  error('Attempt to modify a readonly table', 2)
end

local function missing(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end

-- proxy -> real table, for the functions that write raw.
local protected = setmetatable({}, {__mode = 'k'})

local function protect(real)
  local proxy = {}
  setmetatable(proxy, {__index = real, __newindex = readonly, __metatable = false})
  protected[proxy] = real
  return proxy
end

local function library(raw)
  local t = {}
  for k, v in pairs(raw) do t[k] = v end
  return t
end

-- The `err` text of redis.error_reply: "-CODE msg" keeps its code, "msg" gets ERR.
local function error_text(s)
  local code, msg
  local space = sfind(s, ' ', 1, true)
  if space then
    code, msg = ssub(s, 2, space - 1), ssub(s, space + 1)
  else
    code, msg = 'ERR', ssub(s, 2)
  end
  msg = sgsub(msg, '^[\r\n]+', '')
  msg = sgsub(msg, '[\r\n]+$', '')
  return code .. ' ' .. msg
end

-- luaO_chunkid, for the message Redis gives when asked to load a binary chunk (its Lua
-- reads every chunk as text).
local function chunkid(source)
  local first = sbyte(source, 1)
  local nul = sfind(source, '\0', 1, true)
  if nul then source = ssub(source, 1, nul - 1) end
  if first == 61 then
    return ssub(source, 2, 60)
  elseif first == 64 then
    local s = ssub(source, 2)
    if #s > 52 then return '...' .. ssub(s, #s - 51) end
    return s
  end
  local len = sfind(source, '[\n\r]')
  len = len and len - 1 or #source
  if len > 43 then len = 43 end
  if len < #source then return '[string "' .. ssub(source, 1, len) .. '..."]' end
  return '[string "' .. source .. '"]'
end

local function binary_chunk(name)
  return nil, chunkid(name) .. ":1: unexpected symbol near 'char(27)'"
end

local function type_of(n, i, v)
  if i > n then return 'no value' end
  return type(v)
end

-- --------------------------------------------------------------------------- libraries

local math_lib = math
math_lib.random = api.random
math_lib.randomseed = api.randomseed

local cjson = library(api.cjson)
cjson.null = api.null
local cjson_proxy = protect(cjson)
cjson.new = function() return cjson_proxy end

local redis = {}
redis.call = api.call
redis.pcall = api.pcall
redis.sha1hex = api.sha1hex
redis.error_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  if ssub(s, 1, 1) ~= '-' then s = '-' .. s end
  return {err = error_text(s)}
end
redis.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {ok = s}
end
redis.log = api.log
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.setresp = api.setresp
redis.set_repl = api.set_repl
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.acl_check_cmd = api.acl_check_cmd
redis.REDIS_VERSION = api.version
redis.REDIS_VERSION_NUM = api.version_num
if not functions_vm then
  redis.breakpoint = function() return false end
  redis.debug = function() end
  redis.replicate_commands = function() return true end
end

-- --------------------------------------------------------------------------- globals

local globals = {}
local env_meta = {__newindex = readonly, __metatable = false}
local env = setmetatable({}, env_meta)
protected[env] = globals

for _, name in pairs({'assert', 'collectgarbage', 'error', 'gcinfo', 'getmetatable', 'ipairs',
                      'rawequal', 'select', 'tonumber', 'tostring', 'type', 'unpack',
                      '_VERSION'}) do
  globals[name] = _G[name]
end

-- Redis 7's pcall: an error table's `err` message is returned instead of the table. Errors
-- raised by StayKV's Rust functions arrive as userdata and are first turned into what the C
-- functions raise (a string or an error table). A killed script's error is raised again
-- (from pcall and xpcall alike): the hook alone, firing mostly inside the protected call,
-- let `while 1 do pcall(f) end` run on after SCRIPT KILL.
local error_value, check_killed = api.error_value, api.check_killed
-- An error as the C functions raise it: StayKV's Rust functions raise userdata.
local function raised(e)
  if type(e) == 'userdata' then return error_value(e) end
  return e
end
local function pcall_result(ok, ...)
  if ok then return true, ... end
  check_killed()
  local e = raised((...))
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then e = m end
  end
  return false, e
end
globals.pcall = function(...) return pcall_result(raw_pcall(...)) end
local function xpcall_result(ok, ...)
  if not ok then check_killed() end
  return ok, ...
end
globals.xpcall = function(f, handler, ...)
  if type(handler) == 'function' then
    -- The handler gets what the C functions raise (a string or an error table), as in
    -- Redis, not the userdata StayKV's Rust functions raise.
    local user = handler
    handler = function(e) return user(raised(e)) end
  end
  return xpcall_result(raw_xpcall(f, handler, ...))
end

globals.pairs = function(...)
  local n, t = select('#', ...), ...
  if type(t) ~= 'table' then
    error(sformat("bad argument #1 to 'pairs' (table expected, got %s)", type_of(n, 1, t)), 2)
  end
  local real = protected[t]
  if real then
    -- Not `next, real`: the script would get the real table and could write it raw, for
    -- every later script (replacing redis.call for the next user's scripts).
    return function(_, k) return next(real, k) end, t, nil
  end
  return next, t, nil
end

globals.next = function(...)
  local n, t, k = select('#', ...), ...
  if type(t) ~= 'table' then
    error(sformat("bad argument #1 to 'next' (table expected, got %s)", type_of(n, 1, t)), 2)
  end
  return next(protected[t] or t, k)
end

globals.rawget = function(...)
  local n, t, k = select('#', ...), ...
  if type(t) ~= 'table' then
    error(sformat("bad argument #1 to 'rawget' (table expected, got %s)", type_of(n, 1, t)), 2)
  end
  if n < 2 then error("bad argument #2 to 'rawget' (value expected)", 2) end
  return rawget(protected[t] or t, k)
end

globals.rawset = function(...)
  local n, t, k = select('#', ...), ...
  if type(t) ~= 'table' then
    error(sformat("bad argument #1 to 'rawset' (table expected, got %s)", type_of(n, 1, t)), 2)
  end
  if n < 2 then error("bad argument #2 to 'rawset' (value expected)", 2) end
  if n < 3 then error("bad argument #3 to 'rawset' (value expected)", 2) end
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return rawset(...)
end

globals.setmetatable = function(...)
  local n, t, mt = select('#', ...), ...
  if type(t) ~= 'table' then
    error(sformat("bad argument #1 to 'setmetatable' (table expected, got %s)", type_of(n, 1, t)), 2)
  end
  if mt ~= nil and type(mt) ~= 'table' then
    error("bad argument #2 to 'setmetatable' (nil or table expected)", 2)
  end
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return setmetatable(t, mt)
end

globals.loadstring = function(s, chunkname)
  if type(s) == 'string' and sbyte(s, 1) == 27 then
    return binary_chunk(chunkname or s)
  end
  return raw_loadstring(s, chunkname)
end

globals.load = function(...)
  local n, f, chunkname = select('#', ...), ...
  if type(f) ~= 'function' then
    error(sformat("bad argument #1 to 'load' (function expected, got %s)", type_of(n, 1, f)), 2)
  end
  local parts = {}
  while true do
    local piece = f()
    if piece == nil or piece == '' then break end
    if type(piece) ~= 'string' then return nil, 'reader function must return a string' end
    parts[#parts + 1] = piece
  end
  local s = tconcat(parts)
  chunkname = chunkname or '=(load)'
  if sbyte(s, 1) == 27 then return binary_chunk(chunkname) end
  return raw_loadstring(s, chunkname)
end

local string_proxy = protect(string)
globals.string = string_proxy
globals.math = protect(math_lib)
-- The table functions write raw (lua_rawseti): given a read-only proxy they would write
-- into it, for every later script to read (`table.insert(redis, x)`).
local table_lib = library(table)
local insert, remove, sort = table.insert, table.remove, table.sort
local function writable(t)
  if protected[t] then error('Attempt to modify a readonly table', 3) end
end
local function results(...) return ... end
table_lib.insert = function(t, ...) writable(t) insert(t, ...) end
table_lib.remove = function(t, ...) writable(t) return results(remove(t, ...)) end
table_lib.sort = function(t, ...) writable(t) sort(t, ...) end
globals.table = protect(table_lib)
-- coroutine.resume hands back what the C functions raise (an error table from redis.call),
-- as in Redis, not the userdata StayKV's Rust functions raise.
local coroutine_lib, raw_resume = library(coroutine), coroutine.resume
local function resume_result(ok, ...)
  if ok then return true, ... end
  return false, raised((...))
end
coroutine_lib.resume = function(co, ...) return resume_result(raw_resume(co, ...)) end
globals.coroutine = protect(coroutine_lib)
globals.cjson = cjson_proxy
globals.bit = protect(library(api.bit))
globals.struct = protect(library(api.struct))
globals.cmsgpack = protect(library(api.cmsgpack))
globals.redis = protect(redis)
globals._G = env
if not functions_vm then
  globals.__redis__err__handler = api.err_handler
end
setmetatable(globals, {__index = missing, __newindex = readonly, __metatable = false})
env_meta.__index = globals
-- What getmetatable(_G) gives, as Redis's readonly metatable: reads, refuses writes.
env_meta.__metatable = protect({__index = missing})

-- Strings index the protected string table; their metatable cannot be changed.
local string_meta = getmetatable('')
string_meta.__index = string_proxy
string_meta.__metatable = protect({__index = string_proxy})

local result = {
  env = env,
  globals = globals,
  run_eval = function(f, handler)
    return raw_xpcall(f, handler)
  end,
  run_function = function(f, handler, keys, args)
    return raw_xpcall(function() return f(keys, args) end, handler)
  end,
  run_load = function(f)
    return raw_pcall(f)
  end,
  gc_step = function(kbytes)
    collectgarbage('step', kbytes)
  end,
}

if functions_vm then
  -- While FUNCTION LOAD runs a library, its globals are only this API (function_lua.c).
  local load_redis = {
    register_function = api.register_function,
    log = redis.log,
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REDIS_VERSION = api.version,
    REDIS_VERSION_NUM = api.version_num,
  }
  setmetatable(load_redis, {__index = missing, __newindex = readonly, __metatable = false})
  local load_api = setmetatable({redis = protect(load_redis)}, {__index = missing, __newindex = readonly, __metatable = false})
  result.begin_load = function() env_meta.__index = load_api end
  result.end_load = function() env_meta.__index = globals end
end

return result
