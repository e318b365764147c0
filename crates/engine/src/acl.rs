//! Access control lists, as in Redis 7.0: users, their passwords, and which commands, keys
//! and pub/sub channels each one may use.
//!
//! * A [`User`] is built by applying Redis's rules in order (`on`, `>pass`, `~pattern`,
//!   `+@read`, `-set`, `+config|get`, `reset`...), the same rules `ACL SETUSER` and an ACL
//!   file use. Passwords are kept only as SHA-256 hex digests.
//! * [`Acl`] holds the users (always including `default`), the `ACL LOG`, and answers
//!   [`Acl::authenticate`] and [`User::check`]; the engine checks every command against the
//!   client's user before running it (and again for each command inside EXEC or a script).
//! * A user's permissions are [`Selector`]s: the root one its rules set, and those added in
//!   parentheses (`(~b* +set)`, Redis 7.0). A command runs when one selector allows all of
//!   it — the command, each key, each channel — as Redis checks them, in order.
//! * Commands are allowed per table entry; a `cmd|sub` rule overrides one entry for one first
//!   argument (Redis's subcommands and its "first-arg" rules both map to that). A category
//!   rule sets each subcommand by its own categories, as Redis does (`-@dangerous` takes
//!   CLIENT KILL, not CLIENT SETNAME). A user keeps only the command rules that still change
//!   something, so `ACL GETUSER` reads as Redis's, which it describes from the permissions.
//! * Key permissions follow the command's key specs ([`crate::key_spec`]), as in Redis: a
//!   key the command accesses needs a read pattern (`~` or `%R~`), one it inserts into,
//!   updates or deletes from a write pattern (`~` or `%W~`); a key it only looks at (EXISTS,
//!   TYPE) any pattern that matches.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::command::{flags, CommandSpec, CommandTable, SubcommandSpec};
use crate::key_spec::key;

/// The user the HTTP API's read-only token runs as. Unless an ACL user of that name is
/// defined (which then takes over), it is built in: read commands only, not `KEYS`/`SCAN`,
/// the event streams' SUBSCRIBE and PSUBSCRIBE, and no password, so nobody can `AUTH` as it.
pub const HTTP_READONLY_USER: &str = "http-readonly";

/// The rules of the built-in [`HTTP_READONLY_USER`]. The read-only script commands are in:
/// a script they run may call no write command, and each call is checked against these
/// rules too.
const HTTP_READONLY_RULES: &str = "on nopass ~* &* -@all +@read -keys -scan +ping +echo +time +select +command \
                                   +multi +exec +discard +watch +unwatch +subscribe +psubscribe \
                                   +eval_ro +evalsha_ro +fcall_ro";

/// ACL categories in Redis's order (`ACL CAT`).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The ACL categories of a table entry, in Redis's order, without the `@`.
pub fn categories(spec: &CommandSpec) -> Vec<&'static str> {
    categories_of(Some(spec.group), spec.categories, spec.flags)
}

/// The ACL categories `COMMAND INFO` shows for a subcommand: its flags' and those it names.
pub fn subcommand_categories(sub: &SubcommandSpec) -> Vec<&'static str> {
    categories_of(None, sub.categories, sub.flags)
}

/// Categories by Redis's rules: those a command's flags imply, its family and those the
/// table names for it.
fn categories_of(family: Option<&str>, named: &[&str], command_flags: u32) -> Vec<&'static str> {
    let has = |flag: u32| command_flags & flag != 0;
    let of = |category: &str| family == Some(category) || named.contains(&category);
    let implied = |category: &str| match category {
        // A read-only script may still write through its calls' own checks: Redis keeps
        // EVAL_RO and FCALL_RO out of `@read`.
        "read" => has(flags::READONLY) && !of("scripting"),
        "write" => has(flags::WRITE),
        "admin" | "dangerous" => has(flags::ADMIN),
        "fast" => has(flags::FAST),
        "slow" => !has(flags::FAST),
        "blocking" => has(flags::BLOCKING),
        "pubsub" => has(flags::PUBSUB),
        _ => false,
    };
    CATEGORIES.iter().copied().filter(|category| of(category) || implied(category)).collect()
}

/// `config|get` for a container command with a subcommand, else the command's name.
pub fn full_name(spec: &CommandSpec, args: &[Bytes]) -> String {
    // A container is what has a subcommand table.
    match args.get(1).filter(|_| !spec.subcommands.is_empty()) {
        Some(sub) => format!("{}|{}", spec.name, String::from_utf8_lossy(sub).to_ascii_lowercase()),
        None => spec.name.to_string(),
    }
}

/// Why `ACL SETUSER` refused a rule (the texts of Redis's `ACLSetUserStringError`).
pub mod rule_error {
    pub const UNKNOWN: &str = "Unknown command or category name in ACL";
    pub const SYNTAX: &str = "Syntax error";
    pub const KEY_AFTER_ALL: &str = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns";
    pub const CHANNEL_AFTER_ALL: &str = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels";
    pub const NO_SUCH_PASSWORD: &str = "The password you are trying to remove from the user does not exist";
    pub const BAD_HASH: &str =
        "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters";
    pub const FIRST_ARG_OF_SUBCOMMAND: &str = "Allowing first-arg of a subcommand is not supported";
}

/// A key pattern and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Bytes,
    pub read: bool,
    pub write: bool,
}

impl KeyPattern {
    /// `~pat`, `%R~pat` or `%W~pat`.
    fn describe(&self) -> String {
        let prefix = match (self.read, self.write) {
            (true, false) => "%R~",
            (false, true) => "%W~",
            _ => "~",
        };
        format!("{prefix}{}", String::from_utf8_lossy(&self.pattern))
    }
}

/// Whether a key or channel pattern holds a blank or a NUL (`ACLStringHasSpaces`): one
/// would not read back from `ACL LIST` or an ACL file as the same rule.
fn has_spaces(pattern: &[u8]) -> bool {
    pattern.iter().any(|&c| c == 0 || crate::num::is_c_space(c))
}

/// One ACL user: who it is (flags, passwords) and what it may do — its root selector, and
/// any further selectors (Redis 7.0's `(...)` rules). A command runs when one selector
/// allows all of it: the command, every key and every channel.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    /// `Some(true)`: `sanitize-payload`; `Some(false)`: `skip-sanitize-payload`.
    pub sanitize: Option<bool>,
    /// SHA-256 digests, lowercase hex, in the order added.
    pub passwords: Vec<String>,
    /// The permissions the rules outside parentheses set.
    root: Selector,
    /// The selectors added with `(...)`, in the order added.
    selectors: Vec<Selector>,
    /// One selector allows every command, key and channel: the checks can be skipped.
    unrestricted: bool,
}

/// One set of permissions: the commands, keys and channels that may be used together.
#[derive(Debug, Clone)]
pub struct Selector {
    /// The commands it allows.
    grants: CommandGrants,
    /// Whether the command rules start from `+@all` (else `-@all`).
    all_base: bool,
    /// The command rules after the base that still change something, for `ACL LIST`/`GETUSER`.
    rules: Vec<CommandRule>,
    all_keys: bool,
    keys: Vec<KeyPattern>,
    all_channels: bool,
    channels: Vec<Bytes>,
}

/// What a permission check refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Command,
    /// The argument position of the refused key.
    Key(usize),
    /// The argument position of the refused channel.
    Channel(usize),
}

impl Denied {
    /// The `ACL LOG` reason.
    pub fn reason(self) -> &'static str {
        match self {
            Denied::Command => "command",
            Denied::Key(_) => "key",
            Denied::Channel(_) => "channel",
        }
    }

    /// Redis 7.0's NOPERM error for a command run or queued at the top level.
    pub fn error(self, spec: &CommandSpec, args: &[Bytes]) -> String {
        match self {
            Denied::Command => {
                format!("NOPERM this user has no permissions to run the '{}' command", full_name(spec, args))
            }
            Denied::Key(_) => "NOPERM this user has no permissions to access one of the keys used as arguments".into(),
            Denied::Channel(_) => {
                "NOPERM this user has no permissions to access one of the channels used as arguments".into()
            }
        }
    }

    /// The error a script's call gets (`scriptVerifyACL`), which the script raises as ERR.
    pub fn script_error(self) -> String {
        let what = match self {
            Denied::Command => "can't run this command or subcommand",
            Denied::Key(_) => "can't access at least one of the keys mentioned in the command arguments",
            Denied::Channel(_) => "can't publish to the channel mentioned in the command",
        };
        format!("ERR The user executing the script {what}")
    }

    /// The error a queued command gets when EXEC finds that the rules changed since it was
    /// queued (`execCommand`).
    pub fn exec_error(self) -> String {
        let reason = match self {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        };
        format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. \
             This command is no longer allowed for the following reason: {reason}"
        )
    }

    /// What `ACL LOG` names: the command, key or channel.
    pub fn object(self, spec: &CommandSpec, args: &[Bytes]) -> String {
        match self {
            Denied::Command => full_name(spec, args),
            Denied::Key(i) | Denied::Channel(i) => {
                args.get(i).map(|a| String::from_utf8_lossy(a).into_owned()).unwrap_or_default()
            }
        }
    }

    /// Redis's choice of the one refusal to report when every selector refused: a channel
    /// over a key over the command, and between two keys (or channels) the later argument.
    fn outranks(self, other: Denied) -> bool {
        let rank = |d: Denied| match d {
            Denied::Command => (0, 0),
            Denied::Key(at) => (1, at),
            Denied::Channel(at) => (2, at),
        };
        rank(self) > rank(other)
    }
}

impl User {
    /// Whether the ACL file can hold its rules as they are: key and channel patterns are
    /// bytes, the file is text, and a pattern that is not UTF-8 would read back as another.
    pub fn is_text(&self) -> bool {
        std::iter::once(&self.root).chain(&self.selectors).all(Selector::is_text)
    }

    /// A new user as `ACL SETUSER name` creates it: off, no password, nothing allowed.
    pub fn new(name: &str, table: &CommandTable) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            root: Selector::new(table, false),
            selectors: Vec::new(),
            unrestricted: false,
        }
    }

    /// The `default` user of a fresh server: `on nopass ~* &* +@all`.
    pub fn default_user(table: &CommandTable) -> User {
        let mut user = User::new("default", table);
        for rule in ["on", "nopass", "~*", "&*", "+@all"] {
            let _ = user.apply(rule.as_bytes(), table);
        }
        user
    }

    /// Apply rules separated by spaces, as an ACL file line's (built-in users, tests).
    pub fn apply_all(&mut self, rules: &str, table: &CommandTable) -> Result<(), (String, &'static str)> {
        let words = rules.split(' ').filter(|r| !r.is_empty()).map(str::as_bytes);
        for rule in merge_selector_arguments(words).map_err(|unmatched| (unmatched, rule_error::SYNTAX))? {
            self.apply(&rule, table).map_err(|e| (String::from_utf8_lossy(&rule).into_owned(), e))?;
        }
        Ok(())
    }

    /// Apply one rule, as under Redis's default `acl-pubsub-default` (`resetchannels`).
    pub fn apply(&mut self, rule: &[u8], table: &CommandTable) -> Result<(), &'static str> {
        self.apply_with_channels(rule, table, false)
    }

    /// Apply one rule; `all_channels` is what `reset` and a new selector give for channels
    /// (`acl-pubsub-default`). On error the user may be partly changed (callers work on a
    /// copy).
    pub fn apply_with_channels(
        &mut self,
        rule: &[u8],
        table: &CommandTable,
        all_channels: bool,
    ) -> Result<(), &'static str> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_slice() {
            // An empty rule changes nothing, as in Redis.
            b"" => {}
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"sanitize-payload" => self.sanitize = Some(true),
            b"skip-sanitize-payload" => self.sanitize = Some(false),
            b"clearselectors" => self.selectors.clear(),
            b"reset" => {
                for rule in
                    ["resetpass", "resetkeys", "resetchannels", "off", "clearselectors", "-@all", "sanitize-payload"]
                {
                    self.apply(rule.as_bytes(), table)?;
                }
                self.root.all_channels = all_channels;
            }
            _ => match rule.strip_prefix(b"(").and_then(|r| r.strip_suffix(b")")) {
                Some(body) => {
                    let mut selector = Selector::new(table, all_channels);
                    for rule in body.split(|&c| c == b' ').filter(|r| !r.is_empty()) {
                        selector.apply(rule, table)?;
                    }
                    self.selectors.push(selector);
                }
                None => self.apply_to_user(rule, table)?,
            },
        }
        let unrestricted = self.all_selectors().any(Selector::unrestricted);
        self.unrestricted = unrestricted;
        Ok(())
    }

    /// Password rules, or else a rule of the root selector.
    fn apply_to_user(&mut self, rule: &[u8], table: &CommandTable) -> Result<(), &'static str> {
        let (Some(&first), Some(rest)) = (rule.first(), rule.get(1..)) else {
            return Err(rule_error::SYNTAX);
        };
        match first {
            b'>' | b'#' => {
                let hash = if first == b'>' { sha256_hex(rest) } else { valid_hash(rest)? };
                if !self.passwords.contains(&hash) {
                    self.passwords.push(hash);
                }
                self.nopass = false;
            }
            b'<' | b'!' => {
                let hash = if first == b'<' { sha256_hex(rest) } else { valid_hash(rest)? };
                let before = self.passwords.len();
                self.passwords.retain(|p| *p != hash);
                if self.passwords.len() == before {
                    return Err(rule_error::NO_SUCH_PASSWORD);
                }
            }
            _ => self.root.apply(rule, table)?,
        }
        Ok(())
    }

    /// The root selector, then the others in the order added (the order Redis checks them).
    fn all_selectors(&self) -> impl Iterator<Item = &Selector> + Clone {
        std::iter::once(&self.root).chain(&self.selectors)
    }

    /// The selectors added with `(...)`.
    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    /// The root selector: what `ACL GETUSER` shows as the user's commands, keys and channels.
    pub fn root(&self) -> &Selector {
        &self.root
    }

    /// Whether the password opens this user (compared as digests, in constant time).
    pub fn password_ok(&self, password: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let given = sha256_hex(password);
        // Every stored digest is compared, so timing does not tell which (if any) matched.
        self.passwords.iter().fold(false, |ok, stored| constant_time_eq(stored.as_bytes(), given.as_bytes()) | ok)
    }

    /// Check a command against each selector in turn; it runs if one allows it. When none
    /// does, the refusal reported is the one Redis picks (`Denied::outranks`).
    pub fn check(&self, index: usize, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Denied> {
        if self.unrestricted || spec.has(flags::NO_AUTH) {
            return Ok(());
        }
        let mut reported = Denied::Command;
        for selector in self.all_selectors() {
            match selector.check(index, spec, args) {
                Ok(()) => return Ok(()),
                Err(denied) if denied.outranks(reported) => reported = denied,
                Err(_) => {}
            }
        }
        Err(reported)
    }

    /// Redis's `ACLUserCheckCmdWithUnrestrictedKeyAccess`: whether a selector that allows this
    /// command also reads every key, as SORT's BY and GET patterns need (they name keys that
    /// no check saw).
    pub fn may_read_any_key(&self, index: usize, spec: &CommandSpec, args: &[Bytes]) -> bool {
        self.unrestricted || self.all_selectors().any(|s| s.reads_every_key() && s.check(index, spec, args).is_ok())
    }

    /// Whether one of the selectors lets a subscriber keep this channel (or, for a pattern
    /// subscription, this pattern as is).
    pub fn channel_allowed(&self, channel: &[u8], literal: bool) -> bool {
        self.all_selectors().any(|s| s.channel_allowed(channel, literal))
    }

    /// Whether this user may use every channel `earlier` could: each of its patterns is
    /// kept by some selector, as Redis checks before it looks for subscribers to cut off.
    pub fn channels_cover(&self, earlier: &User) -> bool {
        if self.all_selectors().any(|s| s.all_channels) {
            return true;
        }
        let mut before = earlier.all_selectors();
        !before.clone().any(|s| s.all_channels)
            && before.all(|s| s.channels.iter().all(|c| self.all_selectors().any(|now| now.channels.contains(c))))
    }

    /// The flags `ACL GETUSER` lists.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut names = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            names.push("nopass");
        }
        match self.sanitize {
            Some(true) => names.push("sanitize-payload"),
            Some(false) => names.push("skip-sanitize-payload"),
            None => {}
        }
        names
    }

    /// The rules that rebuild this user from scratch: its `ACL LIST` line without
    /// `user <name>`, and the rules of an ACL file line.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.flag_names().into_iter().map(String::from).collect();
        parts.extend(self.passwords.iter().map(|p| format!("#{p}")));
        parts.push(self.root.describe());
        parts.extend(self.selectors.iter().map(|s| format!("({})", s.describe())));
        parts.join(" ")
    }
}

impl Selector {
    /// Whether its key and channel patterns are text (see [`User::is_text`]).
    fn is_text(&self) -> bool {
        let text = |pattern: &[u8]| std::str::from_utf8(pattern).is_ok();
        self.keys.iter().all(|key| text(&key.pattern)) && self.channels.iter().all(|channel| text(channel))
    }

    /// Nothing allowed; every channel or none, as `acl-pubsub-default` says.
    fn new(table: &CommandTable, all_channels: bool) -> Selector {
        Selector {
            grants: CommandGrants::all(false, table.len()),
            all_base: false,
            rules: Vec::new(),
            all_keys: false,
            keys: Vec::new(),
            all_channels,
            channels: Vec::new(),
        }
    }

    /// Apply a rule on commands, keys or channels (the only rules a selector takes).
    fn apply(&mut self, rule: &[u8], table: &CommandTable) -> Result<(), &'static str> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_slice() {
            b"allkeys" | b"~*" => {
                self.all_keys = true;
                self.keys.clear();
            }
            b"resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            b"allchannels" | b"&*" => {
                self.all_channels = true;
                self.channels.clear();
            }
            b"resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            b"allcommands" | b"+@all" => self.set_all_commands(true),
            b"nocommands" | b"-@all" => self.set_all_commands(false),
            // Patterns keep their case; command names do not.
            _ => match rule {
                [b'~', pattern @ ..] => self.add_key_pattern(pattern, true, true)?,
                [b'%', access @ ..] => self.add_key_pattern_with_access(access)?,
                [b'&', pattern @ ..] => self.add_channel(pattern)?,
                [sign @ (b'+' | b'-'), name @ ..] => self.command_rule(*sign == b'+', name, table)?,
                _ => return Err(rule_error::SYNTAX),
            },
        }
        Ok(())
    }

    /// `%R~pattern`, `%W~pattern` or `%RW~pattern` (given without the `%`), read as Redis
    /// 7.0 reads it: each of R and W at most once, at least one, then `~` and the pattern;
    /// with no `~`, the pattern is empty.
    fn add_key_pattern_with_access(&mut self, rule: &[u8]) -> Result<(), &'static str> {
        let (mut read, mut write) = (false, false);
        let mut rest = rule;
        while let Some((&c, after)) = rest.split_first() {
            rest = after;
            match c.to_ascii_uppercase() {
                b'R' if !read => read = true,
                b'W' if !write => write = true,
                b'~' => break,
                _ => return Err(rule_error::SYNTAX),
            }
        }
        if !read && !write {
            return Err(rule_error::SYNTAX);
        }
        self.add_key_pattern(rest, read, write)
    }

    fn add_key_pattern(&mut self, pattern: &[u8], read: bool, write: bool) -> Result<(), &'static str> {
        if self.all_keys {
            return Err(rule_error::KEY_AFTER_ALL);
        }
        if !(read && write && pattern == b"*") && has_spaces(pattern) {
            return Err(rule_error::SYNTAX);
        }
        if read && write && pattern == b"*" {
            self.all_keys = true;
            self.keys.clear();
            return Ok(());
        }
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(existing) => {
                existing.read |= read;
                existing.write |= write;
            }
            None => self.keys.push(KeyPattern { pattern: Bytes::copy_from_slice(pattern), read, write }),
        }
        Ok(())
    }

    fn add_channel(&mut self, pattern: &[u8]) -> Result<(), &'static str> {
        if self.all_channels {
            return Err(rule_error::CHANNEL_AFTER_ALL);
        }
        if has_spaces(pattern) {
            return Err(rule_error::SYNTAX);
        }
        let channel = Bytes::copy_from_slice(pattern);
        if !self.channels.contains(&channel) {
            self.channels.push(channel);
        }
        Ok(())
    }

    fn set_all_commands(&mut self, allow: bool) {
        self.grants.reset(allow);
        self.all_base = allow;
        self.rules.clear();
    }

    /// A `+`/`-` rule on commands, kept for `ACL GETUSER` only while it still changes
    /// something: as Redis describes a user from its permissions, `+@all +get` reads back
    /// `+@all`, and `+memory|doctor +memory` reads back `+memory`.
    fn command_rule(&mut self, allow: bool, body: &[u8], table: &CommandTable) -> Result<(), &'static str> {
        let text = std::str::from_utf8(body).map_err(|_| rule_error::UNKNOWN)?.to_ascii_lowercase();
        let rule = CommandRule { allow, target: RuleTarget::parse(allow, &text, table)?, text };
        let changed = self.grants.apply(&rule, table);
        let kept = self.rules.len();
        self.rules.retain(|earlier| !rule.target.covers(&earlier.target, table));
        let needed = if self.rules.len() == kept {
            changed
        } else if self.rules.len() > MAX_RULES_REPLAYED {
            // Past this, a rule is kept rather than the list replayed for every rule added.
            true
        } else {
            // Rules it replaced are gone: whether it is needed is measured without them.
            let mut without = CommandGrants::all(self.all_base, table.len());
            self.rules.iter().for_each(|r| {
                without.apply(r, table);
            });
            !self.grants.same_as(&without)
        };
        if needed {
            self.rules.push(rule);
        }
        Ok(())
    }

    /// `~*`, `allkeys` or `%R~*`.
    fn reads_every_key(&self) -> bool {
        self.all_keys || self.keys.iter().any(|k| k.read && k.pattern == b"*"[..])
    }

    /// Every command, key and channel.
    fn unrestricted(&self) -> bool {
        self.all_keys && self.all_channels && self.grants.allows_everything()
    }

    /// Check a command: the command itself, then its keys, then its channels (Redis's order).
    fn check(&self, index: usize, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Denied> {
        if !self.grants.allows(index, args) {
            return Err(Denied::Command);
        }
        if !self.all_keys {
            for found in spec.keys_with_flags(args) {
                let Some(key) = args.get(found.position) else { continue };
                let read = found.flags & key::ACCESS != 0;
                let write = found.flags & (key::INSERT | key::DELETE | key::UPDATE) != 0;
                if !self.key_allowed(key, read, write) {
                    return Err(Denied::Key(found.position));
                }
            }
        }
        if !self.all_channels {
            for pos in channel_positions(spec, args) {
                let Some(channel) = args.get(pos) else { continue };
                let literal = spec.name == "psubscribe";
                if !self.channel_allowed(channel, literal) {
                    return Err(Denied::Channel(pos));
                }
            }
        }
        Ok(())
    }

    fn key_allowed(&self, key: &[u8], read: bool, write: bool) -> bool {
        self.all_keys
            || self
                .keys
                .iter()
                .any(|k| (k.read || !read) && (k.write || !write) && crate::glob::matches(&k.pattern, key, false))
    }

    /// A channel name (or, for PSUBSCRIBE, a pattern that must be one of the selector's as is).
    fn channel_allowed(&self, channel: &[u8], literal: bool) -> bool {
        self.all_channels
            || self
                .channels
                .iter()
                .any(|p| if literal { p == channel } else { crate::glob::matches(p, channel, false) })
    }

    /// The command rules as Redis shows them: `+@all`, `-@all +@read -keys`...
    pub fn describe_commands(&self) -> String {
        let mut out = String::from(if self.all_base { "+@all" } else { "-@all" });
        for rule in &self.rules {
            out.push(' ');
            out.push(if rule.allow { '+' } else { '-' });
            out.push_str(&rule.text);
        }
        out
    }

    /// Key patterns as `ACL GETUSER` shows them (`~*`, `~session:* %R~ro:*`, or empty).
    pub fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        self.keys.iter().map(KeyPattern::describe).collect::<Vec<_>>().join(" ")
    }

    /// Channel patterns as `ACL GETUSER` shows them.
    pub fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))).collect::<Vec<_>>().join(" ")
    }

    /// The rules that rebuild this selector, as `ACL LIST` shows it: keys, channels (from
    /// `resetchannels` unless all), commands.
    fn describe(&self) -> String {
        let channels = match self.all_channels {
            true => self.describe_channels(),
            false => format!("resetchannels {}", self.describe_channels()),
        };
        [self.describe_keys(), channels, self.describe_commands()]
            .iter()
            .map(|part| part.trim_end())
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Redis's `ACLMergeSelectorArguments`: a selector given as several arguments — `(~a*` and
/// `+get)`, as from `redis-cli ACL SETUSER u (~a* +get)` — is joined into one rule with
/// spaces. A `(` never closed is an error naming the argument it opened with.
pub fn merge_selector_arguments<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<Vec<u8>>, String> {
    let mut merged = Vec::new();
    let mut open: Option<(Vec<u8>, &[u8])> = None;
    for arg in args {
        match open.as_mut() {
            Some((selector, _)) => {
                selector.push(b' ');
                selector.extend_from_slice(arg);
                if arg.ends_with(b")") {
                    merged.extend(open.take().map(|(selector, _)| selector));
                }
            }
            None if arg.starts_with(b"(") && !arg.ends_with(b")") => open = Some((arg.to_vec(), arg)),
            None => merged.push(arg.to_vec()),
        }
    }
    match open {
        Some((_, first)) => {
            Err(format!("Unmatched parenthesis in acl selector starting at '{}'.", String::from_utf8_lossy(first)))
        }
        None => Ok(merged),
    }
}

/// Rules kept past which adding one that replaces another no longer replays the rest to see
/// whether it is still needed: a user of thousands of rules is set in a moment, and read back
/// with some that change nothing.
const MAX_RULES_REPLAYED: usize = 64;

/// Which commands a user may run: a flag per command table entry, and overrides for one
/// first argument (a container's subcommand, or another command's first argument, as
/// `+select|0`).
#[derive(Debug, Clone)]
struct CommandGrants {
    allowed: Vec<bool>,
    /// (table index, lowercase first argument, allowed): at most one for each pair.
    first_args: Vec<(usize, String, bool)>,
}

impl CommandGrants {
    fn all(allow: bool, commands: usize) -> CommandGrants {
        CommandGrants { allowed: vec![allow; commands], first_args: Vec::new() }
    }

    fn reset(&mut self, allow: bool) {
        self.allowed.iter_mut().for_each(|a| *a = allow);
        self.first_args.clear();
    }

    /// Applies `rule`; returns whether what may run changed.
    fn apply(&mut self, rule: &CommandRule, table: &CommandTable) -> bool {
        match &rule.target {
            // As Redis: a command in the category (a container: all its subcommands), then
            // each subcommand in it by its own categories (CLIENT ID is no @dangerous
            // command, CLIENT KILL is).
            RuleTarget::Category(category) => {
                let mut changed = false;
                for (index, spec) in table.all().iter().enumerate() {
                    if spec.info_categories().contains(category) {
                        changed |= self.set_command(index, rule.allow);
                    }
                    for sub in spec.subcommands {
                        if subcommand_categories(sub).contains(category) {
                            changed |= self.set_first_arg(index, sub.name, rule.allow);
                        }
                    }
                }
                changed
            }
            RuleTarget::Command(index) => self.set_command(*index, rule.allow),
            RuleTarget::FirstArg(index, first_arg) => self.set_first_arg(*index, first_arg, rule.allow),
        }
    }

    fn set_first_arg(&mut self, index: usize, first_arg: &str, allow: bool) -> bool {
        let mut before = self.allowed.get(index).copied().unwrap_or(false);
        self.first_args.retain(|(i, arg, allowed)| {
            let same = *i == index && arg == first_arg;
            if same {
                before = *allowed;
            }
            !same
        });
        self.first_args.push((index, first_arg.to_string(), allow));
        before != allow
    }

    fn set_command(&mut self, index: usize, allow: bool) -> bool {
        let mut changed = false;
        if let Some(slot) = self.allowed.get_mut(index) {
            changed = *slot != allow;
            *slot = allow;
        }
        self.first_args.retain(|(i, _, allowed)| {
            changed |= *i == index && *allowed != allow;
            *i != index
        });
        changed
    }

    fn allows(&self, index: usize, args: &[Bytes]) -> bool {
        if let Some(arg) = args.get(1) {
            let first =
                self.first_args.iter().find(|(i, name, _)| *i == index && arg.eq_ignore_ascii_case(name.as_bytes()));
            if let Some((_, _, allow)) = first {
                return *allow;
            }
        }
        self.allowed.get(index).copied().unwrap_or(false)
    }

    fn allows_everything(&self) -> bool {
        self.allowed.iter().all(|a| *a) && self.first_args.iter().all(|(_, _, allow)| *allow)
    }

    /// Whether both let the same commands run (an override that says what its command's
    /// flag says changes nothing).
    fn same_as(&self, other: &CommandGrants) -> bool {
        self.allowed == other.allowed && self.overrides() == other.overrides()
    }

    fn overrides(&self) -> Vec<(usize, &str, bool)> {
        let mut overrides: Vec<_> = self
            .first_args
            .iter()
            .filter(|(index, _, allow)| self.allowed.get(*index) != Some(allow))
            .map(|(index, arg, allow)| (*index, arg.as_str(), *allow))
            .collect();
        overrides.sort_unstable();
        overrides
    }
}

/// One `+`/`-` rule on commands, as `ACL GETUSER` shows it.
#[derive(Debug, Clone)]
struct CommandRule {
    allow: bool,
    target: RuleTarget,
    /// What followed the `+` or `-`, lowercase.
    text: String,
}

/// What a command rule names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RuleTarget {
    Category(&'static str),
    Command(usize),
    /// A container's subcommand, or another command's first argument (`select|0`).
    FirstArg(usize, String),
}

impl RuleTarget {
    /// A rule's name as Redis 7.0's `ACLSetSelector` reads it, with its errors: `+cmd|arg`
    /// takes a container's subcommand or any first argument of another command (never one
    /// of a subcommand), `-` only a command or a container's subcommand.
    fn parse(allow: bool, text: &str, table: &CommandTable) -> Result<RuleTarget, &'static str> {
        if let Some(name) = text.strip_prefix('@') {
            let category = CATEGORIES.iter().find(|c| **c == name).ok_or(rule_error::UNKNOWN)?;
            return Ok(RuleTarget::Category(category));
        }
        let first_arg_rule = if allow { text.rsplit_once('|') } else { None };
        let Some((command, first_arg)) = first_arg_rule else {
            return Self::command(text, table).ok_or(rule_error::UNKNOWN);
        };
        let RuleTarget::Command(index) = Self::command(command, table).ok_or(rule_error::UNKNOWN)? else {
            return Err(rule_error::FIRST_ARG_OF_SUBCOMMAND);
        };
        if first_arg.is_empty() {
            return Err(rule_error::SYNTAX);
        }
        let subcommands = table.all().get(index).map_or(&[][..], |spec| spec.subcommands);
        if !subcommands.is_empty() && !subcommands.iter().any(|sub| sub.name == first_arg) {
            return Err(rule_error::UNKNOWN);
        }
        Ok(RuleTarget::FirstArg(index, first_arg.to_string()))
    }

    /// Redis's `ACLLookupCommand`: a command, or `container|subcommand`.
    fn command(name: &str, table: &CommandTable) -> Option<RuleTarget> {
        match name.split_once('|') {
            None => table.lookup(name.as_bytes()).map(|(index, _)| RuleTarget::Command(index)),
            Some((container, sub)) => {
                let (index, spec) = table.lookup(container.as_bytes())?;
                spec.subcommands.iter().any(|s| s.name == sub).then(|| RuleTarget::FirstArg(index, sub.to_string()))
            }
        }
    }

    /// Whether a rule on `self` sets everything an earlier rule on `earlier` did, so that
    /// the earlier one no longer counts.
    fn covers(&self, earlier: &RuleTarget, table: &CommandTable) -> bool {
        let in_category = |category: &str, index: usize| {
            table.all().get(index).is_some_and(|spec| spec.info_categories().contains(&category))
        };
        match (self, earlier) {
            (later, earlier) if later == earlier => true,
            (RuleTarget::Command(index), RuleTarget::FirstArg(of, _)) => index == of,
            (RuleTarget::Category(category), RuleTarget::Command(index)) => in_category(category, *index),
            (RuleTarget::Category(category), RuleTarget::FirstArg(index, first_arg)) => {
                in_category(category, *index)
                    || table.all().get(*index).is_some_and(|spec| {
                        spec.subcommands
                            .iter()
                            .any(|sub| sub.name == first_arg && subcommand_categories(sub).contains(category))
                    })
            }
            _ => false,
        }
    }
}

/// Argument positions holding channel names (or patterns) that ACL channel rules cover.
fn channel_positions(spec: &CommandSpec, args: &[Bytes]) -> std::ops::Range<usize> {
    match spec.name {
        "publish" | "spublish" => 1..2.min(args.len()),
        "subscribe" | "ssubscribe" | "psubscribe" => 1..args.len(),
        _ => 0..0,
    }
}

fn valid_hash(hex: &[u8]) -> Result<String, &'static str> {
    let ok = hex.len() == 64 && hex.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    if ok {
        Ok(String::from_utf8_lossy(hex).into_owned())
    } else {
        Err(rule_error::BAD_HASH)
    }
}

/// Compare two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        let y = b.get(i % b.len().max(1)).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// One `ACL LOG` entry.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub count: u64,
    pub reason: &'static str,
    pub context: &'static str,
    pub object: String,
    pub username: String,
    /// Unix ms of the latest occurrence.
    pub updated: u64,
    pub client_info: String,
}

/// A user as it was before a change (`None`: it is new), and as it is after.
pub type UserChange = (Option<Arc<User>>, Arc<User>);

/// `acl-pubsub-default`'s values: a new user gets no channel, or every channel.
pub const PUBSUB_DEFAULTS: [&str; 2] = ["resetchannels", "allchannels"];

/// The rules `requirepass` stands for: the default user's one password, or none needed.
fn password_rules(password: Option<&[u8]>) -> [Vec<u8>; 2] {
    let password = password.map_or_else(|| b"nopass".to_vec(), |p| [&b">"[..], p].concat());
    [b"resetpass".to_vec(), password]
}

/// The users of an ACL file ([`Acl::parse_file`]).
#[derive(Debug)]
pub struct LoadedUsers {
    pub users: BTreeMap<String, User>,
    /// Whether the file has a `default` line (else `requirepass` applied to the built-in one).
    pub defines_default: bool,
}

/// Users, and the log of refusals.
#[derive(Debug)]
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    /// The built-in HTTP read-only user (used unless an ACL user of its name exists).
    http_readonly: Arc<User>,
    /// Bumped on every change of any user: clients re-resolve their user when it moves.
    version: AtomicU64,
    log: Mutex<VecDeque<LogEntry>>,
    log_max_len: AtomicUsize,
    /// `acl-pubsub-default`: whether a new user, or one `reset`, may use every channel
    /// (`allchannels`) or none (`resetchannels`, Redis 7.0's default).
    pubsub_default_all: AtomicBool,
}

/// Refusals within this window with the same reason, context, object and user share one
/// `ACL LOG` entry, as in Redis.
const LOG_GROUP_MS: u64 = 60_000;

impl Acl {
    pub fn new(table: &CommandTable) -> Acl {
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(User::default_user(table)));
        let mut http_readonly = User::new(HTTP_READONLY_USER, table);
        let _ = http_readonly.apply_all(HTTP_READONLY_RULES, table);
        Acl {
            users: RwLock::new(users),
            http_readonly: Arc::new(http_readonly),
            version: AtomicU64::new(1),
            log: Mutex::new(VecDeque::new()),
            log_max_len: AtomicUsize::new(128),
            pubsub_default_all: AtomicBool::new(false),
        }
    }

    /// `acl-pubsub-default`, by its Redis name.
    pub fn pubsub_default(&self) -> &'static str {
        let [none, all] = PUBSUB_DEFAULTS;
        if self.pubsub_default_all() {
            all
        } else {
            none
        }
    }

    /// Set `acl-pubsub-default` by its Redis name (any case); false for another name.
    pub fn set_pubsub_default(&self, name: &str) -> bool {
        let Some(all) = PUBSUB_DEFAULTS.iter().position(|n| n.eq_ignore_ascii_case(name)) else { return false };
        self.pubsub_default_all.store(all == 1, Ordering::Relaxed);
        true
    }

    fn pubsub_default_all(&self) -> bool {
        self.pubsub_default_all.load(Ordering::Relaxed)
    }

    /// A user as Redis creates it: nothing allowed, and the channels `acl-pubsub-default`
    /// gives.
    fn new_user(&self, name: &str, table: &CommandTable) -> User {
        let mut user = User::new(name, table);
        user.root.all_channels = self.pubsub_default_all();
        user
    }

    /// One rule on a user; `reset` and a new selector get the channels `acl-pubsub-default`
    /// gives.
    fn apply(&self, user: &mut User, rule: &[u8], table: &CommandTable) -> Result<(), &'static str> {
        user.apply_with_channels(rule, table, self.pubsub_default_all())
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The user a client names, if any: names are UTF-8 (ACL SETUSER refuses others), and a
    /// lossy conversion would make `bin\xff` name the user `bin\u{FFFD}`.
    pub fn user_named(&self, name: &[u8]) -> Option<Arc<User>> {
        std::str::from_utf8(name).ok().and_then(|name| self.user(name))
    }

    /// The user called `name`, if any.
    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        let found = self.users.read().get(name).cloned();
        found.or_else(|| (name == HTTP_READONLY_USER).then(|| self.http_readonly.clone()))
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// Whether a new connection starts unauthenticated: the default user has a password
    /// or is disabled.
    pub fn auth_required(&self) -> bool {
        self.user("default").is_none_or(|u| !(u.enabled && u.nopass))
    }

    /// `AUTH user pass`: `Ok` when the user exists, is enabled and the password matches.
    pub fn authenticate(&self, user: &[u8], password: &[u8]) -> Result<(), String> {
        // Names are UTF-8 (ACL SETUSER refuses others): a lossy lookup would let one
        // non-UTF-8 name log in as another.
        let name = std::str::from_utf8(user).unwrap_or_default();
        let found = self.users.read().get(name).cloned();
        match found {
            Some(u) if u.enabled && u.password_ok(password) => Ok(()),
            _ => Err("WRONGPASS invalid username-password pair or user is disabled.".into()),
        }
    }

    /// Create or change a user by applying `rules` to a copy of it; nothing changes unless
    /// every rule applies.
    pub fn set_user(
        &self,
        name: &str,
        rules: &[&[u8]],
        table: &CommandTable,
    ) -> Result<UserChange, (usize, &'static str)> {
        let mut users = self.users.write();
        let before = users.get(name).cloned();
        let mut user = before.as_deref().map_or_else(|| self.new_user(name, table), User::clone);
        for (i, rule) in rules.iter().enumerate() {
            self.apply(&mut user, rule, table).map_err(|e| (i, e))?;
        }
        let user = Arc::new(user);
        users.insert(name.to_string(), user.clone());
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok((before, user))
    }

    /// Delete users (never `default`); returns how many existed.
    pub fn delete_users(&self, names: &[String]) -> usize {
        let mut users = self.users.write();
        let deleted = names.iter().filter(|n| *n != "default" && users.remove(n.as_str()).is_some()).count();
        self.version.fetch_add(1, Ordering::AcqRel);
        deleted
    }

    /// `requirepass`: the default user's password (`None`: nopass).
    pub fn set_default_password(&self, password: Option<&[u8]>, table: &CommandTable) {
        let rules = password_rules(password);
        let _ = self.set_user("default", &rules.each_ref().map(Vec::as_slice), table);
    }

    /// Parse an ACL file (`user <name> <rules...>` lines, `path` naming it in errors) into
    /// users; errors name the lines, in Redis 7.0's words.
    ///
    /// A file without a `default` user gets the built-in one, with `requirepass` as its
    /// password if there is one (at start and at ACL LOAD alike; Redis 7.0 drops the password
    /// then, which left a server with `requirepass` open to anyone after an ACL LOAD).
    pub fn parse_file(
        &self,
        text: &str,
        table: &CommandTable,
        path: &str,
        requirepass: Option<&[u8]>,
    ) -> Result<LoadedUsers, String> {
        let mut users = BTreeMap::new();
        let mut errors = String::new();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let line = line.trim();
            // Comment lines are StayKV's own (Redis refuses them): a hand-kept file may say
            // why a user exists. ACL SAVE does not keep them.
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split(' ').filter(|w| !w.is_empty());
            let (Some("user"), Some(name)) = (words.next(), words.next()) else {
                errors.push_str(&format!("{path}:{n} should start with user keyword followed by the username. "));
                continue;
            };
            // In Redis's order: the user is made (or found a duplicate) before its rules are
            // read, so a later line of the same name is a duplicate whatever this one holds.
            if users.contains_key(name) {
                errors.push_str(&format!("WARNING: Duplicate user '{name}' found on line {n}. "));
                continue;
            }
            let mut user = self.new_user(name, table);
            let Ok(rules) = merge_selector_arguments(words.map(str::as_bytes)) else {
                errors.push_str(&format!("{path}:{n}: Unmatched parenthesis in selector definition."));
                users.insert(name.to_string(), user);
                continue;
            };
            let mut syntax_error = false;
            for rule in rules {
                match self.apply(&mut user, &rule, table) {
                    Ok(()) => {}
                    // As Redis: an unknown command is named (it holds no secret), every one on
                    // the line; any other failing rule is not (it may be a password), and only
                    // the line's first.
                    Err(e @ rule_error::UNKNOWN) => {
                        let rule = String::from_utf8_lossy(&rule);
                        errors.push_str(&format!("{path}:{n}: Error in applying operation '{rule}': {e}. "));
                    }
                    Err(e) if !syntax_error => {
                        errors.push_str(&format!("{path}:{n}: {e}. "));
                        syntax_error = true;
                    }
                    Err(_) => {}
                }
            }
            users.insert(name.to_string(), user);
        }
        if !errors.is_empty() {
            errors.push_str("WARNING: ACL errors detected, no change to the previously active ACL rules was performed");
            return Err(errors);
        }
        let defines_default = users.contains_key("default");
        if !defines_default {
            let mut default = User::default_user(table);
            for rule in password_rules(requirepass) {
                self.apply(&mut default, &rule, table).map_err(|e| format!("requirepass: {e}"))?;
            }
            users.insert("default".to_string(), default);
        }
        Ok(LoadedUsers { users, defines_default })
    }

    /// Replace every user (ACL LOAD, `--aclfile` at start). Returns each user before, with
    /// what replaced it (`None`: gone).
    pub fn replace_users(&self, new: BTreeMap<String, User>) -> Vec<(Arc<User>, Option<Arc<User>>)> {
        let mut users = self.users.write();
        let new: BTreeMap<String, Arc<User>> = new.into_iter().map(|(n, u)| (n, Arc::new(u))).collect();
        let replaced = users.values().map(|old| (old.clone(), new.get(&old.name).cloned())).collect();
        *users = new;
        self.version.fetch_add(1, Ordering::AcqRel);
        replaced
    }

    /// The ACL file text of the current users (ACL SAVE).
    pub fn file_text(&self) -> String {
        self.users.read().values().map(|u| format!("user {} {}\n", u.name, u.describe())).collect()
    }

    /// Record a refusal in the ACL LOG.
    pub fn log(&self, entry: LogEntry) {
        let max = self.log_max_len.load(Ordering::Relaxed);
        let mut log = self.log.lock();
        let same = log.iter().position(|e| {
            e.reason == entry.reason
                && e.context == entry.context
                && e.object == entry.object
                && e.username == entry.username
                && entry.updated.saturating_sub(e.updated) < LOG_GROUP_MS
        });
        let entry = match same.and_then(|i| log.remove(i)) {
            Some(mut old) => {
                old.count += 1;
                old.updated = entry.updated;
                old.client_info = entry.client_info;
                old
            }
            None => entry,
        };
        log.push_front(entry);
        log.truncate(max);
    }

    /// The newest `count` entries.
    pub fn log_entries(&self, count: usize) -> Vec<LogEntry> {
        self.log.lock().iter().take(count).cloned().collect()
    }

    pub fn log_reset(&self) {
        self.log.lock().clear();
    }

    pub fn log_max_len(&self) -> usize {
        self.log_max_len.load(Ordering::Relaxed)
    }

    pub fn set_log_max_len(&self, max: usize) {
        self.log_max_len.store(max, Ordering::Relaxed);
        self.log.lock().truncate(max);
    }
}

/// SHA-256 of `data` as 64 lowercase hex digits (how ACL passwords are stored).
pub fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    sha256(data).iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

/// SHA-256 (FIPS 180-4). Indices run over fixed-size arrays within their bounds.
#[allow(clippy::indexing_slicing)]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut message = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, wi) in K.iter().zip(w.iter()) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(*k).wrapping_add(*wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (state, add) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *state = state.wrapping_add(add);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn table() -> CommandTable {
        crate::cmd::table()
    }

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    fn check(user: &User, table: &CommandTable, words: &[&str]) -> Result<(), Denied> {
        let argv = args(words);
        let (index, spec) = table.lookup(&argv[0]).unwrap();
        user.check(index, spec, &argv)
    }

    #[test]
    fn sha256_vectors() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(sha256_hex(b"pw"), "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4");
        let long = vec![b'a'; 1_000];
        assert_eq!(sha256_hex(&long), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn describes_like_redis() {
        let table = table();
        let mut user = User::new("alice", &table);
        assert_eq!(user.describe(), "off resetchannels -@all");
        user.apply_all("on >pw ~session:* %R~ro:* &chan* +@read -get +config|get", &table).unwrap();
        assert_eq!(
            user.describe(),
            "on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~session:* %R~ro:* resetchannels &chan* -@all +@read -get +config|get"
        );
        assert_eq!(User::default_user(&table).describe(), "on nopass ~* &* +@all");
        user.apply(b"reset", &table).unwrap();
        assert_eq!(user.describe(), "off sanitize-payload resetchannels -@all");
    }

    #[test]
    fn rules_read_back_without_those_that_change_nothing() {
        let table = table();
        let cases = [
            ("+@all +get", "+@all"),
            ("-@all +get -get", "-@all"),
            ("-@all +memory|doctor +memory", "-@all +memory"),
            ("-@all +@read -get +get", "-@all +@read"),
            ("-@all +get +@read", "-@all +@read"),
            ("-@all +select|0 +select|1 -select", "-@all"),
            ("+@all -debug +debug|object", "+@all -debug +debug|object"),
            ("-@all +@hash -hset +@write", "-@all +@hash +@write"),
        ];
        for (rules, shown) in cases {
            let mut user = User::new("u", &table);
            user.apply_all(rules, &table).unwrap();
            assert_eq!(user.root.describe_commands(), shown, "{rules}");
            let mut again = User::new("u", &table);
            again.apply_all(shown, &table).unwrap();
            assert!(again.root.grants.same_as(&user.root.grants), "{rules} and {shown} allow the same");
        }
    }

    #[test]
    fn rule_errors() {
        let table = table();
        let mut user = User::new("bob", &table);
        assert_eq!(user.apply(b"+nosuch", &table), Err(rule_error::UNKNOWN));
        assert_eq!(user.apply(b"+@nosuch", &table), Err(rule_error::UNKNOWN));
        assert_eq!(user.apply(b"<nopw", &table), Err(rule_error::NO_SUCH_PASSWORD));
        assert_eq!(user.apply(b"#abc", &table), Err(rule_error::BAD_HASH));
        assert_eq!(user.apply(b"%X~a", &table), Err(rule_error::SYNTAX));
        assert_eq!(user.apply(b"bogus", &table), Err(rule_error::SYNTAX));
        assert_eq!(user.apply(b"+config|get|appendonly", &table), Err(rule_error::FIRST_ARG_OF_SUBCOMMAND));
        assert_eq!(user.apply(b"+config|nosuch", &table), Err(rule_error::UNKNOWN));
        assert_eq!(user.apply(b"-select|0", &table), Err(rule_error::UNKNOWN));
        assert_eq!(user.apply(b"+select|", &table), Err(rule_error::SYNTAX));
        user.apply(b"~x", &table).unwrap();
        user.apply(b"allkeys", &table).unwrap();
        assert_eq!(user.apply(b"~y", &table), Err(rule_error::KEY_AFTER_ALL));
        user.apply(b"allchannels", &table).unwrap();
        assert_eq!(user.apply(b"&y", &table), Err(rule_error::CHANNEL_AFTER_ALL));
    }

    #[test]
    fn passwords() {
        let table = table();
        let mut user = User::new("u", &table);
        user.apply_all("on >one >two", &table).unwrap();
        assert!(user.password_ok(b"one") && user.password_ok(b"two") && !user.password_ok(b"three"));
        user.apply(b"<one", &table).unwrap();
        assert!(!user.password_ok(b"one"));
        let hash = sha256_hex(b"three");
        user.apply(format!("#{hash}").as_bytes(), &table).unwrap();
        assert!(user.password_ok(b"three"));
        user.apply(format!("!{hash}").as_bytes(), &table).unwrap();
        assert!(!user.password_ok(b"three"));
        user.apply(b"nopass", &table).unwrap();
        assert!(user.password_ok(b"anything"));
        user.apply(b"resetpass", &table).unwrap();
        assert!(!user.password_ok(b"anything"));
    }

    #[test]
    fn permissions() {
        let table = table();
        let mut user = User::new("s", &table);
        user.apply_all("on nopass ~session:* +@read", &table).unwrap();
        assert_eq!(check(&user, &table, &["get", "session:1"]), Ok(()));
        assert_eq!(check(&user, &table, &["get", "other"]), Err(Denied::Key(1)));
        assert_eq!(check(&user, &table, &["mget", "session:1", "x"]), Err(Denied::Key(2)));
        assert_eq!(check(&user, &table, &["set", "session:1", "v"]), Err(Denied::Command));
        assert_eq!(check(&user, &table, &["auth", "x", "y"]), Ok(()));
        user.apply_all("+set %R~ro:* %W~wo:*", &table).unwrap();
        assert_eq!(check(&user, &table, &["set", "wo:1", "v"]), Ok(()));
        assert_eq!(check(&user, &table, &["get", "wo:1"]), Err(Denied::Key(1)));
        assert_eq!(check(&user, &table, &["get", "ro:1"]), Ok(()));
        assert_eq!(check(&user, &table, &["set", "ro:1", "v"]), Err(Denied::Key(1)));
        user.apply_all("+config|get +publish &news.*", &table).unwrap();
        assert_eq!(check(&user, &table, &["config", "get", "maxmemory"]), Ok(()));
        assert_eq!(check(&user, &table, &["config", "set", "maxmemory", "1"]), Err(Denied::Command));
        assert_eq!(check(&user, &table, &["publish", "news.a", "m"]), Ok(()));
        assert_eq!(check(&user, &table, &["publish", "sport", "m"]), Err(Denied::Channel(1)));
        let (_, spec) = table.lookup(b"config").unwrap();
        assert_eq!(
            Denied::Command.error(spec, &args(&["config", "SET", "x", "y"])),
            "NOPERM this user has no permissions to run the 'config|set' command"
        );
        let mut admin = User::default_user(&table);
        admin.apply(b"-@dangerous", &table).unwrap();
        assert_eq!(check(&admin, &table, &["flushall"]), Err(Denied::Command));
        assert_eq!(check(&admin, &table, &["get", "x"]), Ok(()));
        assert_eq!(admin.root.describe_commands(), "+@all -@dangerous");
    }

    #[test]
    fn a_command_runs_when_one_selector_allows_all_of_it() {
        let table = table();
        let mut user = User::new("alice", &table);
        user.apply_all("on nopass ~a* +get (~b* +set) (%R~c* +@read)", &table).unwrap();
        assert_eq!(check(&user, &table, &["set", "b1", "v"]), Ok(()));
        assert_eq!(check(&user, &table, &["get", "c1"]), Ok(()));
        assert_eq!(
            check(&user, &table, &["set", "a1", "v"]),
            Err(Denied::Key(1)),
            "a key refusal outranks a command's"
        );
        assert_eq!(check(&user, &table, &["set", "c1", "v"]), Err(Denied::Key(1)));
        // No selector allows MSET, though between them they allow both keys.
        assert_eq!(check(&user, &table, &["mset", "a1", "v", "b1", "v"]), Err(Denied::Command));
        let mut ranks = User::new("r", &table);
        ranks.apply_all("+mset ~a* +publish (+mset ~b*) (&news +subscribe)", &table).unwrap();
        assert_eq!(check(&ranks, &table, &["mset", "a", "1", "x", "1"]), Err(Denied::Key(3)), "the later key");
        assert_eq!(check(&ranks, &table, &["mset", "b", "1", "a", "1"]), Err(Denied::Key(3)));
        assert_eq!(check(&ranks, &table, &["subscribe", "sport"]), Err(Denied::Channel(1)));
        assert_eq!(check(&ranks, &table, &["subscribe", "news"]), Ok(()));
        assert!(ranks.channel_allowed(b"news", false) && !ranks.channel_allowed(b"sport", false));
        ranks.apply(b"(~* &* +@all)", &table).unwrap();
        assert!(ranks.unrestricted, "one selector allowing everything skips the checks");
        ranks.apply(b"clearselectors", &table).unwrap();
        assert!(!ranks.unrestricted && ranks.selectors().is_empty());
    }

    #[test]
    fn selectors_read_back_and_take_only_their_own_rules() {
        let table = table();
        let mut user = User::new("u", &table);
        user.apply_all("~a* +get (~Key* &Chan +GET) () (allkeys allchannels allcommands)", &table).unwrap();
        assert_eq!(
            user.describe(),
            "off ~a* resetchannels -@all +get (~Key* resetchannels &Chan -@all +get) (resetchannels -@all) (~* &* +@all)"
        );
        let mut again = User::new("u", &table);
        again.apply_all(&user.describe(), &table).unwrap();
        assert_eq!(again.describe(), user.describe());
        for (rule, error) in [
            (&b"(on)"[..], rule_error::SYNTAX),
            (b"(>pw)", rule_error::SYNTAX),
            (b"(reset)", rule_error::SYNTAX),
            (b"((+get))", rule_error::SYNTAX),
            (b"(+get)(+set)", rule_error::UNKNOWN),
            (b"(~* ~a*)", rule_error::KEY_AFTER_ALL),
            (b"(+get", rule_error::SYNTAX),
        ] {
            assert_eq!(user.apply(rule, &table), Err(error), "{}", String::from_utf8_lossy(rule));
        }
        user.apply(b"reset", &table).unwrap();
        assert!(user.selectors().is_empty(), "reset clears the selectors");
        let mut channels_for_all = User::new("c", &table);
        channels_for_all.apply_with_channels(b"(+get)", &table, true).unwrap();
        assert_eq!(channels_for_all.describe(), "off resetchannels -@all (&* -@all +get)");
    }

    #[test]
    fn selector_arguments_merge_as_in_redis() {
        let merge = |args: &[&str]| merge_selector_arguments(args.iter().map(|a| a.as_bytes()));
        let text =
            |rules: Vec<Vec<u8>>| rules.iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect::<Vec<_>>();
        assert_eq!(text(merge(&["on", "(~a*", "+get)", "(+set)", "x"]).unwrap()), ["on", "(~a* +get)", "(+set)", "x"]);
        assert_eq!(text(merge(&["(", "+get", ")"]).unwrap()), ["( +get )"]);
        assert_eq!(merge(&["(+get", "x"]).unwrap_err(), "Unmatched parenthesis in acl selector starting at '(+get'.");
        assert_eq!(merge(&["(a)b"]).unwrap_err(), "Unmatched parenthesis in acl selector starting at '(a)b'.");
        assert_eq!(text(merge(&["x(", ")"]).unwrap()), ["x(", ")"]);
    }

    #[test]
    fn acl_file_round_trip() {
        let table = table();
        let acl = Acl::new(&table);
        acl.set_user("alice", &[b"on", b">pw", b"~a*", b"+get", b"(~b* +set)"], &table).unwrap();
        let text = acl.file_text();
        let parsed = acl.parse_file(&text, &table, "users.acl", Some(b"ignored")).unwrap();
        assert_eq!(parsed.users.len(), 2);
        assert!(parsed.defines_default);
        assert_eq!(parsed.users["alice"].describe(), acl.user("alice").unwrap().describe());
        assert!(parsed.users["default"].nopass, "a default line in the file wins over requirepass");
        let bad = acl.parse_file("user x on +nosuch\nnonsense\nuser y (~a* +get\n", &table, "f", None).unwrap_err();
        assert!(bad.contains("f:1: Error in applying operation '+nosuch'") && bad.contains("f:2 should"), "{bad}");
        assert!(bad.contains("f:3: Unmatched parenthesis in selector definition.WARNING: ACL errors"), "{bad}");
        // A line whose selector is not closed still makes its user: a later line of the name
        // is a duplicate (Redis's order). Comment lines are skipped.
        let bad = acl.parse_file("# users\nuser y (~a* +get\nuser y on\n", &table, "f", None).unwrap_err();
        let expected =
            "f:2: Unmatched parenthesis in selector definition.WARNING: Duplicate user 'y' found on line 3. ";
        assert!(bad.starts_with(expected), "{bad}");
        // A failing rule other than an unknown command is not quoted: it may be a password.
        let bad = acl.parse_file("user x on #secret\n", &table, "f", None).unwrap_err();
        assert!(!bad.contains("secret") && bad.starts_with("f:1: The password hash must be"), "{bad}");
        let without_default = acl.parse_file("user bob on\n", &table, "f", None).unwrap();
        assert!(!without_default.defines_default && without_default.users["default"].nopass);
        // `requirepass` is the password of a default user the file leaves out.
        let with_password = acl.parse_file("user bob on\n", &table, "f", Some(b"secret")).unwrap();
        let default = &with_password.users["default"];
        assert!(!default.nopass && default.password_ok(b"secret") && !default.password_ok(b""));
    }

    #[test]
    fn authentication() {
        let table = table();
        let acl = Acl::new(&table);
        assert!(!acl.auth_required());
        acl.set_default_password(Some(b"secret"), &table);
        assert!(acl.auth_required());
        assert!(acl.authenticate(b"default", b"secret").is_ok());
        assert!(acl.authenticate(b"default", b"wrong").is_err());
        assert!(acl.authenticate(b"nobody", b"secret").is_err());
        assert!(acl.authenticate(HTTP_READONLY_USER.as_bytes(), b"").is_err());
        acl.set_user("off", &[b">pw"], &table).unwrap();
        assert!(acl.authenticate(b"off", b"pw").is_err());
    }

    #[test]
    fn http_readonly_user() {
        let table = table();
        let acl = Acl::new(&table);
        let user = acl.user(HTTP_READONLY_USER).unwrap();
        assert_eq!(check(&user, &table, &["get", "k"]), Ok(()));
        assert_eq!(check(&user, &table, &["ping"]), Ok(()));
        assert_eq!(check(&user, &table, &["set", "k", "v"]), Err(Denied::Command));
        assert_eq!(check(&user, &table, &["keys", "*"]), Err(Denied::Command));
        assert_eq!(check(&user, &table, &["subscribe", "news"]), Ok(()));
    }

    #[test]
    fn log_groups() {
        let table = table();
        let acl = Acl::new(&table);
        let entry = |object: &str, at| LogEntry {
            count: 1,
            reason: "key",
            context: "toplevel",
            object: object.into(),
            username: "u".into(),
            updated: at,
            client_info: String::new(),
        };
        acl.log(entry("a", 1000));
        acl.log(entry("a", 2000));
        acl.log(entry("b", 3000));
        let entries = acl.log_entries(10);
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].object.as_str(), entries[1].count), ("b", 2));
        acl.set_log_max_len(1);
        assert_eq!(acl.log_entries(10).len(), 1);
    }
}
