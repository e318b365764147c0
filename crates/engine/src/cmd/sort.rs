//! SORT and SORT_RO (Redis's `sort.c`), with BY and GET patterns over other keys.

use std::cmp::Ordering;

use bytes::Bytes;
use staykv_resp::Reply;

use super::{arg, int_arg, is};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::key_spec::{key::*, FoundKey, KeySpec};
use crate::list::List;
use crate::value::Value;

// BY and GET patterns may name any key, so SORT locks every shard.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sort", -2, WRITE | DENYOOM | ALL_SHARDS, "list", sort).categories(&["set", "sortedset", "dangerous"]).key_finder(sort_keys).flagged_keys(sort_flagged_keys).key_specs(&[KeySpec::index(1, RO | ACCESS), KeySpec::unknown(RO | ACCESS).note("For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"), KeySpec::unknown(OW | UPDATE).note("For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array")]),
    CommandSpec::new("sort_ro", -2, READONLY | ALL_SHARDS, "list", sort_ro).categories(&["set", "sortedset", "dangerous"]).flagged_keys(sort_ro_flagged_keys).key_specs(&[KeySpec::index(1, RO | ACCESS), KeySpec::unknown(RO | ACCESS).note("For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort")]),
];

/// SORT's keys as Redis 7.0's `sortGetKeys` finds them: the source, and the argument after
/// the last STORE (LIMIT's two arguments and BY's and GET's one are passed over).
fn sort_keys(args: &[Bytes]) -> Vec<usize> {
    let mut keys = vec![1];
    let mut i = 2;
    let mut store = None;
    while let Some(option) = args.get(i) {
        match option {
            a if is(a, "limit") => i += 2,
            a if is(a, "get") || is(a, "by") => i += 1,
            a if is(a, "store") && i + 1 < args.len() => store = Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    keys.extend(store);
    keys
}

/// SORT's keys with their flags, which its key specs cannot give: the source is read, the
/// STORE destination overwritten.
fn sort_flagged_keys(args: &[Bytes]) -> Vec<FoundKey> {
    let flags_at = |position| if position == 1 { RO | ACCESS } else { OW | UPDATE };
    sort_keys(args).into_iter().map(|position| FoundKey { position, flags: flags_at(position) }).collect()
}

/// SORT_RO's one key: BY and GET patterns name keys only the sorted values tell.
fn sort_ro_flagged_keys(_args: &[Bytes]) -> Vec<FoundKey> {
    vec![FoundKey { position: 1, flags: RO | ACCESS }]
}

struct Options {
    by: Option<Bytes>,
    /// A `BY` without `*` (conventionally `nosort`) was given: the collection keeps its
    /// order, even if a later `BY` names a pattern (as in Redis, whose flag stays set).
    dont_sort: bool,
    limit: Option<(i64, i64)>,
    gets: Vec<Bytes>,
    desc: bool,
    alpha: bool,
    store: Option<Bytes>,
}

/// SORT's options, in order; `may_read_any_key` is asked when a BY or GET pattern could name
/// any key ([`may_read_any_key`]).
fn parse(args: &[Bytes], read_only: bool, may_read_any_key: impl Fn() -> bool) -> Result<Options, Reply> {
    let mut o =
        Options { by: None, dont_sort: false, limit: None, gets: Vec::new(), desc: false, alpha: false, store: None };
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
                // A BY without `*` names no key: it only turns sorting off.
                if next.is_some_and(|pattern| pattern.contains(&b'*')) && !may_read_any_key() {
                    return Err(err("ERR BY option of SORT denied due to insufficient ACL permissions."));
                }
                // Redis looks for the `*` in a C string: past a NUL byte it is not seen.
                let named = next.map(|p| p.split(|&c| c == 0).next().unwrap_or_default().contains(&b'*'));
                o.dont_sort |= named == Some(false);
                o.by = next.cloned();
                i += 1;
            }
            a if is(a, "get") && next.is_some() => {
                if !may_read_any_key() {
                    return Err(err("ERR GET option of SORT denied due to insufficient ACL permissions."));
                }
                o.gets.extend(next.cloned());
                i += 1;
            }
            _ => return Err(errors::syntax()),
        }
        i += 1;
    }
    Ok(o)
}

/// Whether the client may use BY and GET patterns, which read keys no ACL check saw: as in
/// Redis 7.0, only when one of its user's selectors allows this SORT and reads every key
/// (`~*`, `allkeys` or `%R~*`). Otherwise `~list:* +sort` could read any key through them.
/// The user is the one the ACL check of this very SORT resolved (`Client::acl_user`).
fn may_read_any_key(ctx: &Ctx, args: &[Bytes]) -> bool {
    if ctx.client.acl_exempt {
        return true;
    }
    let Some((index, spec)) = args.first().and_then(|name| ctx.engine.table.lookup(name)) else { return false };
    ctx.client.acl_user.as_ref().is_some_and(|(_, user)| user.may_read_any_key(index, spec, args))
}

fn sort(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, true)
}

/// An ALPHA weight as Redis compares it: as bytes into a STORE, else as strcoll reads it, a
/// C string ending at its first NUL.
fn alpha_key(weight: &Option<Bytes>, stored: bool) -> Option<&[u8]> {
    let weight = weight.as_deref()?;
    Some(if stored { weight } else { super::c_str(weight) })
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
        (Value::Str(s), None) => Some(s.to_bytes()),
        (Value::Hash(h), Some(field)) => h.get(field).map(Bytes::copy_from_slice),
        _ => None,
    }
}

/// A BY weight as Redis's SORT reads it: C's `strtod` over the whole text (so leading blanks,
/// hexadecimal and `inf` are accepted, and an empty text is 0), refusing NaN and what
/// overflows or underflows (`ERANGE`, which glibc also reports for a result too small to be
/// a normal number).
fn sort_score(weight: &[u8]) -> Option<f64> {
    // strtod stops at a NUL byte, as at the end of the text.
    let text = weight.split(|&c| c == 0).next().unwrap_or_default();
    crate::zset::strtod_exact(text).filter(|v| *v == 0.0 || v.abs() >= f64::MIN_POSITIVE)
}

/// The collection being sorted, in its own order (a sorted set's is by score).
enum Source {
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    ZSet(Vec<Bytes>),
}

fn sort_generic(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> CmdResult {
    let key = arg(args, 1)?;
    // As Redis: the options are read first, then the key is looked up (a wrong type refused).
    let mut o = parse(args, read_only, || may_read_any_key(ctx, args))?;
    let source = match ctx.lookup_read(key).map(|e| &mut e.value) {
        None => Source::List(Vec::new()),
        Some(Value::List(l)) => Source::List(l.iter().map(Bytes::copy_from_slice).collect()),
        Some(Value::Set(s)) => Source::Set(s.iter().map(|m| m.to_bytes()).collect()),
        Some(Value::ZSet(z)) => {
            // Redis converts a sorted set it sorts to a skip list, for good.
            z.convert_to_skiplist();
            Source::ZSet(z.iter().map(|(m, _)| Bytes::copy_from_slice(m)).collect())
        }
        Some(_) => return Err(errors::wrong_type()),
    };
    let mut dont_sort = o.dont_sort;
    // A set has no order of its own: with STORE, or in a script, Redis sorts it ALPHA instead
    // so that the result is the same wherever the command is replayed.
    if dont_sort && matches!(source, Source::Set(_)) && (o.store.is_some() || ctx.in_script()) {
        dont_sort = false;
        o.alpha = true;
        o.by = None;
    }
    let (mut elements, ordered) = match source {
        Source::List(v) | Source::ZSet(v) => (v, true),
        Source::Set(v) => (v, false),
    };
    if dont_sort {
        // Lists and sorted sets come in their order, reversed by DESC (Redis walks them from
        // the other end); a set comes as it is stored.
        if o.desc && ordered {
            elements.reverse();
        }
    } else {
        let mut scored = Vec::with_capacity(elements.len());
        for element in elements {
            let weight = match &o.by {
                Some(pattern) => lookup_pattern(ctx, pattern, &element),
                None => Some(element.clone()),
            };
            scored.push((element, weight, 0.0));
        }
        if !o.alpha {
            for item in scored.iter_mut() {
                // A missing weight sorts as 0; an unreadable one fails the whole command.
                if let Some(weight) = &item.1 {
                    item.2 = sort_score(weight)
                        .ok_or_else(|| err("ERR One or more scores can't be converted into double"))?;
                }
            }
        }
        // Stable, as glibc's qsort (a merge sort) is: ALPHA weights that tie keep the
        // collection's order. Numeric ties fall back to the elements, as in Redis. Without
        // STORE, Redis compares ALPHA weights with strcoll, as C strings: up to a NUL.
        let stored = o.store.is_some();
        scored.sort_by(|a, b| {
            let order = match o.alpha {
                true => alpha_key(&a.1, stored).cmp(&alpha_key(&b.1, stored)),
                false => a.2.partial_cmp(&b.2).unwrap_or(Ordering::Equal).then_with(|| a.0.cmp(&b.0)),
            };
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
    // Each GET copies the value it names, and every element may name the same one. A STORE
    // answers a count: what it stores is data like any other, under maxmemory.
    let limit = if o.store.is_some() { usize::MAX } else { ctx.reply_limit() };
    let mut budget = super::ReplyBudget::new(limit);
    for element in &selected {
        if o.gets.is_empty() {
            output.push(Some(element.clone()));
        }
        for pattern in &o.gets {
            let value = lookup_pattern(ctx, pattern, element);
            budget.take(value.as_ref().map_or(0, Bytes::len))?;
            output.push(value);
        }
    }
    let Some(dst) = o.store else {
        return Ok(Reply::Array(output.into_iter().map(|v| v.map_or(Reply::Nil, Reply::Bulk)).collect()));
    };
    store(ctx, &dst, output)
}

fn store(ctx: &mut Ctx, dst: &Bytes, items: Vec<Option<Bytes>>) -> CmdResult {
    let count = items.len();
    let stored = (count > 0).then(|| {
        let list: Vec<Bytes> = items.into_iter().map(Option::unwrap_or_default).collect();
        let mut rpush = vec![Bytes::from_static(b"RPUSH"), dst.clone()];
        rpush.extend(list.iter().cloned());
        (Value::List(Box::new(List::from_elements(list.iter()))), rpush)
    });
    ctx.replace_with_result(dst, stored, crate::notify::LIST, "sortstore");
    Ok(Reply::Int(count as i64))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::Bytes;
    use staykv_resp::Reply;

    use crate::client::Client;
    use crate::exec::{Engine, EngineOptions, NoJournal};

    const NOW: u64 = 1_700_000_000_000;

    /// BY weights as redis-server 7.0.15 reads them (SORT of two elements, checked by hand):
    /// zero written with an exponent or in hexadecimal is 0, not an underflow.
    #[test]
    fn by_weights_read_like_redis() {
        for (weight, expected) in [
            (&b"0e5"[..], Some(0.0)),
            (b"0x0p5", Some(0.0)),
            (b"0.0e10", Some(0.0)),
            (b"", Some(0.0)),
            (b"  2", Some(2.0)),
            (b"2\x00junk", Some(2.0)),
            (b"1e-400", None),
            (b"1e-310", None),
            (b"1e400", None),
            (b"abc", None),
        ] {
            assert_eq!(super::sort_score(weight), expected, "{:?}", String::from_utf8_lossy(weight));
        }
    }

    fn run(engine: &Engine, client: &mut Client, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        engine.execute(client, &args, NOW, &crate::host::NoHost, &NoJournal).reply
    }

    fn bulks(items: &[&str]) -> Reply {
        Reply::Array(items.iter().map(|s| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))).collect())
    }

    fn setup() -> (Engine, Client) {
        (Engine::new(EngineOptions::default()), Client::new(1, true))
    }

    /// Redis reads the options before it looks the key up: a syntax error wins over a wrong
    /// type.
    #[test]
    fn options_are_read_before_the_type_is_checked() {
        let (engine, mut c) = setup();
        run(&engine, &mut c, &["SET", "s", "v"]);
        let reply = run(&engine, &mut c, &["SORT", "s", "FOO"]);
        assert_eq!(reply, Reply::Error("ERR syntax error".into()));
        let reply = run(&engine, &mut c, &["SORT", "s"]);
        assert!(matches!(&reply, Reply::Error(e) if e.starts_with("WRONGTYPE")), "{reply:?}");
    }

    #[test]
    fn sorted_sets_sort_and_keep_their_score_order_with_nosort() {
        let (engine, mut c) = setup();
        run(&engine, &mut c, &["ZADD", "z", "1", "c", "2", "a", "3", "b"]);
        assert_eq!(run(&engine, &mut c, &["OBJECT", "ENCODING", "z"]), Reply::bulk_str("listpack"));
        assert_eq!(run(&engine, &mut c, &["SORT", "z", "ALPHA"]), bulks(&["a", "b", "c"]));
        // Sorting converts it for good, as in Redis.
        assert_eq!(run(&engine, &mut c, &["OBJECT", "ENCODING", "z"]), Reply::bulk_str("skiplist"));
        assert_eq!(run(&engine, &mut c, &["SORT", "z", "BY", "nosort"]), bulks(&["c", "a", "b"]));
        assert_eq!(run(&engine, &mut c, &["SORT", "z", "BY", "nosort", "DESC"]), bulks(&["b", "a", "c"]));
        assert_eq!(run(&engine, &mut c, &["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "5"]), bulks(&["a", "c"]));
    }

    /// `BY nosort DESC` walks a list from its tail.
    #[test]
    fn nosort_desc_reverses_a_list() {
        let (engine, mut c) = setup();
        run(&engine, &mut c, &["RPUSH", "l", "3", "1", "2"]);
        assert_eq!(run(&engine, &mut c, &["SORT", "l", "BY", "nosort", "DESC"]), bulks(&["2", "1", "3"]));
        assert_eq!(run(&engine, &mut c, &["SORT", "l", "BY", "nosort", "LIMIT", "1", "1"]), bulks(&["1"]));
        // Once given, nosort stays: a later BY pattern does not turn sorting back on (replies
        // recorded from redis-server 7.0.15).
        run(&engine, &mut c, &["MSET", "w_1", "3", "w_2", "2", "w_3", "1"]);
        assert_eq!(run(&engine, &mut c, &["SORT", "l", "BY", "nosort", "BY", "w_*"]), bulks(&["3", "1", "2"]));
        assert_eq!(run(&engine, &mut c, &["SORT", "l", "BY", "nosort", "BY", "w_*", "DESC"]), bulks(&["2", "1", "3"]));
        assert_eq!(run(&engine, &mut c, &["SORT", "l", "BY", "w_*", "BY", "nosort"]), bulks(&["3", "1", "2"]));
    }

    /// A set has no order: stored, Redis sorts it ALPHA so that replicas agree.
    #[test]
    fn a_set_by_nosort_with_store_is_sorted_alpha() {
        let (engine, mut c) = setup();
        run(&engine, &mut c, &["SADD", "s", "b", "c", "a", "10"]);
        assert_eq!(run(&engine, &mut c, &["SORT", "s", "BY", "nosort", "STORE", "d"]), Reply::Int(4));
        assert_eq!(run(&engine, &mut c, &["LRANGE", "d", "0", "-1"]), bulks(&["10", "a", "b", "c"]));
    }

    /// Weights are read with strtod: blanks before, hexadecimal, an empty text (0).
    #[test]
    fn weights_are_read_like_strtod() {
        let (engine, mut c) = setup();
        run(&engine, &mut c, &["RPUSH", "l", "a", "b", "c", "d"]);
        let mut set = |key: &str, value: &str| {
            let args = [
                Bytes::from_static(b"SET"),
                Bytes::copy_from_slice(key.as_bytes()),
                Bytes::copy_from_slice(value.as_bytes()),
            ];
            engine.execute(&mut c, &args, NOW, &crate::host::NoHost, &NoJournal);
        };
        set("w_a", " 5");
        set("w_b", "");
        set("w_c", "0x10");
        set("w_d", "-inf");
        assert_eq!(run(&engine, &mut c, &["SORT", "l", "BY", "w_*"]), bulks(&["d", "b", "a", "c"]));
        for bad in ["1e400", "nan", "5 ", "abc"] {
            let args = [Bytes::from_static(b"SET"), Bytes::from_static(b"w_d"), Bytes::copy_from_slice(bad.as_bytes())];
            engine.execute(&mut c, &args, NOW, &crate::host::NoHost, &NoJournal);
            let reply = run(&engine, &mut c, &["SORT", "l", "BY", "w_*"]);
            assert!(matches!(&reply, Reply::Error(e) if e.contains("can't be converted")), "{bad}: {reply:?}");
        }
    }

    /// ALPHA weights that tie keep the list's order (glibc's qsort is a stable merge sort).
    #[test]
    fn alpha_ties_keep_the_collection_order() {
        let (engine, mut c) = setup();
        run(&engine, &mut c, &["RPUSH", "l", "b", "a", "c"]);
        assert_eq!(run(&engine, &mut c, &["SORT", "l", "BY", "nokey_*", "ALPHA"]), bulks(&["b", "a", "c"]));
    }

    /// Without STORE, ALPHA compares as strcoll does, up to a NUL: "\0\xff" ties with "" (and
    /// keeps its place); with STORE, as bytes.
    #[test]
    fn alpha_compares_c_strings_unless_it_stores() {
        let (engine, mut c) = setup();
        run(&engine, &mut c, &["RPUSH", "l", "b", "\0\u{7f}", "", "a"]);
        assert_eq!(run(&engine, &mut c, &["SORT", "l", "ALPHA"]), bulks(&["\0\u{7f}", "", "a", "b"]));
        run(&engine, &mut c, &["SORT", "l", "ALPHA", "STORE", "d"]);
        assert_eq!(run(&engine, &mut c, &["LRANGE", "d", "0", "-1"]), bulks(&["", "\0\u{7f}", "a", "b"]));
    }
}
