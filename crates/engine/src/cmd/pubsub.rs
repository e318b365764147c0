//! Pub/sub commands (Redis's `pubsub.c`): PUBLISH, (P)SUBSCRIBE, (P)UNSUBSCRIBE, PUBSUB.

use bytes::Bytes;
use staykv_resp::Reply;

use super::{arg, is};
use crate::command::{flags::*, CmdResult, CommandSpec, SubcommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::key_spec::{key::*, KeySpec};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("publish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, "pubsub", publish),
    CommandSpec::new("spublish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, "pubsub", spublish)
        .key_specs(&[KeySpec::index(1, NOT_KEY)]),
    CommandSpec::new("ssubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED_OK, "pubsub", ssubscribe)
        .key_specs(&[KeySpec::index(1, NOT_KEY).range(-1, 1, 0)]),
    CommandSpec::new("sunsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED_OK, "pubsub", sunsubscribe)
        .key_specs(&[KeySpec::index(1, NOT_KEY).range(-1, 1, 0)]),
    CommandSpec::new("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED_OK, "pubsub", subscribe),
    CommandSpec::new("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED_OK, "pubsub", unsubscribe),
    CommandSpec::new("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED_OK, "pubsub", psubscribe),
    CommandSpec::new("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED_OK, "pubsub", punsubscribe),
    CommandSpec::new("pubsub", -2, PUBSUB | LOADING | STALE, "pubsub", pubsub).subcommands(PUBSUB_SUBCOMMANDS),
    CommandSpec::new("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, "server", monitor),
];

/// MONITOR: from now on this client receives every command the server runs. Not from
/// inside EXEC, whose client expects one reply per command, as in Redis.
fn monitor(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.in_exec() {
        return Err(crate::errors::err("ERR MONITOR isn't allowed for DENY BLOCKING client"));
    }
    let deliver = subscriber(ctx)?;
    ctx.engine.pubsub.add_monitor(ctx.client.id, &deliver);
    Ok(Reply::Ok)
}

/// PUBLISH: the message reaches its subscribers once the command's (the script's, the
/// transaction's) writes are logged.
fn publish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let receivers = ctx.engine.pubsub.publish(arg(args, 1)?, arg(args, 2)?, ctx.deliveries());
    Ok(Reply::Int(receivers as i64))
}

fn spublish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let receivers = ctx.engine.pubsub.spublish(arg(args, 1)?, arg(args, 2)?, ctx.deliveries());
    Ok(Reply::Int(receivers as i64))
}

fn confirm(kind: &'static str, name: Option<&Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk_str(kind),
        name.map_or(Reply::Nil, |n| Reply::Bulk(n.clone())),
        Reply::Int(count as i64),
    ])
}

fn subscriber(ctx: &Ctx) -> Result<crate::pubsub::Deliver, Reply> {
    ctx.client.deliver.as_ref().map(|d| d.0.clone()).ok_or_else(|| err("ERR this client cannot subscribe"))
}

/// Channels, patterns or shard channels: the three kinds of subscription, handled by the
/// same code.
#[derive(Clone, Copy)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
            Kind::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }

    fn list(self, client: &mut crate::Client) -> &mut crate::client::Subscriptions {
        match self {
            Kind::Channel => &mut client.channels,
            Kind::Pattern => &mut client.patterns,
            Kind::Shard => &mut client.shard_channels,
        }
    }

    /// Drops `name` from the client's subscriptions of this kind. Redis keeps patterns in a
    /// list, whose order PUNSUBSCRIBE without arguments follows: kept. Its channels are a hash
    /// table, in no order: a swap, which takes no time however many there are.
    fn forget(self, client: &mut crate::Client, name: &[u8]) {
        match self {
            Kind::Pattern => client.patterns.shift_remove(name),
            Kind::Channel => client.channels.swap_remove(name),
            Kind::Shard => client.shard_channels.swap_remove(name),
        };
    }

    /// The count a confirmation reports: shard channels count apart, as in Redis 7.0.
    fn count(self, client: &crate::Client) -> usize {
        match self {
            Kind::Channel | Kind::Pattern => client.channels.len() + client.patterns.len(),
            Kind::Shard => client.shard_channels.len(),
        }
    }

    fn join(self, registry: &crate::pubsub::PubSub, client: u64, deliver: &crate::pubsub::Deliver, name: &Bytes) {
        match self {
            Kind::Channel => registry.subscribe(client, deliver, name, false),
            Kind::Shard => registry.subscribe(client, deliver, name, true),
            Kind::Pattern => registry.psubscribe(client, deliver, name),
        }
    }

    fn leave(self, registry: &crate::pubsub::PubSub, client: u64, name: &[u8]) {
        match self {
            Kind::Channel => registry.unsubscribe(client, name, false),
            Kind::Shard => registry.unsubscribe(client, name, true),
            Kind::Pattern => registry.punsubscribe(client, name),
        }
    }
}

fn subscribe_generic(ctx: &mut Ctx, args: &[Bytes], kind: Kind) -> CmdResult {
    let deliver = subscriber(ctx)?;
    let mut confirms = Vec::new();
    for name in args.iter().skip(1) {
        if kind.list(ctx.client).insert(name.clone()) {
            kind.join(&ctx.engine.pubsub, ctx.client.id, &deliver, name);
        }
        confirms.push(confirm(kind.names().0, Some(name), kind.count(ctx.client)));
    }
    ctx.host.client_updated(ctx.client);
    Ok(Reply::Many(confirms))
}

/// Without arguments, leave every subscription of the kind.
fn unsubscribe_generic(ctx: &mut Ctx, args: &[Bytes], kind: Kind) -> CmdResult {
    let targets: Vec<Bytes> = match args.len() {
        1 => kind.list(ctx.client).iter().cloned().collect(),
        _ => args.get(1..).unwrap_or_default().to_vec(),
    };
    let name = kind.names().1;
    if targets.is_empty() {
        return Ok(Reply::Many(vec![confirm(name, None, kind.count(ctx.client))]));
    }
    let mut confirms = Vec::new();
    for target in &targets {
        kind.leave(&ctx.engine.pubsub, ctx.client.id, target);
        kind.forget(ctx.client, target);
        confirms.push(confirm(name, Some(target), kind.count(ctx.client)));
    }
    ctx.host.client_updated(ctx.client);
    Ok(Reply::Many(confirms))
}

fn subscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    subscribe_generic(ctx, args, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    subscribe_generic(ctx, args, Kind::Pattern)
}

fn unsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_generic(ctx, args, Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_generic(ctx, args, Kind::Pattern)
}

/// SSUBSCRIBE: not from inside EXEC, as in Redis 7.0 (which lets SUBSCRIBE through there
/// only for backward compatibility).
fn ssubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.in_exec() {
        return Err(crate::errors::err("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client"));
    }
    subscribe_generic(ctx, args, Kind::Shard)
}

fn sunsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_generic(ctx, args, Kind::Shard)
}

/// PUBSUB's subcommands and their arities, as in Redis 7.0's command table (checked before
/// running: an unknown one or a wrong count is refused with Redis's errors).
const PUBSUB_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("channels", -2, PUBSUB | LOADING | STALE),
    SubcommandSpec::new("numpat", 2, PUBSUB | LOADING | STALE),
    SubcommandSpec::new("numsub", -2, PUBSUB | LOADING | STALE),
    SubcommandSpec::new("shardchannels", -2, PUBSUB | LOADING | STALE),
    SubcommandSpec::new("shardnumsub", -2, PUBSUB | LOADING | STALE),
    SubcommandSpec::new("help", 2, LOADING | STALE),
];

const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

fn pubsub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let registry = &ctx.engine.pubsub;
    match arg(args, 1)? {
        s if is(s, "help") => Ok(super::help(PUBSUB_HELP)),
        s if (is(s, "channels") || is(s, "shardchannels")) && args.len() <= 3 => {
            Ok(Reply::bulks(registry.channels(args.get(2).map(|p| &p[..]), is(s, "shardchannels"))))
        }
        // Past the table's arity check: Redis's own "or wrong number of arguments" error.
        s if is(s, "channels") || is(s, "shardchannels") => Err(crate::errors::subcommand_syntax(s, "pubsub")),
        s if is(s, "numsub") || is(s, "shardnumsub") => {
            let shard = is(s, "shardnumsub");
            Ok(Reply::Array(
                args.iter()
                    .skip(2)
                    .flat_map(|c| [Reply::Bulk(c.clone()), Reply::Int(registry.subscriber_count(c, shard) as i64)])
                    .collect(),
            ))
        }
        s if is(s, "numpat") && args.len() == 2 => Ok(Reply::Int(registry.pattern_count() as i64)),
        s => Err(errors::unknown_subcommand(s, "pubsub")),
    }
}

/// Drop every subscription of a client that is going away.
pub(crate) fn forget(ctx_engine: &crate::Engine, client: &mut crate::Client) {
    for channel in client.channels.drain(..) {
        ctx_engine.pubsub.unsubscribe(client.id, &channel, false);
    }
    for channel in client.shard_channels.drain(..) {
        ctx_engine.pubsub.unsubscribe(client.id, &channel, true);
    }
    if !client.patterns.is_empty() {
        client.patterns.clear();
        ctx_engine.pubsub.punsubscribe_all(client.id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use staykv_resp::Reply;

    use crate::client::Client;
    use crate::exec::{Engine, EngineOptions, NoJournal};

    const NOW: u64 = 1_700_000_000_000;

    fn error(reply: Reply) -> String {
        match reply {
            Reply::Error(e) => e,
            other => format!("{other:?}"),
        }
    }

    /// Redis 7.0's PUBSUB errors: the subcommand table's arity, the container's own message,
    /// and a subscribed RESP2 client told the full name (`pubsub|numpat`).
    #[test]
    fn pubsub_errors_name_the_subcommand_like_redis() {
        let engine = Engine::new(EngineOptions::default());
        let run = |client: &mut Client, line: &str| engine.run_line(client, NOW, &NoJournal, line).reply;
        let mut c = Client::new(1, true);
        assert_eq!(error(run(&mut c, "PUBSUB NUMPAT x")), "ERR wrong number of arguments for 'pubsub|numpat' command");
        assert_eq!(
            error(run(&mut c, "PUBSUB channels a b")),
            "ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB HELP."
        );
        assert_eq!(error(run(&mut c, "PUBSUB FOO")), "ERR unknown subcommand 'FOO'. Try PUBSUB HELP.");
        c.deliver = Some(crate::pubsub::ClientDeliver(Arc::new(|_| {})));
        run(&mut c, "SUBSCRIBE ch");
        assert_eq!(
            error(run(&mut c, "PUBSUB NUMPAT")),
            "ERR Can't execute 'pubsub|numpat': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        );
    }

    /// A connection that goes away stops being a MONITOR and a redirect target; a client that
    /// could take no messages (an HTTP request's) was neither and cannot be made one.
    #[test]
    fn a_disconnected_monitor_hears_no_more() {
        let engine = Engine::new(EngineOptions::default());
        let run = |client: &mut Client, line: &str| engine.run_line(client, NOW, &NoJournal, line).reply;
        let mut request = Client::new(2, true);
        assert_eq!(error(run(&mut request, "MONITOR")), "ERR this client cannot subscribe");
        let deliver: crate::pubsub::Deliver = Arc::new(|_| {});
        let mut monitor = Client::new(1, true);
        monitor.deliver = Some(crate::pubsub::ClientDeliver(deliver.clone()));
        engine.tracking.add_peer(1, deliver);
        assert_eq!(run(&mut monitor, "MONITOR"), Reply::Ok);
        assert!(engine.pubsub.has_monitors());
        engine.disconnect(&mut request, 0);
        assert!(engine.pubsub.has_monitors() && engine.tracking.has_peer(1));
        engine.disconnect(&mut monitor, 0);
        assert!(!engine.pubsub.has_monitors());
        assert!(!engine.tracking.has_peer(1));
    }
}
