//! The command table: one entry per command, as in Redis's `commands.def`.
//!
//! An entry carries the name, arity (negative = at least), flags, key positions and the one
//! function that runs it. The table decides which shards a command locks, whether it may
//! run before `AUTH`, whether it is a write (refused when the log cannot be written), and
//! what `COMMAND INFO` answers. Every front end dispatches through it.

use std::fmt;

use bytes::Bytes;
use hashbrown::HashMap;
use staykv_resp::Reply;

use crate::exec::Ctx;
use crate::key_spec::{self, key, FoundKey, KeySpec, LegacyRange};

/// A command's result; the error side is an error reply, so handlers can use `?`.
pub type CmdResult = Result<Reply, Reply>;
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> CmdResult;
/// For commands whose keys are found by reading arguments (`numkeys` forms).
pub type KeyFinder = fn(&[Bytes]) -> Vec<usize>;
/// Keys with their flags, for commands whose key specs cannot find them all.
pub type FlaggedKeyFinder = fn(&[Bytes]) -> Vec<FoundKey>;

/// Command tips that several entries share, named for what they mean to a client.
pub mod tips {
    /// Each shard reports on itself, and the client merges the reports its own way (INFO,
    /// MEMORY STATS, FUNCTION STATS).
    pub const SHARD_REPORT: &[&str] =
        &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"];
    /// Each node reports on itself, merged the client's own way (LATENCY's reports).
    pub const NODE_REPORT: &[&str] =
        &["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"];
}

/// Command flags, named as Redis names them in `COMMAND INFO`.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const LOADING: u32 = 1 << 6;
    pub const STALE: u32 = 1 << 7;
    pub const FAST: u32 = 1 << 8;
    pub const NO_AUTH: u32 = 1 << 9;
    pub const NO_MULTI: u32 = 1 << 10;
    /// Reads or writes the whole keyspace (KEYS, SCAN, FLUSHALL...): lock every shard.
    pub const ALL_SHARDS: u32 = 1 << 11;
    /// Redis's `movablekeys`, which no entry sets: `COMMAND INFO` derives it from the key
    /// specs, as Redis does.
    pub const MOVABLE_KEYS: u32 = 1 << 12;
    /// MULTI, EXEC, DISCARD, WATCH, QUIT, RESET: run even while a transaction is queuing.
    pub const TRANSACTION_CONTROL: u32 = 1 << 13;
    /// Allowed for a RESP2 client that has subscriptions (SUBSCRIBE, PING, QUIT, RESET...).
    pub const SUBSCRIBED_OK: u32 = 1 << 14;
    /// Runs while a script is busy (past `busy-reply-threshold`) instead of getting `BUSY`,
    /// then without shards, which the script holds: such a command reads no key it needs.
    pub const ALLOW_BUSY: u32 = 1 << 15;
    /// Not entered in the slow log (EXEC: Redis logs the commands it runs instead).
    pub const SKIP_SLOWLOG: u32 = 1 << 16;
    /// Runs a Lua script (EVAL, FCALL and their variants): its own keys are not what it reads,
    /// the script's calls are (client-side caching remembers those). Not a Redis flag.
    pub const RUNS_SCRIPT: u32 = 1 << 17;
    /// Redis's `may-replicate`: no write, but something that goes to the log or replicas
    /// (PUBLISH, PFCOUNT's cache update, a script without flags), so CLIENT PAUSE WRITE holds
    /// it back and a read-only script may not call it. Redis 7.0's COMMAND INFO does not show it.
    pub const MAY_REPLICATE: u32 = 1 << 18;

    /// Redis's `blocking`: may wait for data (BLPOP, XREAD, WAIT...); ACL category `@blocking`.
    pub const BLOCKING: u32 = 1 << 19;
    /// Redis's `skip_monitor`: MONITOR does not show the command itself (scripts: their calls).
    pub const SKIP_MONITOR: u32 = 1 << 20;
    /// Redis's `no_mandatory_keys`: may be given no key at all (EVAL with 0 keys), so
    /// COMMAND GETKEYS answers an empty list rather than an error.
    pub const NO_MANDATORY_KEYS: u32 = 1 << 21;
    /// Redis's `no_async_loading`: refused while a replica loads its data in the background.
    /// StayKV loads before it serves, so this only tells clients what Redis would say.
    pub const NO_ASYNC_LOADING: u32 = 1 << 22;
    /// Redis's `protected`: refused under its defaults (`enable-debug-command no`,
    /// `enable-module-command no`) right after the arity check, before AUTH and before
    /// queuing. Left out of COMMAND INFO (not in `NAMES`), as Redis leaves it out.
    pub const PROTECTED: u32 = 1 << 23;

    /// In Redis's order (`addReplyFlagsForCommand`).
    pub(crate) const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// A command as `CLIENT LIST` names it (`cmd=`): `get`, or `client|info` for a container's
/// subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandName {
    pub name: &'static str,
    pub sub: Option<&'static str>,
}

impl fmt::Display for CommandName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sub {
            Some(sub) => write!(f, "{}|{sub}", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// One command.
#[derive(Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    /// The key positions shards are locked by (Redis's legacy range, derived from the key
    /// specs): first, last (negative: from the end), step.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// ACL category of the family (`string`, `keyspace`, `connection`, `server`...).
    pub group: &'static str,
    /// ACL categories Redis names beyond the family and those its flags imply (SORT is
    /// `@set`, `@sortedset` and `@dangerous` too).
    pub categories: &'static [&'static str],
    pub handler: Handler,
    pub key_finder: Option<KeyFinder>,
    /// A container's subcommands, as Redis 7.0's table has them: their arities are checked
    /// before the handler runs ([`CommandSpec::subcommand_refusal`]), their flags add to the
    /// container's (FUNCTION LOAD writes, FUNCTION LIST does not).
    pub subcommands: &'static [SubcommandSpec],
    /// Where the keys are and what the command does to them, as Redis 7.0 declares it
    /// (`COMMAND INFO`, `COMMAND GETKEYSANDFLAGS`, ACL key patterns): see [`key_spec`].
    pub key_specs: &'static [KeySpec],
    /// For the commands whose key specs cannot say (SORT's STORE, MIGRATE's KEYS) or whose
    /// flags depend on the arguments (SET ... GET): the keys with their flags, as Redis's
    /// `getkeys_proc` gives them.
    pub flagged_keys: Option<FlaggedKeyFinder>,
    /// Redis's command tips (`nondeterministic_output`, `request_policy:all_shards`...), for
    /// clients that route by them.
    pub tips: &'static [&'static str],
}

/// One subcommand of a container (CONFIG GET, CLIENT KILL), as Redis 7.0's table has it.
#[derive(Debug)]
pub struct SubcommandSpec {
    pub name: &'static str,
    /// Redis's arity rule, counting the container's name and the subcommand's.
    pub arity: i32,
    /// Redis's flags for it; the write, deny-oom and noscript checks add them to the
    /// container's own.
    pub flags: u32,
    /// ACL categories beyond those its flags imply (`connection` for CLIENT's).
    pub categories: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    pub tips: &'static [&'static str],
}

impl SubcommandSpec {
    pub const fn new(name: &'static str, arity: i32, flags: u32) -> Self {
        SubcommandSpec { name, arity, flags, categories: &[], key_specs: &[], tips: &[] }
    }

    pub const fn categories(mut self, categories: &'static [&'static str]) -> Self {
        self.categories = categories;
        self
    }

    pub const fn key_specs(mut self, specs: &'static [KeySpec]) -> Self {
        self.key_specs = specs;
        self
    }

    pub const fn tips(mut self, tips: &'static [&'static str]) -> Self {
        self.tips = tips;
        self
    }

    /// Its `COMMAND INFO` entry (`container|name`), as Redis shows a subcommand.
    pub fn info(&self, container: &str) -> Reply {
        let categories = crate::acl::subcommand_categories(self);
        let entry = InfoEntry { arity: self.arity, flags: self.flags, key_specs: self.key_specs, tips: self.tips };
        entry.reply(format!("{container}|{}", self.name), categories, Vec::new())
    }
}

/// The names of the flags `has` holds, in the table's order, as the RESP set Redis sends
/// (command flags, key flags).
pub(crate) fn flag_set<F: Copy>(names: &[(F, &'static str)], has: impl Fn(F) -> bool) -> Reply {
    Reply::Set(names.iter().filter(|(flag, _)| has(*flag)).map(|(_, name)| Reply::Status(name)).collect())
}

/// What a `COMMAND INFO` entry shows of a command or subcommand besides its name, categories
/// and subcommands.
struct InfoEntry {
    arity: i32,
    flags: u32,
    key_specs: &'static [KeySpec],
    tips: &'static [&'static str],
}

impl InfoEntry {
    /// The entry in Redis 7.0's shape. The key range and `movablekeys` are derived from the
    /// key specs, as Redis derives them.
    fn reply(&self, name: String, categories: Vec<&'static str>, subcommands: Vec<Reply>) -> Reply {
        let legacy = LegacyRange::of(self.key_specs);
        let shown = self.flags | if legacy.movable { flags::MOVABLE_KEYS } else { 0 };
        let categories = categories.into_iter().map(|category| Reply::StatusOwned(format!("@{category}")));
        Reply::Array(vec![
            Reply::Bulk(Bytes::from(name)),
            Reply::Int(i64::from(self.arity)),
            flag_set(flags::NAMES, |bit| shown & bit != 0),
            Reply::Int(i64::from(legacy.first)),
            Reply::Int(i64::from(legacy.last)),
            Reply::Int(i64::from(legacy.step)),
            Reply::Set(categories.collect()),
            Reply::Set(self.tips.iter().map(|tip| Reply::bulk_str(tip)).collect()),
            Reply::Set(self.key_specs.iter().map(KeySpec::reply).collect()),
            // Redis 7.0 sends an empty set for none, but an array of the subcommands' entries.
            if subcommands.is_empty() { Reply::Set(subcommands) } else { Reply::Array(subcommands) },
        ])
    }
}

impl CommandSpec {
    /// An entry with no keys; chain the builders below for the rest.
    pub const fn new(name: &'static str, arity: i32, flags: u32, group: &'static str, handler: Handler) -> Self {
        CommandSpec {
            name,
            arity,
            flags,
            first_key: 0,
            last_key: 0,
            step: 0,
            group,
            handler,
            key_finder: None,
            categories: &[],
            subcommands: &[],
            key_specs: &[],
            flagged_keys: None,
            tips: &[],
        }
    }

    /// The key positions shards are locked by, as Redis derives its legacy range.
    const fn locking(mut self, specs: &[KeySpec]) -> Self {
        let range = LegacyRange::of(specs);
        self.first_key = range.first;
        self.last_key = range.last;
        self.step = range.step;
        self
    }

    pub const fn categories(mut self, categories: &'static [&'static str]) -> Self {
        self.categories = categories;
        self
    }

    /// A container's subcommands. It locks where they have their key (Redis's all have it
    /// at argument 2: OBJECT ENCODING key, XGROUP CREATE key...), the first that has one says.
    pub const fn subcommands(mut self, subcommands: &'static [SubcommandSpec]) -> Self {
        self.subcommands = subcommands;
        let mut rest = subcommands;
        while let [sub, tail @ ..] = rest {
            rest = tail;
            if !sub.key_specs.is_empty() {
                return self.locking(sub.key_specs);
            }
        }
        self
    }

    /// The key specs, and the key positions they imply (commands whose keys move also have a
    /// key finder, which locking asks instead).
    pub const fn key_specs(mut self, specs: &'static [KeySpec]) -> Self {
        self.key_specs = specs;
        self.locking(specs)
    }

    pub const fn flagged_keys(mut self, finder: FlaggedKeyFinder) -> Self {
        self.flagged_keys = Some(finder);
        self
    }

    pub const fn tips(mut self, tips: &'static [&'static str]) -> Self {
        self.tips = tips;
        self
    }

    pub const fn key_finder(mut self, finder: KeyFinder) -> Self {
        self.key_finder = Some(finder);
        self
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Whether running `args` writes (XGROUP HELP, flagged `loading stale` as every
    /// container's HELP, does not: a read-only script, a paused or a failing-disk server runs
    /// it).
    pub fn writes(&self, args: &[Bytes]) -> bool {
        self.runs_with(flags::WRITE, args)
    }

    /// Whether running `args` is refused over `maxmemory` (the DENYOOM flag).
    pub fn denies_oom(&self, args: &[Bytes]) -> bool {
        self.runs_with(flags::DENYOOM, args)
    }

    /// Whether running `args` has `flag`: for a container, the flags of the subcommand `args`
    /// names, as Redis runs the subcommand's own entry (CLIENT HELP is neither admin nor
    /// `noscript`, CLIENT LIST is both); otherwise, the command's.
    pub fn runs_with(&self, flag: u32, args: &[Bytes]) -> bool {
        self.subcommand_of(args).map_or(self.has(flag), |sub| sub.flags & flag != 0)
    }

    /// Whether `argc` arguments (the name included) fit the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Argument positions holding keys.
    pub fn key_positions(&self, args: &[Bytes]) -> Vec<usize> {
        match self.key_finder {
            Some(finder) => finder(args),
            None => self.fixed_key_positions(args.len()).into_iter().flatten().collect(),
        }
    }

    /// The key positions among `argc` arguments when the table's first/last/step give them;
    /// `None` when the command needs its key finder (which reads the arguments).
    pub fn fixed_key_positions(&self, argc: usize) -> Option<impl Iterator<Item = usize>> {
        if self.key_finder.is_some() {
            return None;
        }
        let argc = i32::try_from(argc).unwrap_or(i32::MAX);
        let last = match (self.first_key, self.last_key) {
            // No keys: a last key of 0 leaves the range from 1 empty.
            (..=0, _) => 0,
            (_, ..=-1) => argc + self.last_key,
            (_, last) => last.min(argc - 1),
        };
        let keys = self.first_key.max(1)..=last;
        let step = usize::try_from(self.step.max(1)).unwrap_or(1);
        Some(keys.step_by(step).filter_map(|i| usize::try_from(i).ok()))
    }

    /// The `COMMAND INFO` entry, in Redis 7.0's shape, with a container's subcommands' entries.
    pub fn info(&self) -> Reply {
        let subcommands = self.subcommands.iter().map(|sub| sub.info(self.name)).collect();
        let flags = if self.is_bare_container() { 0 } else { self.flags };
        let entry = InfoEntry { arity: self.arity, flags, key_specs: self.key_specs, tips: self.tips };
        entry.reply(self.name.to_string(), self.info_categories(), subcommands)
    }

    /// A container that only runs with a subcommand: Redis's has no flags, keys or categories
    /// of its own (each subcommand has its own), so `COMMAND INFO` shows none. COMMAND, which
    /// also runs alone, is a command of its own as well.
    fn is_bare_container(&self) -> bool {
        !self.subcommands.is_empty() && self.arity != -1
    }

    /// The ACL categories `COMMAND INFO` shows: a bare container is only `@slow`.
    pub fn info_categories(&self) -> Vec<&'static str> {
        if self.is_bare_container() {
            vec!["slow"]
        } else {
            crate::acl::categories(self)
        }
    }

    /// The command's name and each subcommand's (`config|get`), with the ACL categories
    /// `COMMAND INFO` shows for each: what `COMMAND LIST` lists and filters.
    pub fn listed(&self) -> impl Iterator<Item = (String, Vec<&'static str>)> + '_ {
        let subcommands = self
            .subcommands
            .iter()
            .map(|sub| (format!("{}|{}", self.name, sub.name), crate::acl::subcommand_categories(sub)));
        std::iter::once((self.name.to_string(), self.info_categories())).chain(subcommands)
    }

    /// The key specs that apply to `args`: a container's subcommand's, or the command's.
    fn key_specs_of(&self, args: &[Bytes]) -> &'static [KeySpec] {
        if self.subcommands.is_empty() {
            return self.key_specs;
        }
        self.subcommand_of(args).map_or(&[], |sub| sub.key_specs)
    }

    /// The subcommand `args` name, if this is a container and it has it.
    pub fn subcommand_of(&self, args: &[Bytes]) -> Option<&'static SubcommandSpec> {
        self.subcommand_named(args.get(1)?)
    }

    /// Whether `args` (the command, or a container's subcommand) can take keys at all
    /// (Redis's `doesCommandHaveKeys`).
    pub fn takes_keys(&self, args: &[Bytes]) -> bool {
        self.key_finder.is_some()
            || self.flagged_keys.is_some()
            || self.key_specs_of(args).iter().any(|spec| spec.flags & key::NOT_KEY == 0)
    }

    /// The keys of `args` with what the command does to each, as Redis's
    /// `getKeysFromCommandWithSpecs` finds them: by the key specs when they can say, else by
    /// the command's flagged finder.
    pub fn keys_with_flags(&self, args: &[Bytes]) -> Vec<FoundKey> {
        let specs = self.key_specs_of(args);
        if !specs.iter().any(|spec| spec.flags & key::VARIABLE_FLAGS != 0) {
            if let Ok(found) = key_spec::search(specs, args) {
                return found;
            }
        }
        // The other commands' own finders (numkeys, STREAMS) find no keys where the specs
        // fail, as Redis's do: a count that is not one, or arguments too few for it.
        self.flagged_keys.map(|finder| finder(args)).unwrap_or_default()
    }
}

/// The last command name a client sent, spelled as it sent it, and what the table answered.
///
/// A table lookup copies, lowercases and hashes the name: ~230 instructions, 5% of the
/// server's user-space work for a pipelined HGET. Clients mostly repeat one command (a
/// pipeline, a loop, a session store's GETs), and the same bytes find the same entry.
#[derive(Debug, Clone, Copy, Default)]
pub struct LastLookup {
    name: [u8; LastLookup::NAME_MAX],
    /// 0: nothing remembered.
    len: u8,
    index: u16,
}

impl LastLookup {
    /// Longer names (none of Redis's is) are looked up every time.
    const NAME_MAX: usize = 24;

    fn get(&self, name: &[u8]) -> Option<usize> {
        let remembered = self.name.get(..usize::from(self.len))?;
        (self.len != 0 && remembered == name).then_some(usize::from(self.index))
    }

    fn remember(&mut self, name: &[u8], index: usize) {
        let (Ok(len), Ok(index)) = (u8::try_from(name.len()), u16::try_from(index)) else { return };
        if let Some(slot) = self.name.get_mut(..name.len()) {
            slot.copy_from_slice(name);
            self.len = len;
            self.index = index;
        }
    }
}

/// Lookup by name, case-insensitively, without allocating.
#[derive(Debug)]
pub struct CommandTable {
    by_name: HashMap<&'static str, usize>,
    specs: Vec<&'static CommandSpec>,
    /// What statistics are kept under (INFO commandstats, latencystats, `/metrics`): every
    /// command by its index, then each container's subcommands (`config|get`), as Redis 7
    /// counts them.
    stat_names: Vec<CommandName>,
    /// Per command, the stat index of its first subcommand (containers only).
    first_sub_stat: Vec<usize>,
}

impl CommandTable {
    pub fn new(families: &[&'static [CommandSpec]]) -> CommandTable {
        let specs: Vec<&'static CommandSpec> = families.iter().flat_map(|f| f.iter()).collect();
        let by_name = specs.iter().enumerate().map(|(i, s)| (s.name, i)).collect();
        let mut stat_names: Vec<CommandName> = specs.iter().map(|s| CommandName { name: s.name, sub: None }).collect();
        let mut first_sub_stat = Vec::with_capacity(specs.len());
        for spec in &specs {
            first_sub_stat.push(stat_names.len());
            stat_names.extend(spec.subcommands.iter().map(|sub| CommandName { name: spec.name, sub: Some(sub.name) }));
        }
        CommandTable { by_name, specs, stat_names, first_sub_stat }
    }

    /// The statistics index `args` count under: a container's subcommand's, or the
    /// command's; `None` for a container's unknown subcommand, which Redis counts under no
    /// command (a container alone counts under itself).
    pub fn stat_index(&self, index: usize, args: &[Bytes]) -> Option<usize> {
        let Some(spec) = self.specs.get(index).filter(|spec| !spec.subcommands.is_empty()) else {
            return Some(index);
        };
        let Some(given) = args.get(1) else { return Some(index) };
        Some(self.first_sub_stat.get(index)? + spec.subcommand_position(given)?)
    }

    /// The name of every statistics index, in index order.
    pub fn stat_names(&self) -> &[CommandName] {
        &self.stat_names
    }

    /// The statistics indexes `name` stands for: `config|get` one, a container every
    /// subcommand and itself, any other command itself.
    pub fn stats_named(&self, name: &[u8]) -> Vec<usize> {
        let text = String::from_utf8_lossy(name).to_ascii_lowercase();
        let (command, sub) = match text.split_once('|') {
            Some((command, sub)) => (command, Some(sub)),
            None => (text.as_str(), None),
        };
        let named = |stat: &CommandName| stat.name == command && sub.is_none_or(|sub| stat.sub == Some(sub));
        self.stat_names.iter().enumerate().filter(|(_, stat)| named(stat)).map(|(index, _)| index).collect()
    }

    /// The known commands among `lines` (a transaction's queue), with their arguments.
    pub fn specs_of<'a>(
        &'a self,
        lines: &'a [Vec<Bytes>],
    ) -> impl Iterator<Item = (&'static CommandSpec, &'a [Bytes])> + 'a {
        lines.iter().filter_map(|args| Some((self.lookup(args.first()?)?.1, args.as_slice())))
    }

    /// The command's index and entry.
    pub fn lookup(&self, name: &[u8]) -> Option<(usize, &'static CommandSpec)> {
        let mut buf = [0u8; 32];
        let lower = buf.get_mut(..name.len())?;
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        let lower = std::str::from_utf8(lower).ok()?;
        let &index = self.by_name.get(lower)?;
        Some((index, *self.specs.get(index)?))
    }

    /// [`CommandTable::lookup`], answered from `last` when `name` is the name it remembers,
    /// which then remembers this one.
    pub fn lookup_remembered(&self, name: &[u8], last: &mut LastLookup) -> Option<(usize, &'static CommandSpec)> {
        if let Some(index) = last.get(name) {
            return Some((index, *self.specs.get(index)?));
        }
        let found = self.lookup(name)?;
        last.remember(name, found.0);
        Some(found)
    }

    pub fn all(&self) -> &[&'static CommandSpec] {
        &self.specs
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}

/// How a command's subcommand fares against its container's table.
#[derive(Debug, PartialEq, Eq)]
pub enum Subcommand {
    /// No table, or a known subcommand with a right count.
    Fine,
    Unknown,
    /// Known, with the wrong count: its name, for `'object|encoding'`.
    WrongArity(&'static str),
}

impl CommandSpec {
    /// The name `args` runs under; `None` for a container's unknown subcommand (Redis looks
    /// the command up as a whole and finds nothing).
    pub fn name_for(&self, args: &[Bytes]) -> Option<CommandName> {
        if self.subcommands.is_empty() {
            return Some(CommandName { name: self.name, sub: None });
        }
        let sub = self.subcommand_named(args.get(1)?)?;
        Some(CommandName { name: self.name, sub: Some(sub.name) })
    }

    /// Where the subcommand `given` is in the container's table.
    fn subcommand_position(&self, given: &[u8]) -> Option<usize> {
        self.subcommands.iter().position(|sub| given.eq_ignore_ascii_case(sub.name.as_bytes()))
    }

    /// The container's subcommand `given` (any case).
    pub fn subcommand_named(&self, given: &[u8]) -> Option<&'static SubcommandSpec> {
        self.subcommands.get(self.subcommand_position(given)?)
    }

    /// The subcommand check Redis 7 makes before running a container command.
    pub fn subcommand(&self, args: &[Bytes]) -> Subcommand {
        let Some(sub) = args.get(1).filter(|_| !self.subcommands.is_empty()) else { return Subcommand::Fine };
        let Some(sub) = self.subcommand_named(sub) else {
            return Subcommand::Unknown;
        };
        let n = i32::try_from(args.len()).unwrap_or(i32::MAX);
        if (sub.arity >= 0 && n != sub.arity) || n < sub.arity.abs() {
            return Subcommand::WrongArity(sub.name);
        }
        Subcommand::Fine
    }

    /// `ERR unknown subcommand` or the subcommand's wrong-arity error, as a client sees them.
    pub fn subcommand_refusal(&self, args: &[Bytes]) -> Option<Reply> {
        match self.subcommand(args) {
            Subcommand::Fine => None,
            Subcommand::Unknown => {
                Some(crate::errors::unknown_subcommand(args.get(1).map_or(&b""[..], |s| &s[..]), self.name))
            }
            Subcommand::WrongArity(sub) => Some(crate::errors::wrong_arity(&format!("{}|{sub}", self.name))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_lookup_answers_as_the_table_does() {
        let table = crate::cmd::table();
        let mut last = LastLookup::default();
        let index_of = |name: &[u8]| table.lookup(name).map(|(index, _)| index);
        // Nothing remembered yet, then each name in turn: the same answers as a plain lookup,
        // whatever was remembered before (another command, another spelling, an unknown name).
        for name in [&b"GET"[..], b"GET", b"get", b"HGET", b"nosuchcommand", b"hget", b"", b"GET"] {
            let remembered = table.lookup_remembered(name, &mut last).map(|(index, _)| index);
            assert_eq!(remembered, index_of(name), "{}", String::from_utf8_lossy(name));
        }
        let long = [b'x'; LastLookup::NAME_MAX + 1];
        assert_eq!(table.lookup_remembered(&long, &mut last).map(|(i, _)| i), None);
        assert_eq!(last.get(b"GET"), index_of(b"GET"));
    }

    /// The keys the key specs name are keys the command locks: for every command with fixed
    /// key positions (and each subcommand with key specs), over argument counts from its arity
    /// up, the specs find exactly those positions where they can say, and no others anyway.
    #[test]
    fn key_specs_name_the_keys_the_table_locks() {
        let complete = |specs: &[KeySpec]| {
            specs.iter().all(|spec| spec.flags & key::INCOMPLETE == 0 && spec.begin != key_spec::BeginSearch::Unknown)
        };
        let table = crate::cmd::table();
        for spec in table.all().iter().filter(|spec| spec.key_finder.is_none()) {
            let subcommands = spec.subcommands.iter().map(|sub| (Some(sub.name), sub.key_specs, sub.arity));
            let shapes: Vec<(Option<&str>, &[KeySpec], i32)> = if spec.subcommands.is_empty() {
                vec![(None, spec.key_specs, spec.arity)]
            } else {
                subcommands.collect()
            };
            for (subcommand, key_specs, arity) in shapes {
                let least = usize::try_from(arity.unsigned_abs()).unwrap_or(0);
                let most = if arity < 0 { least + 4 } else { least };
                for argc in least..=most {
                    let mut args: Vec<Bytes> = (0..argc).map(|i| Bytes::from(format!("a{i}"))).collect();
                    if let (Some(name), Some(slot)) = (subcommand, args.get_mut(1)) {
                        *slot = Bytes::from(name);
                    }
                    let locked = spec.key_positions(&args);
                    let named: Vec<usize> = spec.keys_with_flags(&args).iter().map(|found| found.position).collect();
                    let context = format!("{} {subcommand:?} with {argc} arguments", spec.name);
                    assert!(named.iter().all(|position| locked.contains(position)), "{context}: {named:?} {locked:?}");
                    // Where the specs can say (SPUBLISH's channel is no key, though locked):
                    // exactly the locked keys.
                    if key_specs.iter().all(|key_spec| key_spec.flags & key::NOT_KEY == 0) {
                        match key_spec::search(key_specs, &args) {
                            Ok(found) => {
                                let found: Vec<usize> = found.iter().map(|found| found.position).collect();
                                assert_eq!(found, locked, "{context}");
                            }
                            // A fixed arity leaves no argument count the specs cannot follow
                            // (Redis panics on such a table).
                            Err(_) => assert!(arity < 0 || !complete(key_specs), "{context}: specs fail"),
                        }
                    }
                }
            }
        }
    }
}
