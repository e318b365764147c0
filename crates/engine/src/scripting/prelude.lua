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

local type, error, tostring, select, pairs = type, error, tostring, select, pairs
local rawget, rawset, setmetatable, getmetatable = rawget, rawset, setmetatable, getmetatable
local raw_pcall, raw_xpcall, raw_loadstring = pcall, xpcall, loadstring
local sbyte, ssub, sfind, sformat, sgsub = string.byte, string.sub, string.find, string.format, string.gsub
local tconcat = table.concat

-- Library functions written in Rust return `true, results...` or `false, message`. The
-- message is raised like luaL_error raises it: at the line of the wrapper's caller (level 3:
-- `finish` replaced the wrapper through a tail call), or without a position when it starts
-- with a NUL byte (errors the Lua VM raises inside C functions).
local function finish(ok, ...)
  if ok then return ... end
  local message = ...
  if sbyte(message, 1) == 0 then error(ssub(message, 2), 0) end
  error(message, 3)
end
local function checked(f)
  return function(...) return finish(f(...)) end
end

-- ... or raised as a Redis error table, as luaPushError + luaError do.
local function finish_table(ok, ...)
  if ok then return ... end
  error({err = 'ERR ' .. (...)})
end
local function checked_table(f)
  return function(...) return finish_table(f(...)) end
end

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
  for k, v in pairs(raw) do
    if type(v) == 'function' then t[k] = checked(v) else t[k] = v end
  end
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
math_lib.random = checked(api.random)
math_lib.randomseed = checked(api.randomseed)

local cjson = library(api.cjson)
cjson.null = api.null
local cjson_proxy = protect(cjson)
cjson.new = function() return cjson_proxy end

local slot = api.slot

local function no_context(name)
  error({err = 'ERR ' .. name .. ' can only be called inside a script invocation'})
end

local redis = {}
redis.call = function(...)
  local call = slot.call
  if call == nil then no_context('redis.call/pcall') end
  local reply, failed = call(...)
  if failed then error(reply) end
  return reply
end
redis.pcall = function(...)
  local call = slot.call
  if call == nil then no_context('redis.call/pcall') end
  local reply = call(...)
  return reply
end
redis.sha1hex = checked_table(api.sha1hex)
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
redis.log = checked_table(api.log)
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.setresp = checked_table(api.setresp)
redis.set_repl = checked_table(api.set_repl)
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.acl_check_cmd = function(...)
  local acl = slot.acl
  if acl == nil then no_context('redis.acl_check_cmd') end
  local reply, failed = acl(...)
  if failed then error(reply) end
  return reply
end
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
                      'next', 'pairs', 'rawequal', 'rawget', 'select', 'tonumber', 'tostring',
                      'type', 'unpack', 'xpcall', '_VERSION'}) do
  globals[name] = _G[name]
end

-- Redis 7's pcall: an error table's `err` message is returned instead of the table.
local function pcall_result(ok, ...)
  if ok then return true, ... end
  local e = ...
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then e = m end
  end
  return false, e
end
globals.pcall = function(...) return pcall_result(raw_pcall(...)) end

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
globals.table = protect(table)
globals.coroutine = protect(coroutine)
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
}

if functions_vm then
  -- While FUNCTION LOAD runs a library, its globals are only this API (function_lua.c).
  local load_redis = {
    register_function = checked_table(api.register_function),
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
