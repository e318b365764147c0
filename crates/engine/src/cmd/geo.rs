//! GEO commands (Redis's `geo.c`): sorted sets whose scores are 52-bit geohashes, over the
//! math of [`crate::geo`].
//!
//! A GEO key is an ordinary sorted set (TYPE says `zset`, ZRANGE and DUMP see the scores), so
//! there is no GEO value type: GEOADD is ZADD with computed scores, and the reads decode
//! scores back into cell centres.
//!
//! Effects: GEOADD logs the ZADD it amounts to (with the computed integer scores, as Redis
//! propagates it); the STORE forms (GEOSEARCHSTORE, `GEORADIUS[BYMEMBER] STORE/STOREDIST`) log
//! `DEL dst` and `ZADD dst score member...` like the zset STORE commands. Every effect names
//! one key.
//!
//! `GEOSEARCH[STORE]` and the deprecated GEORADIUS* forms share one search (`search`) and one
//! option parser (`parse_options`); they differ in how the centre and area are given: the
//! GEORADIUS forms up front (`lon lat radius unit` or `member radius unit`), GEOSEARCH with
//! FROMMEMBER/FROMLONLAT and BYRADIUS/BYBOX among the options.

use std::cmp::Ordering;

use bytes::Bytes;
use staykv_resp::Reply;

use super::zsets::{store_result, zadd};
use super::{arg, int_arg, is};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::geo::{self, Area, Shape};
use crate::key_spec::{key::*, KeySpec};
use crate::value::Value;
use crate::zset::{self, ScoreRange, ZSet};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("geoadd", -5, WRITE | DENYOOM, "geo", geoadd).key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("geodist", -4, READONLY, "geo", geodist).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("geohash", -2, READONLY, "geo", geohash).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("geopos", -2, READONLY, "geo", geopos).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("geosearch", -7, READONLY, "geo", geosearch).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("geosearchstore", -8, WRITE | DENYOOM, "geo", geosearchstore)
        .key_specs(&[KeySpec::index(1, OW | UPDATE), KeySpec::index(2, RO | ACCESS)]),
    // The destination of STORE/STOREDIST is optional: found by scanning the options.
    CommandSpec::new("georadius", -6, WRITE | DENYOOM, "geo", georadius).key_finder(radius_keys).key_specs(&[
        KeySpec::index(1, RO | ACCESS),
        KeySpec::keyword("STORE", 6, OW | UPDATE),
        KeySpec::keyword("STOREDIST", 6, OW | UPDATE),
    ]),
    CommandSpec::new("georadiusbymember", -5, WRITE | DENYOOM, "geo", georadiusbymember)
        .key_finder(radius_by_member_keys)
        .key_specs(&[
            KeySpec::index(1, RO | ACCESS),
            KeySpec::keyword("STORE", 5, OW | UPDATE),
            KeySpec::keyword("STOREDIST", 5, OW | UPDATE),
        ]),
    CommandSpec::new("georadius_ro", -6, READONLY, "geo", georadius_ro).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("georadiusbymember_ro", -5, READONLY, "geo", georadiusbymember_ro)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)]),
];

/// GEORADIUS's keys: the source, and the destinations of STORE/STOREDIST after the head.
fn radius_keys(args: &[Bytes]) -> Vec<usize> {
    radius_keys_from(args, 6)
}

/// GEORADIUSBYMEMBER's keys (its head is one argument shorter).
fn radius_by_member_keys(args: &[Bytes]) -> Vec<usize> {
    radius_keys_from(args, 5)
}

/// The source, then what Redis 7.0's key specs name (the argument after the first STORE and
/// after the first STOREDIST, from the options on), then the destination the command will
/// actually write if that is another one (`STORE a STORE b` writes `b`): it must be locked.
fn radius_keys_from(args: &[Bytes], options_at: usize) -> Vec<usize> {
    let keyword_at =
        |word: &str| (options_at..args.len().saturating_sub(1)).find(|&i| args.get(i).is_some_and(|a| is(a, word)));
    let mut keys = vec![1];
    keys.extend(keyword_at("store").map(|i| i + 1));
    keys.extend(keyword_at("storedist").map(|i| i + 1));
    // Options read in order, each STORE/STOREDIST taking the next argument: the last wins.
    let mut written = None;
    let mut i = options_at;
    while i + 1 < args.len() {
        if args.get(i).is_some_and(|a| is(a, "store") || is(a, "storedist")) {
            written = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    keys.extend(written.filter(|w| !keys.contains(w)));
    keys
}

/// Whether the sorted set at `key` exists, for a read (a hit or miss is counted); WRONGTYPE
/// for another type.
fn source_exists(ctx: &mut Ctx, key: &[u8]) -> Result<bool, Reply> {
    match ctx.lookup_read(key).map(|e| &e.value) {
        None => Ok(false),
        Some(Value::ZSet(_)) => Ok(true),
        Some(_) => Err(errors::wrong_type()),
    }
}

/// The sorted set at `key`, already looked up by [`source_exists`].
fn source<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c ZSet> {
    match ctx.peek(key).map(|e| &e.value) {
        Some(Value::ZSet(z)) => Some(z),
        _ => None,
    }
}

/// The stored position of `member`: its cell centre.
fn position(ctx: &mut Ctx, key: &[u8], member: &[u8]) -> Option<(f64, f64)> {
    source(ctx, key).and_then(|z| z.score(member)).map(geo::decode_score)
}

/// `lon lat` arguments, or Redis's float or range error.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), Reply> {
    let lon = zset::parse_score(lon).ok_or_else(errors::not_float)?;
    let lat = zset::parse_score(lat).ok_or_else(errors::not_float)?;
    if !geo::valid_lon_lat(lon, lat) {
        return Err(Reply::Error(format!("ERR invalid longitude,latitude pair {lon:.6},{lat:.6}")));
    }
    Ok((lon, lat))
}

/// Meters per unit of a unit argument.
fn unit(arg: &[u8]) -> Result<f64, Reply> {
    match arg {
        u if is(u, "m") => Ok(1.0),
        u if is(u, "km") => Ok(1000.0),
        u if is(u, "ft") => Ok(0.3048),
        u if is(u, "mi") => Ok(1609.34),
        _ => Err(err("ERR unsupported unit provided. please use M, KM, FT, MI")),
    }
}

/// A non-negative size (radius, width, height) with the error Redis names it by.
fn size(arg: &[u8], what: &str) -> Result<f64, Reply> {
    zset::parse_score(arg).ok_or_else(|| Reply::Error(format!("ERR need numeric {what}")))
}

// ---- GEOADD, GEODIST, GEOHASH, GEOPOS ----

/// `GEOADD key [NX|XX] [CH] lon lat member...`: validated here, then run as the ZADD it
/// amounts to (which also logs it), as Redis does.
fn geoadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let mut first = 2;
    let (mut nx, mut xx) = (false, false);
    while let Some(option) = args.get(first) {
        match option {
            o if is(o, "nx") => nx = true,
            o if is(o, "xx") => xx = true,
            o if is(o, "ch") => {}
            _ => break,
        }
        first += 1;
    }
    let triples = args.get(first..).unwrap_or_default();
    if triples.len() % 3 != 0 || (nx && xx) {
        return Err(errors::syntax());
    }
    let mut zadd_args = vec![Bytes::from_static(b"ZADD"), key.clone()];
    zadd_args.extend(args.get(2..first).unwrap_or_default().iter().cloned());
    for triple in triples.chunks_exact(3) {
        if let [lon, lat, member] = triple {
            let (lon, lat) = lon_lat(lon, lat)?;
            let score = geo::score_of(lon, lat).ok_or_else(errors::syntax)?;
            zadd_args.push(Bytes::from(score.to_string()));
            zadd_args.push(member.clone());
        }
    }
    zadd(ctx, &zadd_args)
}

fn geodist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let to_meters = match args.len() {
        4 => 1.0,
        5 => unit(arg(args, 4)?)?,
        _ => return Err(errors::syntax()),
    };
    let key = arg(args, 1)?;
    if !source_exists(ctx, key)? {
        return Ok(Reply::Nil);
    }
    let a = position(ctx, key, arg(args, 2)?);
    let b = position(ctx, key, arg(args, 3)?);
    Ok(match a.zip(b) {
        Some(((lon1, lat1), (lon2, lat2))) => {
            Reply::Bulk(geo::format_distance(geo::distance(lon1, lat1, lon2, lat2) / to_meters).into())
        }
        None => Reply::Nil,
    })
}

/// GEOHASH and GEOPOS: one reply per member, `missing` for a member (or key) not there.
fn per_member(ctx: &mut Ctx, args: &[Bytes], missing: Reply, found: impl Fn(f64) -> Reply) -> CmdResult {
    let key = arg(args, 1)?;
    let exists = source_exists(ctx, key)?;
    let set = if exists { source(ctx, key) } else { None };
    let replies = args.iter().skip(2).map(|m| set.and_then(|z| z.score(m)).map_or_else(|| missing.clone(), &found));
    Ok(Reply::Array(replies.collect()))
}

fn geohash(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    per_member(ctx, args, Reply::Nil, |score| Reply::Bulk(geo::geohash_string(score).into()))
}

fn geopos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    per_member(ctx, args, Reply::NilArray, |score| {
        let (lon, lat) = geo::decode_score(score);
        Reply::Array(vec![Reply::HumanDouble(lon), Reply::HumanDouble(lat)])
    })
}

// ---- searches ----

/// Which command a search runs for: what its head holds and which options it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `GEORADIUS[_RO]`: `key lon lat radius unit`.
    RadiusFromLonLat { store_allowed: bool },
    /// `GEORADIUSBYMEMBER[_RO]`: `key member radius unit`.
    RadiusFromMember { store_allowed: bool },
    /// GEOSEARCH: `key` then FROM... BY... among the options.
    Search,
    /// GEOSEARCHSTORE: `dst key`, the same options and STOREDIST.
    SearchStore,
}

impl Form {
    fn is_search(self) -> bool {
        matches!(self, Form::Search | Form::SearchStore)
    }

    fn store_allowed(self) -> bool {
        matches!(self, Form::RadiusFromLonLat { store_allowed: true } | Form::RadiusFromMember { store_allowed: true })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Unsorted,
    Asc,
    Desc,
}

/// A parsed search.
struct Query {
    lon: f64,
    lat: f64,
    /// The area in the request's unit, and meters per unit.
    area: Option<Area>,
    to_meters: f64,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    order: Order,
    any: bool,
    /// 0: no limit.
    count: usize,
    store: Option<Bytes>,
    store_dist: bool,
    from_member: bool,
    from_lon_lat: bool,
}

impl Query {
    fn new() -> Query {
        Query {
            lon: 0.0,
            lat: 0.0,
            area: None,
            to_meters: 1.0,
            with_dist: false,
            with_hash: false,
            with_coord: false,
            order: Order::Unsorted,
            any: false,
            count: 0,
            store: None,
            store_dist: false,
            from_member: false,
            from_lon_lat: false,
        }
    }

    /// The area in meters around the centre.
    fn shape(&self) -> Option<Shape> {
        let m = self.to_meters;
        let area = match self.area? {
            Area::Radius(r) => Area::Radius(r * m),
            Area::Box { width, height } => Area::Box { width: width * m, height: height * m },
        };
        Some(Shape { lon: self.lon, lat: self.lat, area })
    }
}

/// `radius unit` into `query`.
fn parse_radius(query: &mut Query, radius: &[u8], unit_arg: &[u8]) -> Result<(), Reply> {
    let radius = size(radius, "radius")?;
    if radius < 0.0 {
        return Err(err("ERR radius cannot be negative"));
    }
    query.to_meters = unit(unit_arg)?;
    query.area = Some(Area::Radius(radius));
    Ok(())
}

/// `width height unit` into `query`.
fn parse_box(query: &mut Query, width: &[u8], height: &[u8], unit_arg: &[u8]) -> Result<(), Reply> {
    let width = size(width, "width")?;
    let height = size(height, "height")?;
    if height < 0.0 || width < 0.0 {
        return Err(err("ERR height or width cannot be negative"));
    }
    query.to_meters = unit(unit_arg)?;
    query.area = Some(Area::Box { width, height });
    Ok(())
}

/// The GEORADIUS forms' head: centre and radius before the options. With BYMEMBER on a
/// missing key Redis parses none of it (there is nothing to search).
fn parse_radius_head(ctx: &mut Ctx, args: &[Bytes], form: Form, exists: bool) -> Result<(Query, usize), Reply> {
    let mut query = Query::new();
    let key = arg(args, 1)?;
    match form {
        Form::RadiusFromLonLat { .. } => {
            (query.lon, query.lat) = lon_lat(arg(args, 2)?, arg(args, 3)?)?;
            parse_radius(&mut query, arg(args, 4)?, arg(args, 5)?)?;
            Ok((query, 6))
        }
        _ if !exists => Ok((query, 5)),
        _ => {
            (query.lon, query.lat) = position(ctx, key, arg(args, 2)?).ok_or_else(undecodable_member)?;
            parse_radius(&mut query, arg(args, 3)?, arg(args, 4)?)?;
            Ok((query, 5))
        }
    }
}

fn undecodable_member() -> Reply {
    err("ERR could not decode requested zset member")
}

/// The options from `first` on, in order, with Redis's errors (`georadiusGeneric`). FROM...
/// and BY... are GEOSEARCH's; FROMMEMBER on a missing key is accepted unread.
fn parse_options(
    ctx: &mut Ctx,
    args: &[Bytes],
    first: usize,
    form: Form,
    key: &[u8],
    exists: bool,
    query: &mut Query,
) -> Result<(), Reply> {
    let (mut by_radius, mut by_box) = (false, false);
    let mut i = first;
    while let Some(option) = args.get(i) {
        let left = args.len() - i - 1;
        let search = form.is_search();
        if is(option, "withdist") {
            query.with_dist = true;
        } else if is(option, "withhash") {
            query.with_hash = true;
        } else if is(option, "withcoord") {
            query.with_coord = true;
        } else if is(option, "any") {
            query.any = true;
        } else if is(option, "asc") {
            query.order = Order::Asc;
        } else if is(option, "desc") {
            query.order = Order::Desc;
        } else if is(option, "count") && left >= 1 {
            let count = int_arg(arg(args, i + 1)?)?;
            if count <= 0 {
                return Err(err("ERR COUNT must be > 0"));
            }
            query.count = usize::try_from(count).unwrap_or(usize::MAX);
            i += 1;
        } else if (is(option, "store") || is(option, "storedist")) && left >= 1 && form.store_allowed() {
            query.store = Some(arg(args, i + 1)?.clone());
            query.store_dist = is(option, "storedist");
            i += 1;
        } else if is(option, "storedist") && form == Form::SearchStore {
            query.store_dist = true;
        } else if is(option, "frommember") && left >= 1 && search && !query.from_lon_lat {
            if exists {
                (query.lon, query.lat) = position(ctx, key, arg(args, i + 1)?).ok_or_else(undecodable_member)?;
            }
            query.from_member = true;
            i += 1;
        } else if is(option, "fromlonlat") && left >= 2 && search && !query.from_member {
            (query.lon, query.lat) = lon_lat(arg(args, i + 1)?, arg(args, i + 2)?)?;
            query.from_lon_lat = true;
            i += 2;
        } else if is(option, "byradius") && left >= 2 && search && !by_box {
            parse_radius(query, arg(args, i + 1)?, arg(args, i + 2)?)?;
            by_radius = true;
            i += 2;
        } else if is(option, "bybox") && left >= 3 && search && !by_radius {
            parse_box(query, arg(args, i + 1)?, arg(args, i + 2)?, arg(args, i + 3)?)?;
            by_box = true;
            i += 3;
        } else {
            return Err(errors::syntax());
        }
        i += 1;
    }
    check_combination(args, form, query)
}

/// The option combinations Redis refuses once all options are read.
fn check_combination(args: &[Bytes], form: Form, query: &Query) -> Result<(), Reply> {
    if query.store.is_some() && (query.with_dist || query.with_hash || query.with_coord) {
        let what = if form == Form::SearchStore { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return Err(Reply::Error(format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    let name = || args.first().map(|n| super::text(n)).unwrap_or_default();
    if form.is_search() && !(query.from_member || query.from_lon_lat) {
        return Err(Reply::Error(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            name()
        )));
    }
    if form.is_search() && query.area.is_none() {
        return Err(Reply::Error(format!("ERR exactly one of BYRADIUS and BYBOX can be specified for {}", name())));
    }
    if query.any && query.count == 0 {
        return Err(err("ERR the ANY argument requires COUNT argument"));
    }
    Ok(())
}

/// One member found by a search.
struct Found {
    member: Bytes,
    score: f64,
    lon: f64,
    lat: f64,
    /// Meters from the centre.
    dist: f64,
}

/// The members of `set` inside `shape`, cell by cell in Redis's order (each cell in score
/// order), stopping once `limit` are found (0: no limit; COUNT ANY).
fn search(set: &ZSet, shape: &Shape, limit: usize) -> Vec<Found> {
    let mut found = Vec::new();
    let mut last = None;
    for cell in geo::search_areas(shape).into_iter().flatten() {
        // With huge radii neighbours can coincide; Redis skips a repeat of the cell just read.
        if last == Some(cell) {
            continue;
        }
        if limit > 0 && found.len() >= limit {
            break;
        }
        let (min, max) = geo::cell_scores(cell);
        let range = ScoreRange { min, max, min_exclusive: false, max_exclusive: true };
        for (member, score) in set.range(&range, false) {
            let (lon, lat) = geo::decode_score(score);
            if let Some(dist) = shape.distance_if_within(lon, lat) {
                found.push(Found { member: Bytes::copy_from_slice(member), score, lon, lat, dist });
                if limit > 0 && found.len() >= limit {
                    break;
                }
            }
        }
        last = Some(cell);
    }
    found
}

/// Put the first `returned` members in order, as Redis does: a full sort is glibc's qsort
/// (a stable merge sort), a partial one Redis's `pqsort`, which orders ties its own way.
fn sort_found(found: &mut [Found], order: Order, returned: usize) {
    match order {
        Order::Unsorted => {}
        // A total order (a NaN distance, from rounding between antipodes, sorts last) keeps
        // the library sort from giving up on an inconsistent comparison.
        Order::Asc if returned == found.len() => found.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Order::Desc if returned == found.len() => found.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
        Order::Asc => crate::pqsort::partial_sort(found, returned, by_dist),
        Order::Desc => crate::pqsort::partial_sort(found, returned, |a, b| by_dist(a, b).reverse()),
    }
}

/// Redis's `sort_gp_asc`: greater, equal, or else less (NaN included).
fn by_dist(a: &Found, b: &Found) -> Ordering {
    if a.dist > b.dist {
        Ordering::Greater
    } else if a.dist == b.dist {
        Ordering::Equal
    } else {
        Ordering::Less
    }
}

/// Redis's `georadiusGeneric` after parsing: search, order, then reply or store.
fn run_query(ctx: &mut Ctx, key: &[u8], mut query: Query, event: &'static str) -> CmdResult {
    let Some(shape) = query.shape().filter(|_| source(ctx, key).is_some()) else {
        return Ok(match query.store {
            Some(dst) => store_result(ctx, &dst, ZSet::new(), event),
            None => Reply::Array(Vec::new()),
        });
    };
    // COUNT without an order means the nearest ones (not with ANY: the first found).
    if query.count > 0 && query.order == Order::Unsorted && !query.any {
        query.order = Order::Asc;
    }
    let limit = if query.any { query.count } else { 0 };
    let mut found = source(ctx, key).map(|set| search(set, &shape, limit)).unwrap_or_default();
    let returned = if query.count == 0 { found.len() } else { found.len().min(query.count) };
    sort_found(&mut found, query.order, returned);
    found.truncate(returned);
    for f in &mut found {
        f.dist /= query.to_meters;
    }
    match query.store.take() {
        Some(dst) => Ok(store_found(ctx, &dst, found, query.store_dist, event)),
        None => Ok(Reply::Array(found.into_iter().map(|f| found_reply(f, &query)).collect())),
    }
}

/// One member of a search reply: the name alone, or `[name, dist?, hash?, [lon, lat]?]`.
fn found_reply(found: Found, query: &Query) -> Reply {
    if !(query.with_dist || query.with_hash || query.with_coord) {
        return Reply::Bulk(found.member);
    }
    let mut item = vec![Reply::Bulk(found.member)];
    if query.with_dist {
        item.push(Reply::Bulk(geo::format_distance(found.dist).into()));
    }
    if query.with_hash {
        item.push(Reply::Int(found.score as i64));
    }
    if query.with_coord {
        item.push(Reply::Array(vec![Reply::HumanDouble(found.lon), Reply::HumanDouble(found.lat)]));
    }
    Reply::Array(item)
}

/// Replace `dst` with the members found, scored by geohash or (STOREDIST) by distance.
fn store_found(ctx: &mut Ctx, dst: &Bytes, found: Vec<Found>, store_dist: bool, event: &'static str) -> Reply {
    let mut set = ZSet::with_size_hint(usize::MAX);
    for f in found {
        set.insert(f.member, if store_dist { f.dist } else { f.score });
    }
    set.convert_to_listpack_if_needed();
    store_result(ctx, dst, set, event)
}

/// GEORADIUS and GEORADIUSBYMEMBER, with or without STORE.
fn radius_generic(ctx: &mut Ctx, args: &[Bytes], form: Form) -> CmdResult {
    let key = arg(args, 1)?;
    let exists = source_exists(ctx, key)?;
    let (mut query, first) = parse_radius_head(ctx, args, form, exists)?;
    parse_options(ctx, args, first, form, key, exists, &mut query)?;
    run_query(ctx, key, query, "georadiusstore")
}

/// GEOSEARCH and GEOSEARCHSTORE.
fn search_generic(ctx: &mut Ctx, args: &[Bytes], form: Form) -> CmdResult {
    let (key_at, store) = match form {
        Form::SearchStore => (2, Some(arg(args, 1)?.clone())),
        _ => (1, None),
    };
    let key = arg(args, key_at)?;
    let exists = source_exists(ctx, key)?;
    let mut query = Query { store, ..Query::new() };
    parse_options(ctx, args, key_at + 1, form, key, exists, &mut query)?;
    run_query(ctx, key, query, "geosearchstore")
}

fn georadius(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    radius_generic(ctx, args, Form::RadiusFromLonLat { store_allowed: true })
}

fn georadius_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    radius_generic(ctx, args, Form::RadiusFromLonLat { store_allowed: false })
}

fn georadiusbymember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    radius_generic(ctx, args, Form::RadiusFromMember { store_allowed: true })
}

fn georadiusbymember_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    radius_generic(ctx, args, Form::RadiusFromMember { store_allowed: false })
}

fn geosearch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search_generic(ctx, args, Form::Search)
}

fn geosearchstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search_generic(ctx, args, Form::SearchStore)
}
