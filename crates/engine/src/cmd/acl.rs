//! `ACL` and its subcommands, as in Redis 7.0 (the model lives in [`crate::acl`]).

use bytes::Bytes;
use rand::RngCore;
use staykv_resp::Reply;

use super::{arg, is, text};
use crate::acl::{self, Acl, User};
use crate::command::{flags::*, CmdResult, CommandSpec, Subcommand, SubcommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::host::ClientFilter;

pub static COMMANDS: &[CommandSpec] =
    &[CommandSpec::new("acl", -2, ADMIN | NOSCRIPT | LOADING | STALE, "server", acl).subcommands(ACL_SUBCOMMANDS)];

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
];

/// The ACL subcommands StayKV has, with Redis 7's arities (checked before the handler).
const ACL_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("genpass", -2, NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("getuser", 3, ADMIN | NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("save", 2, ADMIN | NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("cat", -2, NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("help", 2, LOADING | STALE),
    SubcommandSpec::new("log", -2, ADMIN | NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("users", 2, ADMIN | NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("list", 2, ADMIN | NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("deluser", -3, ADMIN | NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("setuser", -3, ADMIN | NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("whoami", 2, NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("dryrun", -4, ADMIN | NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("load", 2, ADMIN | NOSCRIPT | LOADING | STALE),
];

fn acl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = arg(args, 1)?;
    let name = String::from_utf8_lossy(sub).to_ascii_lowercase();
    // The subcommand and its arity were checked before running (`ACL_SUBCOMMANDS`), but for
    // the upper bounds that Redis's arities cannot say and its handler checks.
    if matches!(name.as_str(), "cat" | "log" | "genpass") && args.len() > 3 {
        return Err(errors::subcommand_syntax(sub, "acl"));
    }
    let engine = ctx.engine;
    let table = &engine.table;
    let acl = &engine.acl;
    match name.as_str() {
        "setuser" => {
            let user = valid_username(arg(args, 2)?)?;
            let rules = acl::merge_selector_arguments(args.iter().skip(3).map(|a| &a[..]))
                .map_err(|e| Reply::Error(format!("ERR {e}")))?;
            let rules: Vec<&[u8]> = rules.iter().map(Vec::as_slice).collect();
            let (before, after) = acl.set_user(&user, &rules, table).map_err(|(i, e)| {
                // Quoted as C's `%s` prints it: up to a NUL.
                let rule = rules.get(i).and_then(|r| r.split(|&c| c == 0).next()).map(text).unwrap_or_default();
                Reply::Error(format!("ERR Error in ACL SETUSER modifier '{rule}': {e}"))
            })?;
            if let Some(before) = before {
                cut_off_subscribers(ctx, &before, &after);
            }
            Ok(Reply::Ok)
        }
        "getuser" => {
            Ok(acl.user_named(arg(args, 2)?).filter(|u| is_listed(acl, u)).map_or(Reply::Nil, |u| describe(&u)))
        }
        "deluser" => {
            // A name that is not UTF-8 names no user (see `Acl::user_named`).
            let names: Vec<String> =
                args.iter().skip(2).filter_map(|a| std::str::from_utf8(a).ok().map(String::from)).collect();
            if names.iter().any(|n| n == "default") {
                return Err(err("ERR The 'default' user cannot be removed"));
            }
            let deleted = acl.delete_users(&names);
            for name in names {
                ctx.host.client_kill(&ClientFilter { user: Some(name), ..ClientFilter::default() });
            }
            Ok(Reply::Int(deleted as i64))
        }
        "list" => Ok(Reply::Array(
            acl.users().iter().map(|u| Reply::Bulk(Bytes::from(format!("user {} {}", u.name, u.describe())))).collect(),
        )),
        "users" => Ok(Reply::Array(acl.users().iter().map(|u| Reply::bulk_str(&u.name)).collect())),
        "whoami" => Ok(Reply::bulk_str(&ctx.client.user)),
        "cat" => cat(ctx, args.get(2)),
        "log" => log(ctx, args.get(2)),
        "save" => {
            if let Some(user) = acl.users().into_iter().find(|user| !user.is_text()) {
                return Err(Reply::Error(format!(
                    "ERR user '{}' has a key or channel pattern that is not UTF-8, which the ACL file cannot hold as it is",
                    user.name
                )));
            }
            ctx.host.acl_save(&acl.file_text()).map_err(Reply::Error)?;
            Ok(Reply::Ok)
        }
        "load" => {
            let (path, text) = ctx.host.acl_load().map_err(Reply::Error)?;
            // `requirepass` applies to a default user the file leaves out, as at start.
            let requirepass = ctx.host.config_get(b"requirepass").into_iter().next().map(|(_, value)| value);
            let requirepass = requirepass.filter(|password| !password.is_empty());
            let loaded = acl.parse_file(&text, table, &path, requirepass.as_deref().map(str::as_bytes));
            let loaded = loaded.map_err(|e| Reply::Error(format!("ERR {e}")))?;
            for (before, after) in acl.replace_users(loaded.users) {
                match after {
                    Some(after) => cut_off_subscribers(ctx, &before, &after),
                    None => {
                        ctx.host
                            .client_kill(&ClientFilter { user: Some(before.name.clone()), ..ClientFilter::default() });
                    }
                }
            }
            Ok(Reply::Ok)
        }
        "genpass" => genpass(args.get(2)),
        "dryrun" => dryrun(ctx, args),
        _ => Ok(super::help(HELP)),
    }
}

/// Redis's `ACLKillPubsubClientsIfNeeded`: once a user's channels narrow, its clients
/// subscribed to what it may no longer use are closed, so a revoked permission stops the
/// messages at once rather than at the next SUBSCRIBE.
fn cut_off_subscribers(ctx: &Ctx, before: &User, after: &User) {
    if after.channels_cover(before) {
        return;
    }
    let refused = ctx.engine.pubsub.subscribers_refused(|channel, literal| !after.channel_allowed(channel, literal));
    if !refused.is_empty() {
        ctx.host.client_kill(&ClientFilter {
            ids: Some(refused),
            user: Some(after.name.clone()),
            ..ClientFilter::default()
        });
    }
}

/// The built-in HTTP read-only user is not an ACL user until one is defined with its name.
fn is_listed(acl: &Acl, user: &User) -> bool {
    acl.users().iter().any(|u| u.name == user.name)
}

/// A username ACL SETUSER may create. Unlike Redis, StayKV keeps names as text, so a name
/// that is not UTF-8 is refused: two such names would otherwise become the same user.
fn valid_username(name: &[u8]) -> Result<String, Reply> {
    if name.is_empty() || name.iter().any(|&c| c == b' ' || c == 0) {
        return Err(err("ERR Usernames can't contain spaces or null characters"));
    }
    String::from_utf8(name.to_vec()).map_err(|_| err("ERR Usernames must be valid UTF-8 in StayKV"))
}

/// `ACL GETUSER`'s map.
fn describe(user: &User) -> Reply {
    let field = |name: &str| Reply::bulk_str(name);
    Reply::Map(vec![
        (field("flags"), Reply::Set(user.flag_names().into_iter().map(Reply::bulk_str).collect())),
        (field("passwords"), Reply::Array(user.passwords.iter().map(|p| Reply::bulk_str(p)).collect())),
        (field("commands"), Reply::bulk_str(&user.root().describe_commands())),
        (field("keys"), Reply::bulk_str(&user.root().describe_keys())),
        (field("channels"), Reply::bulk_str(&user.root().describe_channels())),
        (field("selectors"), Reply::Array(user.selectors().iter().map(describe_selector).collect())),
    ])
}

/// One of `ACL GETUSER`'s selectors.
fn describe_selector(selector: &acl::Selector) -> Reply {
    let field = |name: &str| Reply::bulk_str(name);
    Reply::Map(vec![
        (field("commands"), Reply::bulk_str(&selector.describe_commands())),
        (field("keys"), Reply::bulk_str(&selector.describe_keys())),
        (field("channels"), Reply::bulk_str(&selector.describe_channels())),
    ])
}

fn cat(ctx: &mut Ctx, category: Option<&Bytes>) -> CmdResult {
    let Some(category) = category else {
        return Ok(Reply::Array(acl::CATEGORIES.iter().map(|c| Reply::bulk_str(c)).collect()));
    };
    let name = text(category).to_ascii_lowercase();
    if !acl::CATEGORIES.contains(&name.as_str()) {
        return Err(errors::quoting_at_most(128, "ERR Unknown category '", category, "'"));
    }
    // Commands and subcommands, as COMMAND LIST FILTERBY ACLCAT lists them.
    let listed = ctx.engine.table.all().iter().flat_map(|spec| spec.listed());
    let members = listed.filter(|(_, categories)| categories.contains(&name.as_str()));
    Ok(Reply::Array(members.map(|(full_name, _)| Reply::Bulk(Bytes::from(full_name))).collect()))
}

fn log(ctx: &mut Ctx, option: Option<&Bytes>) -> CmdResult {
    let acl = &ctx.engine.acl;
    let count = match option {
        None => 10,
        Some(o) if is(o, "reset") => {
            acl.log_reset();
            return Ok(Reply::Ok);
        }
        // A negative count lists nothing, as in Redis.
        Some(o) => usize::try_from(super::int_arg(o)?).unwrap_or(0),
    };
    let now = ctx.now;
    let entries = acl.log_entries(count).into_iter().map(|e| {
        let field = |name: &str| Reply::bulk_str(name);
        Reply::Map(vec![
            (field("count"), Reply::count(e.count)),
            (field("reason"), Reply::bulk_str(e.reason)),
            (field("context"), Reply::bulk_str(e.context)),
            (field("object"), Reply::bulk_str(&e.object)),
            (field("username"), Reply::bulk_str(&e.username)),
            (field("age-seconds"), Reply::Double(now.saturating_sub(e.updated) as f64 / 1000.0)),
            (field("client-info"), Reply::bulk_str(&e.client_info)),
        ])
    });
    Ok(Reply::Array(entries.collect()))
}

fn genpass(bits: Option<&Bytes>) -> CmdResult {
    let bits = match bits {
        None => 256,
        Some(b) => match super::int_arg(b)? {
            n @ 1..=4096 => n as usize,
            _ => {
                return Err(err(
                    "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
                ))
            }
        },
    };
    let chars = bits.div_ceil(4);
    let mut random = vec![0u8; chars.div_ceil(2)];
    rand::thread_rng().fill_bytes(&mut random);
    let mut hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(chars);
    Ok(Reply::Bulk(Bytes::from(hex)))
}

fn dryrun(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = arg(args, 2)?;
    let user = ctx.engine.acl.user_named(name).ok_or_else(|| errors::quoting("ERR User '", name, "' not found"))?;
    let command = args.get(3..).unwrap_or_default();
    let not_found = || errors::quoting("ERR Command '", command.first().map_or(&[][..], |c| c), "' not found");
    let Some((index, spec)) = command.first().and_then(|c| ctx.engine.table.lookup(c)) else {
        return Err(not_found());
    };
    // Looked up as Redis's `lookupCommand` does: a container's subcommand, then its arity.
    match spec.subcommand(command) {
        Subcommand::Unknown => return Err(not_found()),
        Subcommand::WrongArity(sub) => return Err(errors::wrong_arity(&format!("{}|{sub}", spec.name))),
        Subcommand::Fine if !spec.arity_ok(command.len()) => return Err(errors::wrong_arity(spec.name)),
        Subcommand::Fine => {}
    }
    match user.check(index, spec, command) {
        Ok(()) => Ok(Reply::Ok),
        Err(denied) => {
            let object = denied.object(spec, command);
            let what = match denied {
                acl::Denied::Command => format!("run the '{object}' command"),
                acl::Denied::Key(_) => format!("access the '{object}' key"),
                acl::Denied::Channel(_) => format!("access the '{object}' channel"),
            };
            Ok(Reply::Bulk(Bytes::from(format!("This user has no permissions to {what}"))))
        }
    }
}
