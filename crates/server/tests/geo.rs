//! GEO commands against the real binaries: the same commands sent to `staykv` and to
//! Debian's `redis-server` 7.0 must get byte-identical replies in RESP2 and RESP3 — every
//! command and option, errors, points at the poles and the antimeridian, empty results,
//! COUNT ANY, STORE/STOREDIST — plus a seeded random workload; GEO keys and a
//! GEOSEARCHSTORE destination survive SIGKILL, before and after a snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod persist_common;

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use common::{RawConn, Server};

/// Commands whose replies are compared, in order, on one connection per server.
const SCRIPT: &[&[&str]] = &[
    // GEOADD and its options; the stored scores.
    &["GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"],
    &["GEOADD", "Sicily", "12.758489", "38.788135", "edge1", "17.241510", "38.788135", "edge2"],
    &["ZRANGE", "Sicily", "0", "-1", "WITHSCORES"],
    &["GEOADD", "Sicily", "NX", "1", "1", "Palermo", "2", "2", "nxnew"],
    &["GEOADD", "Sicily", "XX", "1", "1", "nxnew", "3", "3", "xxnew"],
    &["GEOADD", "Sicily", "XX", "CH", "2.5", "2.5", "nxnew"],
    &["GEOADD", "Sicily", "CH", "NX", "2.5", "2.5", "nxnew", "4", "4", "chnew"],
    &["GEOADD", "Sicily", "ch", "xx", "2.5", "2.5", "nxnew"],
    &["ZREM", "Sicily", "nxnew", "chnew"],
    &["GEOADD", "Sicily", "NX", "XX", "1", "1", "a"],
    &["GEOADD", "Sicily", "1", "1"],
    &["GEOADD", "Sicily", "1", "1", "a", "2"],
    &["GEOADD", "Sicily", "NX", "CH", "CH"],
    &["GEOADD", "Sicily", "GT", "1", "1"],
    &["GEOADD", "Sicily", "181", "1", "a"],
    &["GEOADD", "Sicily", "1", "85.06", "a"],
    &["GEOADD", "Sicily", "-180.5", "-86", "a"],
    &["GEOADD", "Sicily", "1", "1", "ok", "x", "1", "bad"],
    &["GEOADD", "Sicily", "1", "nan", "a"],
    &["GEOADD", "Sicily", "inf", "1", "a"],
    &["GEOADD", "Sicily", " 1", "1", "a"],
    &["EXISTS", "ok"],
    &["ZSCORE", "Sicily", "ok"],
    &["GEOADD"],
    &["GEOADD", "k"],
    // The limits: poles of the Mercator range, the antimeridian, the origin.
    &["GEOADD", "edges", "180", "85.05112878", "ne", "-180", "-85.05112878", "sw", "-180", "85.05112878", "nw"],
    &["GEOADD", "edges", "180", "-85.05112878", "se", "0", "0", "origin", "-0", "-0", "negzero"],
    &["GEOADD", "edges", "179.9999", "0.5", "east", "-179.9999", "0.5", "west", "0.000001", "-0.000001", "near0"],
    &["ZRANGE", "edges", "0", "-1", "WITHSCORES"],
    &["GEOPOS", "edges", "ne", "sw", "nw", "se", "origin", "negzero", "east", "west", "near0", "nope"],
    &["GEOHASH", "edges", "ne", "sw", "nw", "se", "origin", "negzero", "east", "west", "near0", "nope"],
    &["GEODIST", "edges", "east", "west"],
    &["GEODIST", "edges", "east", "west", "KM"],
    &["GEODIST", "edges", "ne", "sw", "mi"],
    &["GEODIST", "edges", "ne", "nw", "ft"],
    &["GEODIST", "edges", "origin", "negzero"],
    &["GEOSEARCH", "edges", "FROMMEMBER", "east", "BYRADIUS", "100", "km", "WITHDIST", "ASC"],
    &["GEOSEARCH", "edges", "FROMLONLAT", "180", "0", "BYBOX", "300", "300", "km", "WITHCOORD", "WITHHASH"],
    &["GEOSEARCH", "edges", "FROMLONLAT", "-180", "85", "BYRADIUS", "60", "km", "WITHDIST"],
    &["GEOSEARCH", "edges", "FROMLONLAT", "0", "85.05112878", "BYRADIUS", "30000", "km", "ASC"],
    &["GEOSEARCH", "edges", "FROMLONLAT", "0", "-85", "BYBOX", "40000", "2000", "km", "DESC", "WITHDIST"],
    &["GEOSEARCH", "edges", "FROMLONLAT", "0", "0", "BYRADIUS", "0", "m", "WITHDIST"],
    &["GEOSEARCH", "edges", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "m", "WITHDIST", "WITHCOORD"],
    &["GEOSEARCH", "edges", "FROMLONLAT", "0", "0", "BYRADIUS", "50000", "km"],
    &["GEOSEARCH", "edges", "FROMLONLAT", "0", "0", "BYRADIUS", "50000", "km", "COUNT", "3", "DESC"],
    // Ties in distance: a full sort keeps score order, a partial one (COUNT) is pqsort's.
    &["GEOADD", "ties", "10", "10", "m1", "10", "10", "m2", "10", "10", "m3", "10", "10", "m4", "10", "10", "m5"],
    &["GEOADD", "ties", "10", "10", "m6", "10", "10", "m7", "10", "10", "m8", "10", "10", "m9", "10", "10", "m10"],
    &["GEOADD", "ties", "10.001", "10", "a", "9.999", "10", "b", "10", "10.001", "c", "10", "9.999", "d"],
    &["GEOSEARCH", "ties", "FROMLONLAT", "10", "10", "BYRADIUS", "1000", "km"],
    &["GEOSEARCH", "ties", "FROMLONLAT", "10", "10", "BYRADIUS", "1000", "km", "ASC"],
    &["GEOSEARCH", "ties", "FROMLONLAT", "10", "10", "BYRADIUS", "1000", "km", "DESC", "WITHDIST"],
    &["GEOSEARCH", "ties", "FROMLONLAT", "10", "10", "BYRADIUS", "1000", "km", "COUNT", "3"],
    &["GEOSEARCH", "ties", "FROMLONLAT", "10", "10", "BYRADIUS", "1000", "km", "COUNT", "9", "ASC"],
    &["GEOSEARCH", "ties", "FROMLONLAT", "10", "10", "BYRADIUS", "1000", "km", "COUNT", "3", "DESC"],
    &["GEOSEARCH", "ties", "FROMLONLAT", "10", "10", "BYRADIUS", "1000", "km", "COUNT", "13", "DESC"],
    &["GEOSEARCH", "ties", "FROMLONLAT", "10", "10", "BYRADIUS", "1000", "km", "COUNT", "14", "DESC"],
    &["GEOSEARCH", "ties", "FROMLONLAT", "10", "10", "BYRADIUS", "1000", "km", "COUNT", "5", "ANY"],
    &["GEOSEARCH", "ties", "FROMLONLAT", "10", "10", "BYRADIUS", "1000", "km", "COUNT", "5", "ANY", "DESC"],
    &["GEOSEARCHSTORE", "tdst", "ties", "FROMLONLAT", "10", "10", "BYRADIUS", "1000", "km", "COUNT", "4"],
    &["ZRANGE", "tdst", "0", "-1", "WITHSCORES"],
    // Past 40 matches pqsort picks its pivot from three medians.
    &[
        "EVAL",
        "for i = 1, 60 do redis.call('GEOADD', KEYS[1], 10 + (i % 3) * 0.0001, 10, 'm' .. i) end \
         for i = 1, 30 do redis.call('GEOADD', KEYS[1], 10, 10 + (i % 4) * 0.0001, 'n' .. i) end",
        "1",
        "many",
    ],
    &["GEOSEARCH", "many", "FROMLONLAT", "10", "10", "BYRADIUS", "100", "km", "COUNT", "10"],
    &["GEOSEARCH", "many", "FROMLONLAT", "10", "10", "BYRADIUS", "100", "km", "COUNT", "25", "DESC"],
    &["GEOSEARCH", "many", "FROMLONLAT", "10", "10", "BYRADIUS", "100", "km", "COUNT", "45", "WITHDIST"],
    &["GEOSEARCH", "many", "FROMLONLAT", "10", "10", "BYRADIUS", "100", "km", "COUNT", "89", "ASC"],
    &["GEORADIUS", "many", "10", "10", "100", "km", "COUNT", "33", "DESC"],
    // GEOPOS, GEOHASH, GEODIST.
    &["GEOPOS", "Sicily", "Palermo", "Catania", "missing"],
    &["GEOPOS", "Sicily"],
    &["GEOPOS", "nokey", "a", "b"],
    &["GEOPOS"],
    &["GEOHASH", "Sicily", "Palermo", "Catania", "missing"],
    &["GEOHASH", "Sicily"],
    &["GEOHASH", "nokey", "a"],
    &["GEODIST", "Sicily", "Palermo", "Catania"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "m"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "km"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "MI"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "ft"],
    &["GEODIST", "Sicily", "Palermo", "Palermo"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "yards"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "km", "extra"],
    &["GEODIST", "Sicily", "Palermo", "missing"],
    &["GEODIST", "nokey", "a", "b"],
    &["GEODIST", "nokey", "a", "b", "furlong"],
    &["GEODIST", "Sicily", "Palermo"],
    // GEORADIUS and GEORADIUSBYMEMBER.
    &["GEORADIUS", "Sicily", "15", "37", "200", "km"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHCOORD", "WITHDIST", "WITHHASH"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "ASC"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "DESC"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1", "DESC"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1", "ANY"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "ANY", "COUNT", "2", "WITHDIST"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "100"],
    &["GEORADIUS", "Sicily", "15", "37", "1", "m"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "ANY"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "0"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "-3"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "x"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "BOGUS"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "FROMMEMBER", "Palermo"],
    &["GEORADIUS", "Sicily", "15", "37", "-1", "km"],
    &["GEORADIUS", "Sicily", "15", "37", "abc", "km"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "parsecs"],
    &["GEORADIUS", "Sicily", "15", "91", "200", "km"],
    &["GEORADIUS", "Sicily", "x", "37", "200", "km"],
    &["GEORADIUS", "Sicily", "15", "37", "200"],
    &["GEORADIUS", "nokey", "15", "37", "200", "km"],
    &["GEORADIUS", "nokey", "15", "37", "200", "badunit"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dst"],
    &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
    &["TYPE", "dst"],
    &["OBJECT", "ENCODING", "dst"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STOREDIST", "dst"],
    &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "a", "STOREDIST", "dst2", "COUNT", "1"],
    &["ZRANGE", "dst2", "0", "-1", "WITHSCORES"],
    &["EXISTS", "a"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "first", "STORE", "last"],
    &["EXISTS", "first", "last"],
    &["GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "STOREDIST", "first", "STORE", "last2"],
    &["ZRANGE", "last2", "0", "-1", "WITHSCORES"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dst", "WITHDIST"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE"],
    &["GEORADIUS", "Sicily", "15", "37", "1", "m", "STORE", "dst"],
    &["EXISTS", "dst"],
    &["GEORADIUS", "nokey", "15", "37", "1", "m", "STORE", "dst2"],
    &["EXISTS", "dst2"],
    &["GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "WITHDIST", "ASC"],
    &["GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "STORE", "dst"],
    &["GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "STOREDIST", "dst"],
    &["GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "WITHDIST", "WITHCOORD"],
    &["GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "DESC", "COUNT", "2"],
    &["GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "STOREDIST", "dst3"],
    &["ZRANGE", "dst3", "0", "-1", "WITHSCORES"],
    &["GEORADIUSBYMEMBER", "Sicily", "missing", "200", "km"],
    &["GEORADIUSBYMEMBER", "Sicily", "Palermo", "-5", "km"],
    &["GEORADIUSBYMEMBER", "nokey", "missing", "x", "badunit"],
    &["GEORADIUSBYMEMBER", "nokey", "missing", "x", "badunit", "STORE", "dst3"],
    &["EXISTS", "dst3"],
    &["GEORADIUSBYMEMBER", "nokey", "missing", "x", "badunit", "BOGUS"],
    &["GEORADIUSBYMEMBER_RO", "Sicily", "Catania", "100", "mi", "WITHHASH"],
    &["GEORADIUSBYMEMBER_RO", "Sicily", "Catania", "100", "mi", "STORE", "x"],
    // GEOSEARCH and GEOSEARCHSTORE.
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "200", "km", "ASC", "WITHDIST"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "ASC", "WITHCOORD", "WITHDIST"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "DESC", "WITHHASH"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "200", "200", "mi"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "COUNT", "1", "ANY", "WITHDIST"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ANY"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "BYBOX", "1", "1", "km"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "1", "1", "km", "BYRADIUS", "200", "km"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "BYRADIUS", "200", "km"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "FROMMEMBER", "Catania", "BYRADIUS", "200", "km"],
    &["GEOSEARCH", "Sicily", "BYRADIUS", "1", "km", "ASC"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "ASC"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "missing", "BYRADIUS", "1", "km"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "STORE", "x"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "STOREDIST"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "-1", "1", "km"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "x", "1", "km"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "1", "y", "km"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "1", "1", "au"],
    &["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "1", "1"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "200", "37", "BYRADIUS", "1", "km"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "0", "km"],
    &["GEOSEARCH", "nokey", "FROMMEMBER", "missing", "BYRADIUS", "1", "km"],
    &["GEOSEARCH", "nokey", "FROMMEMBER", "missing", "BYRADIUS", "1", "parsec"],
    &["GEOSEARCH", "nokey", "FROMMEMBER", "missing"],
    &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "WITHDIST", "COUNT", "1", "DESC"],
    &["GEOSEARCHSTORE", "gdst", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km"],
    &["ZRANGE", "gdst", "0", "-1", "WITHSCORES"],
    &["GEOSEARCHSTORE", "gdst", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "STOREDIST"],
    &["ZRANGE", "gdst", "0", "-1", "WITHSCORES"],
    &["GEOSEARCHSTORE", "gdst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "COUNT", "1", "DESC"],
    &["ZRANGE", "gdst", "0", "-1", "WITHSCORES"],
    &["GEOSEARCHSTORE", "gdst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "WITHDIST"],
    &["GEOSEARCHSTORE", "gdst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STORE", "x"],
    &["GEOSEARCHSTORE", "gdst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "m"],
    &["EXISTS", "gdst"],
    &["GEOSEARCHSTORE", "gdst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STOREDIST"],
    &["GEOSEARCHSTORE", "gdst", "nokey", "FROMMEMBER", "x", "BYRADIUS", "200", "km"],
    &["EXISTS", "gdst"],
    &["GEOSEARCHSTORE", "Sicily2", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "1000", "km"],
    &["GEOSEARCHSTORE", "Sicily2", "Sicily2", "FROMMEMBER", "Palermo", "BYRADIUS", "100", "km"],
    &["ZRANGE", "Sicily2", "0", "-1", "WITHSCORES"],
    &["GEOSEARCHSTORE", "gdst", "Sicily", "FROMLONLAT", "15", "37"],
    // On one meridian Redis measures along it (the last bit shows in STOREDIST).
    &["GEOADD", "meridian", "180", "-49.5", "p9", "180", "-64.8", "p236", "180", "-66.4", "p100", "15", "80", "n"],
    &["GEOADD", "meridian", "15", "-80", "s", "15", "0.1", "e"],
    &[
        "GEOSEARCHSTORE",
        "md",
        "meridian",
        "FROMLONLAT",
        "180",
        "-54.39082130863986",
        "BYBOX",
        "1",
        "2000",
        "mi",
        "STOREDIST",
    ],
    &["ZRANGE", "md", "0", "-1", "WITHSCORES"],
    &["GEOSEARCHSTORE", "md", "meridian", "FROMMEMBER", "e", "BYRADIUS", "20000", "km", "STOREDIST"],
    &["ZRANGE", "md", "0", "-1", "WITHSCORES"],
    // Wrong types, and a GEO key is a sorted set to every other command.
    &["SET", "str", "x"],
    &["GEOADD", "str", "1", "1", "a"],
    &["GEOADD", "str", "1", "100", "a"],
    &["GEOPOS", "str", "a"],
    &["GEOHASH", "str", "a"],
    &["GEODIST", "str", "a", "b"],
    &["GEODIST", "str", "a", "b", "badunit"],
    &["GEORADIUS", "str", "1", "100", "1", "km"],
    &["GEORADIUSBYMEMBER", "str", "a", "1", "km"],
    &["GEOSEARCH", "str", "FROMMEMBER", "a", "BYRADIUS", "1", "km"],
    &["GEOSEARCHSTORE", "dst", "str", "FROMMEMBER", "a", "BYRADIUS", "1", "km"],
    &["GEOSEARCHSTORE", "str", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km"],
    &["TYPE", "str"],
    &["TYPE", "Sicily"],
    &["OBJECT", "ENCODING", "Sicily"],
    &["ZCARD", "Sicily"],
    &["ZADD", "Sicily", "0", "zero", "4503599627370495", "top"],
    &["GEOPOS", "Sicily", "zero", "top"],
    &["GEOHASH", "Sicily", "zero", "top"],
    // Scores no GEOADD makes: read as Redis's (uint64_t) conversion reads them.
    &["ZADD", "foreign", "-5", "neg", "1e20", "big", "9.3e18", "mid", "-1e19", "vneg", "inf", "pinf"],
    &["ZADD", "foreign", "-inf", "ninf", "4503599627370496", "p52", "1.5", "frac"],
    &["GEOPOS", "foreign", "neg", "big", "mid", "vneg", "pinf", "ninf", "p52", "frac"],
    &["GEOHASH", "foreign", "neg", "big", "mid", "vneg", "pinf", "ninf", "p52", "frac"],
    &["GEODIST", "foreign", "neg", "big"],
    &["GEOSEARCH", "foreign", "FROMLONLAT", "0", "0", "BYRADIUS", "30000", "km", "WITHHASH", "WITHDIST", "ASC"],
    &["GEODIST", "Sicily", "zero", "top", "km"],
    &["EVAL", "return redis.call('GEOPOS', KEYS[1], 'Palermo')", "1", "Sicily"],
    &["EVAL", "redis.setresp(3); return redis.call('GEOPOS', KEYS[1], 'Palermo')", "1", "Sicily"],
    &[
        "EVAL",
        "return redis.call('GEOSEARCH', KEYS[1], 'FROMMEMBER', 'Palermo', 'BYRADIUS', 1, 'km', 'WITHCOORD')",
        "1",
        "Sicily",
    ],
    &["COMMAND", "GETKEYS", "GEORADIUS", "k", "0", "0", "1", "km", "STORE", "d1", "STOREDIST", "d2"],
    &["COMMAND", "GETKEYS", "GEORADIUSBYMEMBER", "k", "m", "1", "km", "STORE", "d1"],
    &["COMMAND", "GETKEYS", "GEOSEARCHSTORE", "d", "s", "FROMMEMBER", "m", "BYRADIUS", "1", "km"],
    &["COMMAND", "GETKEYS", "GEORADIUS", "k", "0", "0", "1", "km"],
];

/// The raw reply frames of `commands`, in order, on one connection.
fn replies(conn: &mut RawConn, commands: &[Vec<String>]) -> Vec<Vec<u8>> {
    commands.iter().map(|args| conn.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())).collect()
}

fn owned(script: &[&[&str]]) -> Vec<Vec<String>> {
    script.iter().map(|args| args.iter().map(|a| a.to_string()).collect()).collect()
}

/// Run `commands` on fresh connections to both servers, in RESP2 and then RESP3, and require
/// byte-identical replies; returns Redis's RESP2 replies.
fn assert_same_replies(redis: &Server, staykv: &Server, commands: &[Vec<String>]) -> Vec<Vec<u8>> {
    let mut runs = common::on_both_in_resp2_and_resp3(redis, staykv, |conn| replies(conn, commands));
    for (protocol, expected, got) in &runs {
        for ((args, e), g) in commands.iter().zip(expected).zip(got) {
            assert_eq!(String::from_utf8_lossy(g), String::from_utf8_lossy(e), "{protocol} {args:?}");
        }
    }
    runs.swap_remove(0).1
}

#[test]
fn replies_match_redis_in_resp2_and_resp3() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    assert_same_replies(&redis, &staykv, &owned(SCRIPT));
}

/// A random coordinate pair: anywhere, or near one of a few centres (so searches find
/// neighbours), or exactly on an earlier point (ties in distance), or at the limits.
fn random_point(rng: &mut SmallRng, earlier: &[(f64, f64)]) -> (f64, f64) {
    const CENTRES: [(f64, f64); 4] = [(13.36, 38.11), (-179.9, 10.0), (0.0, 84.9), (151.2, -33.86)];
    match rng.gen_range(0..10) {
        0 | 1 => (rng.gen_range(-180.0..=180.0), rng.gen_range(-85.05112878..=85.05112878)),
        2 if !earlier.is_empty() => earlier[rng.gen_range(0..earlier.len())],
        3 => (if rng.gen() { 180.0 } else { -180.0 }, rng.gen_range(-85.0..85.0)),
        _ => {
            let (lon, lat) = CENTRES[rng.gen_range(0..CENTRES.len())];
            let lon = (lon + rng.gen_range(-2.0..2.0f64)).clamp(-180.0, 180.0);
            (lon, (lat + rng.gen_range(-2.0..2.0f64)).clamp(-85.05112878, 85.05112878))
        }
    }
}

/// A random GEOSEARCH, GEOSEARCHSTORE or GEORADIUS* over key `g` with `members` points.
fn random_search(rng: &mut SmallRng, members: usize, points: &[(f64, f64)]) -> Vec<Vec<String>> {
    let units = ["m", "km", "mi", "ft"];
    let unit = units[rng.gen_range(0..units.len())];
    let to_m = [1.0, 1000.0, 1609.34, 0.3048][units.iter().position(|u| *u == unit).unwrap()];
    let size = |rng: &mut SmallRng| format!("{:.3}", 10f64.powf(rng.gen_range(1.0..7.3)) / to_m);
    let (lon, lat) = random_point(rng, points);
    let member = format!("p{}", rng.gen_range(0..members + 5));
    let mut options: Vec<String> = Vec::new();
    for (flag, chance) in [("WITHDIST", 0.5), ("WITHCOORD", 0.3), ("WITHHASH", 0.3)] {
        if rng.gen_bool(chance) {
            options.push(flag.into());
        }
    }
    match rng.gen_range(0..4) {
        0 => options.push("ASC".into()),
        1 => options.push("DESC".into()),
        _ => {}
    }
    if rng.gen_bool(0.4) {
        options.extend(["COUNT".to_string(), rng.gen_range(1..20).to_string()]);
        if rng.gen_bool(0.3) {
            options.push("ANY".into());
        }
    }
    let from_member = rng.gen_bool(0.3);
    let mut from = if from_member {
        vec!["FROMMEMBER".to_string(), member.clone()]
    } else {
        vec!["FROMLONLAT".to_string(), lon.to_string(), lat.to_string()]
    };
    let mut by = match rng.gen_bool(0.5) {
        true => vec!["BYRADIUS".to_string(), size(rng), unit.to_string()],
        false => vec!["BYBOX".to_string(), size(rng), size(rng), unit.to_string()],
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..6) {
        0 => {
            let mut cmd = s(&["GEOSEARCHSTORE", "out", "g"]);
            cmd.append(&mut from);
            cmd.append(&mut by);
            cmd.extend(options.into_iter().filter(|o| !o.starts_with("WITH")));
            if rng.gen_bool(0.5) {
                cmd.push("STOREDIST".into());
            }
            vec![cmd, s(&["ZRANGE", "out", "0", "-1", "WITHSCORES"]), s(&["OBJECT", "ENCODING", "out"])]
        }
        1 => {
            let mut cmd = s(&["GEORADIUS", "g"]);
            cmd.extend([lon.to_string(), lat.to_string(), size(rng), unit.to_string()]);
            cmd.extend(options);
            vec![cmd]
        }
        2 => {
            let mut cmd = s(&["GEORADIUSBYMEMBER_RO", "g", &member]);
            cmd.extend([size(rng), unit.to_string()]);
            cmd.extend(options);
            vec![cmd]
        }
        _ => {
            let mut cmd = s(&["GEOSEARCH", "g"]);
            cmd.append(&mut from);
            cmd.append(&mut by);
            cmd.extend(options);
            vec![cmd]
        }
    }
}

#[test]
fn random_points_and_searches_match_redis() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let mut rng = SmallRng::seed_from_u64(0x6e0_5eed);
    let members = 300;
    let mut points = Vec::new();
    let mut commands = Vec::new();
    for i in 0..members {
        let (lon, lat) = random_point(&mut rng, &points);
        points.push((lon, lat));
        commands.push(vec!["GEOADD".to_string(), "g".into(), lon.to_string(), lat.to_string(), format!("p{i}")]);
    }
    commands.push(vec!["ZRANGE".into(), "g".into(), "0".into(), "-1".into(), "WITHSCORES".into()]);
    let mut positions = vec!["GEOPOS".to_string(), "g".into()];
    positions.extend((0..members + 3).map(|i| format!("p{i}")));
    let mut hashes = positions.clone();
    hashes[0] = "GEOHASH".into();
    commands.extend([positions, hashes]);
    for _ in 0..400 {
        commands.extend(random_search(&mut rng, members, &points));
    }
    for _ in 0..100 {
        let (a, b) = (rng.gen_range(0..members + 2), rng.gen_range(0..members));
        let unit = ["m", "km", "mi", "ft"][rng.gen_range(0..4)];
        commands.push(vec!["GEODIST".into(), "g".into(), format!("p{a}"), format!("p{b}"), unit.into()]);
    }
    let replies = assert_same_replies(&redis, &staykv, &commands);
    // The workload means something only if searches find members, several at a time.
    let searches = commands.iter().zip(&replies).filter(|(c, _)| c[0].starts_with("GEO") && c[0] != "GEOADD");
    let found =
        searches.filter(|(_, r)| r.starts_with(b"*") && !r.starts_with(b"*0") && !r.starts_with(b"*1\r")).count();
    assert!(found > 100, "only {found} searches found two members or more");
}

#[test]
fn geo_keys_and_stored_results_survive_sigkill() {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    conn.cmd(&["GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"]);
    conn.cmd(&["GEOADD", "Sicily", "XX", "CH", "13.5", "38.2", "Palermo"]);
    conn.cmd(&["GEOADD", "Sicily", "180", "85.05112878", "ne"]);
    let stored = conn.cmd(&["GEOSEARCHSTORE", "near", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "300", "km"]);
    assert_eq!(stored, b":2\r\n");
    conn.cmd(&["GEOSEARCHSTORE", "dist", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "300", "km", "STOREDIST"]);
    conn.cmd(&["GEORADIUS", "Sicily", "15", "37", "300", "km", "STORE", "old"]);
    conn.cmd(&["SET", "gone", "x"]);
    conn.cmd(&["GEOSEARCHSTORE", "gone", "Sicily", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"]);
    let state = |conn: &mut RawConn| {
        let mut out = Vec::new();
        for key in ["Sicily", "near", "dist", "old", "gone"] {
            out.push(conn.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"]));
            out.push(conn.cmd(&["TYPE", key]));
        }
        out.push(conn.cmd(&["GEOPOS", "Sicily", "Palermo", "Catania", "ne"]));
        out
    };
    let before = state(&mut conn);
    assert_eq!(before[9], b"+none\r\n", "an empty result deletes the destination");
    server.kill();
    server.restart();
    let mut conn = server.connect();
    assert_eq!(state(&mut conn), before, "after SIGKILL (log replay)");
    // Fold everything into a snapshot, then recover from the snapshot alone.
    conn.cmd(&["BGREWRITEAOF"]);
    let done = common::wait_until(Duration::from_secs(20), || {
        persist_common::info_field(&mut conn, "aof_rewrite_in_progress") == "0"
    });
    assert!(done, "compaction did not finish");
    server.kill();
    server.restart();
    let mut conn = server.connect();
    assert_eq!(state(&mut conn), before, "after a snapshot");
}
