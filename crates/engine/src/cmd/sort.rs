//! SORT and SORT_RO (Redis's `sort.c`), with BY and GET patterns over other keys.

use std::cmp::Ordering;

use bytes::Bytes;
use staykv_resp::Reply;

use super::{arg, int_arg, is};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::keyspace::NO_EXPIRY;
use crate::value::Value;

// BY and GET patterns may name any key, so SORT locks every shard.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sort", -2, WRITE | DENYOOM | ALL_SHARDS, "list", sort).keys(1, 1, 1),
    CommandSpec::new("sort_ro", -2, READONLY | ALL_SHARDS, "list", sort_ro).keys(1, 1, 1),
];

struct Options {
    by: Option<Bytes>,
    limit: Option<(i64, i64)>,
    gets: Vec<Bytes>,
    desc: bool,
    alpha: bool,
    store: Option<Bytes>,
}

fn parse(args: &[Bytes], read_only: bool) -> Result<Options, Reply> {
    let mut o = Options { by: None, limit: None, gets: Vec::new(), desc: false, alpha: false, store: None };
    let mut i = 2;
    while let Some(option) = args.get(i) {
        let next = args.get(i + 1);
        match option {
            a if is(a, "asc") => o.desc = false,
            a if is(a, "desc") => o.desc = true,
            a if is(a, "alpha") => o.alpha = true,
            a if is(a, "limit") && i + 2 < args.len() => {
                o.limit = Some((int_arg(arg(args, i + 1)?)?, int_arg(arg(args, i + 2)?)?));
                i += 2;
            }
            a if is(a, "store") && !read_only && next.is_some() => {
                o.store = next.cloned();
                i += 1;
            }
            a if is(a, "by") && next.is_some() => {
                o.by = next.cloned();
                i += 1;
            }
            a if is(a, "get") && next.is_some() => {
                o.gets.extend(next.cloned());
                i += 1;
            }
            _ => return Err(errors::syntax()),
        }
        i += 1;
    }
    Ok(o)
}

fn sort(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, true)
}

/// The value a BY/GET pattern names for `element`: `#` is the element itself; otherwise the
/// first `*` is replaced by it, and `key->field` reads a hash field.
fn lookup_pattern(ctx: &mut Ctx, pattern: &[u8], element: &Bytes) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(element.clone());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let (prefix, rest) = (pattern.get(..star)?, pattern.get(star + 1..)?);
    let arrow = rest.windows(2).position(|w| w == b"->").filter(|&at| at + 2 < rest.len());
    let (suffix, field) = match arrow {
        Some(at) => (rest.get(..at)?, rest.get(at + 2..)),
        None => (rest, None),
    };
    let mut key = Vec::with_capacity(prefix.len() + element.len() + suffix.len());
    key.extend_from_slice(prefix);
    key.extend_from_slice(element);
    key.extend_from_slice(suffix);
    match (&ctx.lookup_read(&key)?.value, field) {
        (Value::Str(s), None) => Some(s.clone()),
        (Value::Hash(h), Some(field)) => h.get(field).cloned(),
        _ => None,
    }
}

fn sort_generic(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> CmdResult {
    let key = arg(args, 1)?;
    let o = parse(args, read_only)?;
    let mut elements: Vec<Bytes> = match ctx.lookup_read(key).map(|e| &e.value) {
        None => Vec::new(),
        Some(Value::List(l)) => l.iter().cloned().collect(),
        Some(Value::Set(s)) => s.iter().cloned().collect(),
        Some(_) => return Err(errors::wrong_type()),
    };
    // `BY` a pattern without `*` (conventionally `nosort`) keeps the collection's order.
    let dont_sort = o.by.as_ref().is_some_and(|p| !p.contains(&b'*'));
    if !dont_sort {
        let mut weighted = Vec::with_capacity(elements.len());
        for element in elements {
            let weight = match &o.by {
                Some(pattern) => lookup_pattern(ctx, pattern, &element),
                None => Some(element.clone()),
            };
            weighted.push((element, weight));
        }
        let mut scored = Vec::with_capacity(weighted.len());
        for (element, weight) in weighted {
            let score = match (o.alpha, &weight) {
                (true, _) | (false, None) => 0.0,
                (false, Some(w)) => crate::num::parse_f64(w)
                    .filter(|s| !s.is_nan())
                    .ok_or_else(|| err("ERR One or more scores can't be converted into double"))?,
            };
            scored.push((element, weight, score));
        }
        scored.sort_by(|a, b| {
            let order = match o.alpha {
                true => a.1.cmp(&b.1),
                false => a.2.partial_cmp(&b.2).unwrap_or(Ordering::Equal),
            };
            // Equal weights fall back to the elements themselves, so the result is deterministic.
            let order = order.then_with(|| a.0.cmp(&b.0));
            if o.desc {
                order.reverse()
            } else {
                order
            }
        });
        elements = scored.into_iter().map(|(element, _, _)| element).collect();
    }
    let len = elements.len();
    let (start, count) = match o.limit {
        None => (0, len),
        Some((offset, count)) => {
            let start = usize::try_from(offset.max(0)).unwrap_or(usize::MAX).min(len);
            let count = if count < 0 { len } else { usize::try_from(count).unwrap_or(usize::MAX) };
            (start, count.min(len - start))
        }
    };
    let selected = elements.get(start..start + count).unwrap_or_default().to_vec();
    let mut output: Vec<Option<Bytes>> = Vec::new();
    for element in &selected {
        if o.gets.is_empty() {
            output.push(Some(element.clone()));
        }
        for pattern in &o.gets {
            output.push(lookup_pattern(ctx, pattern, element));
        }
    }
    let Some(dst) = o.store else {
        return Ok(Reply::Array(output.into_iter().map(|v| v.map_or(Reply::Nil, Reply::Bulk)).collect()));
    };
    store(ctx, &dst, output)
}

fn store(ctx: &mut Ctx, dst: &Bytes, items: Vec<Option<Bytes>>) -> CmdResult {
    let count = items.len();
    let existed = ctx.lookup(dst).is_some();
    ctx.remove(dst);
    if existed || count > 0 {
        ctx.propagate(vec![Bytes::from_static(b"DEL"), dst.clone()]);
    }
    if count > 0 {
        let list: Vec<Bytes> = items.into_iter().map(Option::unwrap_or_default).collect();
        let mut effect = vec![Bytes::from_static(b"RPUSH"), dst.clone()];
        effect.extend(list.iter().cloned());
        ctx.store(dst, Value::List(list.into_iter().collect()), NO_EXPIRY);
        ctx.propagate(effect);
    }
    Ok(Reply::Int(count as i64))
}
