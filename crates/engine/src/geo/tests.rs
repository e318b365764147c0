//! Every expected value below was read from Debian's redis-server 7.0.15 (GEOADD then
//! ZSCORE, GEOPOS, GEOHASH, GEODIST, GEOSEARCH).
#![allow(clippy::unwrap_used)]

use super::*;
use staykv_resp::format_human_double;

/// (longitude, latitude, member) as given to GEOADD, and the score Redis stored.
const POINTS: &[(f64, f64, &str, u64)] = &[
    (13.0, 37.0, "west", 3476058495541678),
    (14.5, 36.8, "south", 3476463750255438),
    (16.9, 37.1, "east", 3478120671497844),
    (13.361389, 38.115556, "Palermo", 3479099956230698),
    (12.758489, 38.788135, "edge1", 3479273021651468),
    (15.087269, 37.502669, "Catania", 3479447370796909),
    (15.2, 38.9, "north", 3479739804181687),
    (17.241510, 38.788135, "edge2", 3481342659049484),
    (180.0, 85.05112878, "ne", 13510798882111488),
    (-180.0, -85.05112878, "sw", 0),
];

fn score(member: &str) -> f64 {
    POINTS.iter().find(|p| p.2 == member).map(|p| p.3 as f64).unwrap()
}

#[test]
fn scores_are_redis_geoadd_scores() {
    for &(lon, lat, member, expected) in POINTS {
        assert_eq!(score_of(lon, lat), Some(expected), "{member}");
    }
}

#[test]
fn points_outside_the_mercator_limits_have_no_score() {
    assert_eq!(score_of(180.000001, 0.0), None);
    assert_eq!(score_of(0.0, 85.06), None);
    assert_eq!(score_of(0.0, -85.0511288), None);
    assert!(valid_lon_lat(-180.0, LAT_MIN));
    assert!(!valid_lon_lat(f64::INFINITY, 0.0));
}

#[test]
fn decoding_gives_the_cell_centre_geopos_prints() {
    let cases = [
        ("Palermo", "13.36138933897018433", "38.11555639549629859"),
        ("ne", "180", "85.0511287799999991"),
        ("sw", "-179.99999731779098511", "-85.05112751263942528"),
    ];
    for (member, lon, lat) in cases {
        let (x, y) = decode_score(score(member));
        assert_eq!((format_human_double(x).as_str(), format_human_double(y).as_str()), (lon, lat), "{member}");
    }
}

#[test]
fn geohash_strings_use_the_standard_latitude_range() {
    assert_eq!(geohash_string(score("Palermo")), "sqc8b49rny0");
    assert_eq!(geohash_string(score("ne")), "bp05b5048p0");
    assert_eq!(geohash_string(score("sw")), "00bh0hbj200");
}

#[test]
fn distances_are_redis_geodist() {
    let between = |a: &str, b: &str| {
        let ((x1, y1), (x2, y2)) = (decode_score(score(a)), decode_score(score(b)));
        distance(x1, y1, x2, y2)
    };
    assert_eq!(format_distance(between("Palermo", "Catania")), "166274.1516");
    assert_eq!(format_distance(between("Palermo", "Catania") / 1000.0), "166.2742");
    assert_eq!(format_distance(between("Palermo", "edge2")), "346127.3044");
    assert_eq!(format_distance(between("north", "south")), "241527.9654");
    // On one meridian: GEOSEARCHSTORE ... STOREDIST stored 828.6827152495141 (mi) where the
    // full haversine gives 828.682715249514.
    let meters = distance(180.0, -54.39082130863986, 180.0, -66.38108117487332);
    assert_eq!(meters / 1609.34, 828.6827152495141);
}

/// The members of [`POINTS`] a search finds, in Redis's unsorted reply order, with their
/// distances in km: cells in [`search_areas`] order, each in score order.
fn search(shape: &Shape) -> Vec<(&'static str, String)> {
    let mut sorted: Vec<_> = POINTS.iter().collect();
    sorted.sort_by_key(|p| p.3);
    let mut found = Vec::new();
    let mut last = None;
    for cell in search_areas(shape).into_iter().flatten().filter(|c| last.replace(*c) != Some(*c)) {
        let (min, max) = cell_scores(cell);
        for p in sorted.iter().filter(|p| (min..max).contains(&(p.3 as f64))) {
            let (lon, lat) = decode_score(p.3 as f64);
            if let Some(d) = shape.distance_if_within(lon, lat) {
                found.push((p.2, format_distance(d / 1000.0)));
            }
        }
    }
    found
}

#[test]
fn searches_visit_the_cells_redis_visits_in_its_order() {
    let radius = Shape { lon: 15.0, lat: 37.0, area: Area::Radius(200_000.0) };
    let expected = [
        ("west", "177.6553"),
        ("south", "49.7263"),
        ("Palermo", "190.4424"),
        ("Catania", "56.4413"),
        ("east", "169.0281"),
    ];
    let expected: Vec<_> = expected.iter().map(|(m, d)| (*m, d.to_string())).collect();
    assert_eq!(search(&radius), expected);
    let rectangle = Shape { lon: 15.0, lat: 37.0, area: Area::Box { width: 300_000.0, height: 200_000.0 } };
    let names: Vec<_> = search(&rectangle).into_iter().map(|(m, _)| m).collect();
    assert_eq!(names, ["south", "Catania"]);
}

#[test]
fn the_step_shrinks_with_the_radius_and_towards_the_poles() {
    assert_eq!(estimate_step(0.0, 0.0), STEP_MAX);
    assert!(estimate_step(1.0, 0.0) > estimate_step(100_000.0, 0.0));
    assert_eq!(estimate_step(100_000.0, 70.0), estimate_step(100_000.0, 0.0) - 1);
    assert_eq!(estimate_step(100_000.0, -81.0), estimate_step(100_000.0, 0.0) - 2);
    assert_eq!(estimate_step(1e9, 0.0), 1);
}

#[test]
fn neighbours_wrap_around_the_antimeridian() {
    let east_edge = encode_wgs84(179.9, 0.0, 10).unwrap();
    let west_edge = encode_wgs84(-179.9, 0.0, 10).unwrap();
    assert_eq!(move_x(east_edge, 1), west_edge);
    assert_eq!(move_x(west_edge, -1), east_edge);
    assert_eq!(move_y(move_y(east_edge, 1), -1), east_edge);
}

#[test]
fn interleaving_round_trips() {
    for (lat, lon) in [(0u32, 0u32), (u32::MAX, 0), (0x1234_5678, 0x9abc_def0), (1 << 26, (1 << 26) - 1)] {
        let bits = interleave(lat, lon);
        assert_eq!((gather(bits), gather(bits >> 1)), (lat, lon));
    }
}

#[test]
fn foreign_scores_decode_as_redis_converts_them() {
    // ZADD'ed scores, and the GEOPOS Redis answered for them.
    let (max_lon, min_lon) = ("180", "-179.99999731779098511");
    let (max_lat, min_lat) = ("85.0511287799999991", "-85.05112751263942528");
    let cases = [
        (-5.0, max_lon, max_lat),
        (1e20, min_lon, min_lat),
        (9.3e18, max_lon, max_lat),
        (-1e19, max_lon, min_lat),
        (f64::INFINITY, min_lon, min_lat),
        (f64::NEG_INFINITY, max_lon, min_lat),
        (4503599627370496.0, min_lon, max_lat),
    ];
    for (score, lon, lat) in cases {
        let (x, y) = decode_score(score);
        assert_eq!((format_human_double(x).as_str(), format_human_double(y).as_str()), (lon, lat), "{score}");
    }
}
