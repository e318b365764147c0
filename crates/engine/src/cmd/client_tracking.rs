//! The client-side caching subcommands of CLIENT: TRACKING, CACHING, GETREDIR and
//! TRACKINGINFO, with Redis 7.0's checks in its order and its error texts. The registry they
//! drive is [`crate::tracking`].

use bytes::Bytes;
use staykv_resp::Reply;

use super::{arg, int_arg, is, text};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::tracking::{Mode, Settings};

/// What `CLIENT TRACKING` was given after ON/OFF.
#[derive(Debug, Default)]
struct Requested {
    redirect: u64,
    bcast: bool,
    optin: bool,
    optout: bool,
    noloop: bool,
    prefixes: Vec<Bytes>,
}

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]`.
pub(super) fn tracking(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    let requested = parse_options(ctx, args)?;
    let switch = arg(args, 2)?;
    if is(switch, "off") {
        turn_off(ctx);
        return Ok(Reply::Ok);
    }
    if !is(switch, "on") {
        return Err(errors::syntax());
    }
    let settings = check_compatible(ctx, requested)?;
    ctx.client.tracking = Some(settings.mode);
    let deliver = ctx.client.deliver.as_ref().map(|d| d.0.clone());
    ctx.engine.tracking.enable(ctx.client.id, deliver, settings);
    Ok(Reply::Ok)
}

/// Turn tracking off for the client (CLIENT TRACKING OFF, RESET).
pub(crate) fn turn_off(ctx: &mut Ctx) {
    ctx.client.tracking = None;
    ctx.client.caching_given = false;
    ctx.engine.tracking.disable(ctx.client.id);
}

fn parse_options(ctx: &Ctx, args: &[Bytes]) -> Result<Requested, Reply> {
    let mut requested = Requested::default();
    let mut i = 3;
    while let Some(option) = args.get(i) {
        let value = args.get(i + 1);
        match (option, value) {
            (o, Some(id)) if is(o, "redirect") => {
                if requested.redirect != 0 {
                    return Err(err("ERR A client can only redirect to a single other client"));
                }
                let id = int_arg(id)?;
                // The target must exist now, though it may go away later (Redis's check).
                requested.redirect = u64::try_from(id)
                    .ok()
                    .filter(|&id| id != 0 && ctx.engine.tracking.has_peer(id))
                    .ok_or_else(|| err("ERR The client ID you want redirect to does not exist"))?;
                i += 1;
            }
            (o, Some(prefix)) if is(o, "prefix") => {
                requested.prefixes.push(prefix.clone());
                i += 1;
            }
            (o, _) if is(o, "bcast") => requested.bcast = true,
            (o, _) if is(o, "optin") => requested.optin = true,
            (o, _) if is(o, "optout") => requested.optout = true,
            (o, _) if is(o, "noloop") => requested.noloop = true,
            _ => return Err(errors::syntax()),
        }
        i += 1;
    }
    Ok(requested)
}

/// The checks of `CLIENT TRACKING ON`, against each other and the client's current mode.
fn check_compatible(ctx: &Ctx, requested: Requested) -> Result<Settings, Reply> {
    if !requested.bcast && !requested.prefixes.is_empty() {
        return Err(err("ERR PREFIX option requires BCAST mode to be enabled"));
    }
    let current = ctx.client.tracking;
    if current.is_some_and(|mode| (mode == Mode::Broadcast) != requested.bcast) {
        return Err(err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if requested.bcast && (requested.optin || requested.optout) {
        return Err(err("ERR OPTIN and OPTOUT are not compatible with BCAST"));
    }
    if requested.optin && requested.optout {
        return Err(err("ERR You can't specify both OPTIN mode and OPTOUT mode"));
    }
    let switching =
        (requested.optin && current == Some(Mode::OptOut)) || (requested.optout && current == Some(Mode::OptIn));
    if switching {
        return Err(err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if requested.bcast {
        check_prefix_overlaps(&ctx.engine.tracking.prefixes_of(ctx.client.id), &requested.prefixes)?;
    }
    let mode = match (requested.bcast, requested.optin, requested.optout) {
        (true, _, _) => Mode::Broadcast,
        (_, true, _) => Mode::OptIn,
        (_, _, true) => Mode::OptOut,
        _ => Mode::Default,
    };
    Ok(Settings { mode, noloop: requested.noloop, redirect: requested.redirect, prefixes: requested.prefixes })
}

/// Two prefixes overlap when one starts the other: a key under both would be sent twice.
/// Answers as Redis's check does — the given prefixes in order; for each, the first existing
/// prefix it overlaps, else the first later given one — but without comparing every pair: a
/// command may carry any number of prefixes, and the pairwise check took 5.6 s at 20,000.
fn check_prefix_overlaps(existing: &[Bytes], given: &[Bytes]) -> Result<(), Reply> {
    let Some((at, other)) = first_overlap(existing, given) else { return Ok(()) };
    let named = |list: &[Bytes], i: usize| text(list.get(i).map_or(&b""[..], |p| &p[..]));
    let (whose, other) = match other {
        Prefix::Existing(k) => ("an existing", named(existing, k)),
        Prefix::Given(j) => ("another provided", named(given, j)),
    };
    Err(Reply::Error(format!(
        "ERR Prefix '{}' overlaps with {whose} prefix '{other}'. Prefixes for a single client must not overlap.",
        named(given, at)
    )))
}

/// Where a prefix comes from. The derived order is the order Redis reports overlaps in:
/// existing prefixes before given ones, each by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Prefix {
    Existing(usize),
    Given(usize),
}

/// The first given prefix (by position) that overlaps another, and the one it overlaps, in
/// the order of [`check_prefix_overlaps`]. In byte order, the strings that start with `p`
/// follow `p` in one run, so an overlap always shows between neighbours (checked first), and
/// while no earlier prefix overlapped, that run holds only `p` and what `p` overlaps.
fn first_overlap(existing: &[Bytes], given: &[Bytes]) -> Option<(usize, Prefix)> {
    let mut sorted: Vec<(&[u8], Prefix)> = existing
        .iter()
        .enumerate()
        .map(|(k, p)| (&p[..], Prefix::Existing(k)))
        .chain(given.iter().enumerate().map(|(j, p)| (&p[..], Prefix::Given(j))))
        .collect();
    sorted.sort_unstable();
    if !sorted.windows(2).any(|pair| matches!(pair, [(a, _), (b, _)] if b.starts_with(a))) {
        return None;
    }
    let run_of = |start: &[u8]| {
        let from = sorted.partition_point(|(bytes, _)| *bytes < start);
        sorted.get(from..).unwrap_or_default().iter()
    };
    given.iter().enumerate().find_map(|(i, p)| {
        let longer = run_of(p).take_while(|(bytes, _)| bytes.starts_with(p));
        let shorter = (0..p.len()).flat_map(|len| {
            let start = p.get(..len).unwrap_or_default();
            run_of(start).take_while(move |(bytes, _)| *bytes == start)
        });
        let counts = |source: &Prefix| !matches!(source, Prefix::Given(j) if *j <= i);
        longer.chain(shorter).map(|(_, source)| *source).filter(counts).min().map(|other| (i, other))
    })
}

/// `CLIENT CACHING YES|NO`: in OPTIN mode, remember the next command's reads; in OPTOUT
/// mode, do not.
pub(super) fn caching(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    // Redis's first check is only that tracking is on, whatever its text says.
    let Some(mode) = ctx.client.tracking else {
        return Err(err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    };
    match arg(args, 2)? {
        yes if is(yes, "yes") && mode != Mode::OptIn => {
            Err(err("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."))
        }
        no if is(no, "no") && mode != Mode::OptOut => {
            Err(err("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."))
        }
        answer if is(answer, "yes") || is(answer, "no") => {
            ctx.client.caching_given = true;
            Ok(Reply::Ok)
        }
        _ => Err(errors::syntax()),
    }
}

/// `CLIENT GETREDIR`: the redirect target, 0 for none, -1 when tracking is off.
pub(super) fn getredir(ctx: &Ctx) -> Reply {
    match ctx.engine.tracking.info(ctx.client.id) {
        Some(info) => Reply::count(info.redirect),
        None => Reply::Int(-1),
    }
}

/// `CLIENT TRACKINGINFO`: flags, redirect and prefixes, as Redis lays them out.
pub(super) fn trackinginfo(ctx: &Ctx) -> Reply {
    let info = ctx.engine.tracking.info(ctx.client.id);
    let mut flags = vec![if info.is_some() { "on" } else { "off" }];
    if let Some(info) = &info {
        let caching = ctx.client.caching_given;
        match info.mode {
            Mode::Broadcast => flags.push("bcast"),
            Mode::OptIn => flags.extend(["optin"].into_iter().chain(caching.then_some("caching-yes"))),
            Mode::OptOut => flags.extend(["optout"].into_iter().chain(caching.then_some("caching-no"))),
            Mode::Default => {}
        }
        if info.noloop {
            flags.push("noloop");
        }
        if info.broken_redirect {
            flags.push("broken_redirect");
        }
    }
    let redirect = info.as_ref().map_or(Reply::Int(-1), |info| Reply::count(info.redirect));
    let prefixes = info.map(|info| info.prefixes).unwrap_or_default();
    Reply::Map(vec![
        (Reply::bulk_str("flags"), Reply::Set(flags.into_iter().map(Reply::bulk_str).collect())),
        (Reply::bulk_str("redirect"), redirect),
        (Reply::bulk_str("prefixes"), Reply::Array(prefixes.into_iter().map(Reply::Bulk).collect())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Redis's check as it is written: every given prefix against every existing one, then
    /// against every later given one.
    fn pairwise(existing: &[Bytes], given: &[Bytes]) -> Option<(usize, Prefix)> {
        let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
        given.iter().enumerate().find_map(|(i, p)| {
            let old = existing.iter().position(|old| overlap(old, p)).map(Prefix::Existing);
            let later = || given.iter().skip(i + 1).position(|q| overlap(q, p)).map(|j| Prefix::Given(i + 1 + j));
            old.or_else(later).map(|other| (i, other))
        })
    }

    #[test]
    fn overlaps_are_reported_as_the_pairwise_check_reports_them() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut overlapping = 0;
        for _ in 0..5000 {
            // Short prefixes over two letters, so that overlaps are common but not certain.
            let mut prefix = || -> Bytes {
                let len = rng.gen_range(0..4);
                (0..len).map(|_| if rng.gen_bool(0.5) { b'a' } else { b'b' }).collect::<Vec<u8>>().into()
            };
            let existing: Vec<Bytes> = (0..3).map(|_| prefix()).collect();
            let given: Vec<Bytes> = (0..4).map(|_| prefix()).collect();
            // Existing prefixes never overlap each other: they passed this check.
            if pairwise(&[], &existing).is_some() {
                continue;
            }
            let expected = pairwise(&existing, &given);
            overlapping += usize::from(expected.is_some());
            assert_eq!(first_overlap(&existing, &given), expected, "existing {existing:?}, given {given:?}");
        }
        assert!(overlapping > 100, "the cases must include overlaps: {overlapping}");
    }

    #[test]
    fn many_disjoint_prefixes_pass() {
        let given: Vec<Bytes> = (0..20_000).map(|i| Bytes::from(format!("p{i:06}:"))).collect();
        assert_eq!(first_overlap(&[], &given), None);
        let mut clash = given.clone();
        clash.push(Bytes::from_static(b"p019999:x"));
        assert_eq!(first_overlap(&[], &clash), Some((19_999, Prefix::Given(20_000))));
    }
}
