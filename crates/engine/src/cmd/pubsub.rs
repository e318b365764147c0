//! Pub/sub commands (Redis's `pubsub.c`): PUBLISH, (P)SUBSCRIBE, (P)UNSUBSCRIBE, PUBSUB.

use bytes::Bytes;
use staykv_resp::Reply;

use super::{arg, is};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("publish", 3, PUBSUB | LOADING | STALE | FAST, "pubsub", publish),
    CommandSpec::new("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED_OK, "pubsub", subscribe),
    CommandSpec::new("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED_OK, "pubsub", unsubscribe),
    CommandSpec::new("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED_OK, "pubsub", psubscribe),
    CommandSpec::new("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED_OK, "pubsub", punsubscribe),
    CommandSpec::new("pubsub", -2, PUBSUB | LOADING | STALE, "pubsub", pubsub),
    CommandSpec::new("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, "server", monitor),
];

/// MONITOR: from now on this client receives every command the server runs.
fn monitor(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let deliver = subscriber(ctx)?;
    ctx.engine.pubsub.add_monitor(ctx.client.id, &deliver);
    Ok(Reply::Ok)
}

fn publish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.engine.pubsub.publish(arg(args, 1)?, arg(args, 2)?) as i64))
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

fn subscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let deliver = subscriber(ctx)?;
    let mut confirms = Vec::new();
    for channel in args.iter().skip(1) {
        if !ctx.client.channels.contains(channel) {
            ctx.engine.pubsub.subscribe(ctx.client.id, &deliver, channel);
            ctx.client.channels.push(channel.clone());
        }
        confirms.push(confirm("subscribe", Some(channel), ctx.client.subscription_count()));
    }
    Ok(Reply::Many(confirms))
}

fn psubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let deliver = subscriber(ctx)?;
    let mut confirms = Vec::new();
    for pattern in args.iter().skip(1) {
        if !ctx.client.patterns.contains(pattern) {
            ctx.engine.pubsub.psubscribe(ctx.client.id, &deliver, pattern);
            ctx.client.patterns.push(pattern.clone());
        }
        confirms.push(confirm("psubscribe", Some(pattern), ctx.client.subscription_count()));
    }
    Ok(Reply::Many(confirms))
}

fn unsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let targets: Vec<Bytes> = match args.len() {
        1 => ctx.client.channels.clone(),
        _ => args.get(1..).unwrap_or_default().to_vec(),
    };
    if targets.is_empty() {
        return Ok(Reply::Many(vec![confirm("unsubscribe", None, ctx.client.subscription_count())]));
    }
    let mut confirms = Vec::new();
    for channel in &targets {
        ctx.engine.pubsub.unsubscribe(ctx.client.id, channel);
        ctx.client.channels.retain(|c| c != channel);
        confirms.push(confirm("unsubscribe", Some(channel), ctx.client.subscription_count()));
    }
    Ok(Reply::Many(confirms))
}

fn punsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let targets: Vec<Bytes> = match args.len() {
        1 => ctx.client.patterns.clone(),
        _ => args.get(1..).unwrap_or_default().to_vec(),
    };
    if targets.is_empty() {
        return Ok(Reply::Many(vec![confirm("punsubscribe", None, ctx.client.subscription_count())]));
    }
    let mut confirms = Vec::new();
    for pattern in &targets {
        ctx.engine.pubsub.punsubscribe(ctx.client.id, pattern);
        ctx.client.patterns.retain(|p| p != pattern);
        confirms.push(confirm("punsubscribe", Some(pattern), ctx.client.subscription_count()));
    }
    Ok(Reply::Many(confirms))
}

fn pubsub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let registry = &ctx.engine.pubsub;
    match arg(args, 1)? {
        s if is(s, "channels") && args.len() <= 3 => Ok(Reply::bulks(registry.channels(args.get(2).map(|p| &p[..])))),
        s if is(s, "numsub") => Ok(Reply::Array(
            args.iter()
                .skip(2)
                .flat_map(|c| [Reply::Bulk(c.clone()), Reply::Int(registry.subscriber_count(c) as i64)])
                .collect(),
        )),
        s if is(s, "numpat") && args.len() == 2 => Ok(Reply::Int(registry.pattern_count() as i64)),
        s => Err(errors::unknown_subcommand(s, "pubsub")),
    }
}

/// Drop every subscription of a client that is going away.
pub(crate) fn forget(ctx_engine: &crate::Engine, client: &mut crate::Client) {
    for channel in client.channels.drain(..) {
        ctx_engine.pubsub.unsubscribe(client.id, &channel);
    }
    for pattern in client.patterns.drain(..) {
        ctx_engine.pubsub.punsubscribe(client.id, &pattern);
    }
}
