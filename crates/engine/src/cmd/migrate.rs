//! MIGRATE (Redis's `migrateCommand`): keys go to another server as RESTOREs of their DUMP
//! payloads, and, without COPY, leave this one once the target took them. The exchange
//! itself is the host's ([`crate::host::Host::exchange_with`]): the engine builds the
//! commands and reads the replies.
//!
//! Redis keeps a connection per target for ten seconds; StayKV opens one per MIGRATE, so
//! nothing about a target outlives the command (INFO's `migrate_cached_sockets` is 0).

use bytes::Bytes;
use staykv_resp::Reply;

use super::{arg, int_arg, is};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::host::{MigrateTarget, TargetFailure};
use crate::key_spec::{key::*, FoundKey, KeySpec};
use crate::keyspace::NO_EXPIRY;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("migrate", -6, WRITE | MAY_REPLICATE, "keyspace", migrate)
    .categories(&["dangerous"])
    .key_finder(migrate_keys)
    .flagged_keys(migrate_flagged_keys)
    .key_specs(&[
        KeySpec::index(3, RW | ACCESS | DELETE),
        KeySpec::keyword("KEYS", -2, RW | ACCESS | DELETE | INCOMPLETE).range(-1, 1, 0),
    ])
    .tips(&["nondeterministic_output"])];

/// What follows MIGRATE's five fixed arguments, walked once, as Redis's `migrateCommand`
/// and `migrateGetKeys` walk it: AUTH's and AUTH2's values are skipped (a password spelled
/// "keys" is no option), KEYS takes every argument after it. The command, its key finder
/// and the slow log's redaction all read this one walk.
#[derive(Default)]
pub(crate) struct Options {
    copy: bool,
    replace: bool,
    /// Where AUTH2's username is.
    pub(crate) user_at: Option<usize>,
    /// Where AUTH's or AUTH2's password is.
    pub(crate) password_at: Option<usize>,
    /// Where the KEYS option's keys start; without it, the one key is argument 3.
    keys_from: Option<usize>,
    /// An unknown option, or AUTH or AUTH2 short of its values: a syntax error.
    malformed: bool,
}

impl Options {
    pub(crate) fn of(args: &[Bytes]) -> Options {
        let mut options = Options::default();
        let mut i = 6;
        while let Some(option) = args.get(i) {
            let more = args.len() - 1 - i;
            match option {
                o if is(o, "copy") => options.copy = true,
                o if is(o, "replace") => options.replace = true,
                o if is(o, "auth") && more >= 1 => {
                    (options.user_at, options.password_at) = (None, Some(i + 1));
                    i += 1;
                }
                o if is(o, "auth2") && more >= 2 => {
                    (options.user_at, options.password_at) = (Some(i + 1), Some(i + 2));
                    i += 2;
                }
                o if is(o, "keys") => {
                    options.keys_from = Some(i + 1);
                    break;
                }
                _ => options.malformed = true,
            }
            i += 1;
        }
        options
    }
}

/// The keys of a MIGRATE line (Redis's `migrateGetKeys`): argument 3, or those after KEYS
/// when the key argument is empty.
/// MIGRATE's keys with their flags (each is read, then deleted here): none when a key is
/// named beside KEYS, the syntax error MIGRATE answers, as Redis's `migrateGetKeys`.
fn migrate_flagged_keys(args: &[Bytes]) -> Vec<FoundKey> {
    let named_twice = Options::of(args).keys_from.is_some() && args.get(3).is_some_and(|key| !key.is_empty());
    let positions = if named_twice { Vec::new() } else { migrate_keys(args) };
    positions.into_iter().map(|position| FoundKey { position, flags: RW | ACCESS | DELETE }).collect()
}

pub fn migrate_keys(args: &[Bytes]) -> Vec<usize> {
    match Options::of(args).keys_from {
        Some(from) if args.get(3).is_some_and(|key| key.is_empty()) => (from..args.len()).collect(),
        _ => vec![3],
    }
}

/// One key on its way: its name, the milliseconds it has left (0: none), its DUMP payload.
struct Moving {
    key: Bytes,
    ttl_ms: u64,
    payload: Bytes,
}

/// `MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS k...]`.
fn migrate(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let options = Options::of(args);
    // An option before KEYS fails first in Redis; after KEYS every argument is a key.
    if options.malformed {
        return Err(errors::syntax());
    }
    if options.keys_from.is_some() && !arg(args, 3)?.is_empty() {
        return Err(err("ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"));
    }
    // Redis reads the timeout first: either error reads the same.
    let timeout = int_arg(arg(args, 5)?)?;
    let db = int_arg(arg(args, 4)?)?;
    let keys = match options.keys_from {
        Some(from) => args.get(from..).unwrap_or_default(),
        None => args.get(3..4).unwrap_or_default(),
    };
    let moving = collect(ctx, keys);
    if moving.is_empty() {
        return Ok(Reply::Status("NOKEY"));
    }
    let port = String::from_utf8_lossy(arg(args, 2)?).parse().unwrap_or(0);
    let timeout_ms = u64::try_from(timeout).ok().filter(|&t| t > 0).unwrap_or(1000);
    let target = MigrateTarget { host: String::from_utf8_lossy(arg(args, 1)?).into_owned(), port, timeout_ms };
    let commands = commands(args, &options, db, &moving);
    let (replies, failure) = ctx.host.exchange_with(&target, &commands);
    let preamble = commands.len() - moving.len();
    let (preamble_replies, key_replies) = replies.split_at(preamble.min(replies.len()));
    // As Redis: the first error the target gave (to AUTH, SELECT, or a RESTORE) is the reply;
    // a key is taken if its RESTORE answered and nothing before it in the preamble failed.
    let preamble_failed = preamble_replies.iter().find(|line| line.starts_with('-'));
    let mut first_error = preamble_failed.filter(|_| !key_replies.is_empty());
    let mut taken = vec![Bytes::from_static(b"DEL")];
    for (moved, line) in moving.iter().zip(key_replies) {
        if preamble_failed.is_some() || line.starts_with('-') {
            first_error = first_error.or(Some(line));
        } else if !options.copy {
            taken.push(moved.key.clone());
        }
    }
    if taken.len() > 1 {
        super::keys::delete_keys(ctx, &taken, false)?;
    }
    if let Some(line) = first_error {
        return Err(Reply::Error(format!(
            "ERR Target instance replied with error: {}",
            line.get(1..).unwrap_or_default()
        )));
    }
    match failure {
        Some(TargetFailure::Connect) => Err(err("IOERR error or timeout connecting to the client")),
        Some(TargetFailure::Write) => Err(err("IOERR error or timeout writing to target instance")),
        Some(TargetFailure::Read) => Err(err("IOERR error or timeout reading to target instance")),
        None => Ok(Reply::Ok),
    }
}

/// The keys there are, with what RESTORE needs; an expired key is left out, as a missing one.
fn collect(ctx: &mut Ctx, keys: &[Bytes]) -> Vec<Moving> {
    let now = ctx.now;
    keys.iter()
        .filter_map(|key| {
            let entry = ctx.lookup_read(key)?;
            let ttl_ms = if entry.expire_at == NO_EXPIRY { 0 } else { entry.expire_at.saturating_sub(now).max(1) };
            let layout = crate::rdbconv::dump_layout(&entry.value, entry.encoding);
            let payload = staykv_rdb::encode_dump_payload(&crate::rdbconv::to_rdb(&entry.value), layout);
            Some(Moving { key: key.clone(), ttl_ms, payload: Bytes::from(payload) })
        })
        .collect()
}

/// What the target is sent: AUTH if asked, SELECT, then a RESTORE per key.
fn commands(args: &[Bytes], options: &Options, db: i64, moving: &[Moving]) -> Vec<Vec<Bytes>> {
    let mut commands = Vec::with_capacity(moving.len() + 2);
    if let Some(password) = options.password_at.and_then(|at| args.get(at)) {
        let user = options.user_at.and_then(|at| args.get(at));
        commands
            .push([Bytes::from_static(b"AUTH")].into_iter().chain(user.cloned()).chain([password.clone()]).collect());
    }
    commands.push(vec![Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())]);
    for moved in moving {
        let mut restore = vec![
            Bytes::from_static(b"RESTORE"),
            moved.key.clone(),
            Bytes::from(moved.ttl_ms.to_string()),
            moved.payload.clone(),
        ];
        if options.replace {
            restore.push(Bytes::from_static(b"REPLACE"));
        }
        commands.push(restore);
    }
    commands
}
