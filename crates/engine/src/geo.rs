//! Geohash math for the GEO commands, as Redis 7.0 computes it (`geohash.c`,
//! `geohash_helper.c`).
//!
//! # Why it must be Redis's arithmetic, step for step
//!
//! A GEO key is a plain sorted set whose scores are 52-bit geohashes: 26 bits of longitude
//! (-180..180) interleaved with 26 bits of latitude over the Web Mercator range
//! (-85.05112878..85.05112878), latitude in the even bits. Everything a client sees is derived
//! from those integers with floating-point operations whose last bits show in the replies:
//! GEOPOS prints the decoded cell centre with 17 decimals, distances print with 4, and whether
//! a point near the edge of a search area is in or out depends on the exact double computed.
//! So each function here performs the same operations in the same order as Redis (the same
//! libm `sin`/`cos`/`asin`), rather than a cleaner formula that would differ in the last ulp.
//!
//! # Searches
//!
//! A radius or box search does not scan the set: [`search_areas`] picks a geohash precision
//! (step) whose cells are about as large as the search, and returns the cell holding the
//! centre plus its eight neighbours, dropping neighbours the search area cannot reach. Each
//! cell is one contiguous score range ([`cell_scores`]); every member in it is then decoded
//! and kept if [`Shape::distance_if_within`] says so. Cells are visited in Redis's order
//! (centre, N, S, E, W, NE, NW, SE, SW), which is the order of unsorted replies.

/// Bits of precision per coordinate of a stored score.
pub const STEP_MAX: u8 = 26;
pub const LON_MIN: f64 = -180.0;
pub const LON_MAX: f64 = 180.0;
/// The Web Mercator latitude limits (EPSG:3785), Redis's `GEO_LAT_MIN`/`GEO_LAT_MAX`.
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
/// Redis's `EARTH_RADIUS_IN_METERS`, the WGS-84 quadratic mean radius.
pub const EARTH_RADIUS_M: f64 = 6372797.560856;
/// Half the circumference of the Mercator projection, for estimating the step of a search.
const MERCATOR_MAX: f64 = 20037726.37;
/// The geohash alphabet (base32 without a, i, l, o).
const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// A closed interval of one coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub min: f64,
    pub max: f64,
}

/// The ranges stored scores are computed over.
const LON_SPAN: Span = Span { min: LON_MIN, max: LON_MAX };
const LAT_SPAN: Span = Span { min: LAT_MIN, max: LAT_MAX };

/// A geohash of `step` bits per coordinate (`bits` holds 2 × step bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hash {
    pub bits: u64,
    pub step: u8,
}

/// The cell a hash names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub lon: Span,
    pub lat: Span,
}

/// Spread the 32 bits of `v` to the even bits of a u64.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gather the even bits of `x` into a u32 (the inverse of [`spread`]).
fn gather(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// Latitude in the even bits, longitude in the odd ones.
fn interleave(lat: u32, lon: u32) -> u64 {
    spread(lat) | (spread(lon) << 1)
}

/// Whether a longitude/latitude pair can be stored (Redis checks the Mercator limits).
pub fn valid_lon_lat(lon: f64, lat: f64) -> bool {
    (LON_MIN..=LON_MAX).contains(&lon) && (LAT_MIN..=LAT_MAX).contains(&lat)
}

/// Redis's `geohashEncode`: the offsets within the ranges, scaled to `step` bits and
/// truncated. `None` outside the storable limits or the given ranges.
fn encode(lon_span: Span, lat_span: Span, lon: f64, lat: f64, step: u8) -> Option<Hash> {
    let in_span = |v: f64, s: Span| v >= s.min && v <= s.max;
    if step == 0 || step > 32 || !valid_lon_lat(lon, lat) || !in_span(lon, lon_span) || !in_span(lat, lat_span) {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_span.min) / (lat_span.max - lat_span.min) * scale;
    let lon_offset = (lon - lon_span.min) / (lon_span.max - lon_span.min) * scale;
    // C converts the offsets to uint32_t: truncation, as `as` does for in-range values.
    Some(Hash { bits: interleave(lat_offset as u32, lon_offset as u32), step })
}

/// The hash of a point at `step` bits over the storage ranges.
fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Hash> {
    encode(LON_SPAN, LAT_SPAN, lon, lat, step)
}

/// The score GEOADD stores for a point (`geohashAlign52Bits` of the 26-step hash), or `None`
/// for coordinates outside the limits.
pub fn score_of(lon: f64, lat: f64) -> Option<u64> {
    encode_wgs84(lon, lat, STEP_MAX).map(align52)
}

/// A hash shifted to 52 bits, the scale of stored scores.
fn align52(hash: Hash) -> u64 {
    hash.bits << (52 - u32::from(hash.step) * 2)
}

/// A score as Redis reads it, `(uint64_t)score` compiled for x86-64: below 2^63 a signed
/// conversion (so -5 becomes 2^64 - 5), above it a signed conversion of `score - 2^63` with
/// the top bit flipped; out of range (NaN, infinities, beyond ±2^63 or 2^64) the
/// conversion yields 2^63 before the flip. Only scores set by ZADD can be such.
fn score_bits(score: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    const INDEFINITE: u64 = 1 << 63;
    let signed = |x: f64| if (-TWO_63..TWO_63).contains(&x) { (x as i64) as u64 } else { INDEFINITE };
    if score < TWO_63 {
        signed(score)
    } else {
        signed(score - TWO_63) ^ INDEFINITE
    }
}

/// Redis's `geohashDecode`: the cell of `hash` over the given ranges.
fn decode(lon_span: Span, lat_span: Span, hash: Hash) -> Cell {
    let lat_index = gather(hash.bits);
    let lon_index = gather(hash.bits >> 1);
    let cells = (1u64 << hash.step) as f64;
    let bound = |span: Span, index: u32| span.min + (f64::from(index) / cells) * (span.max - span.min);
    Cell {
        lat: Span { min: bound(lat_span, lat_index), max: bound(lat_span, lat_index.wrapping_add(1)) },
        lon: Span { min: bound(lon_span, lon_index), max: bound(lon_span, lon_index.wrapping_add(1)) },
    }
}

/// The cell centre of a stored score, clamped to the limits: what GEOPOS answers and what
/// distances are measured from.
pub fn decode_score(score: f64) -> (f64, f64) {
    let cell = decode(LON_SPAN, LAT_SPAN, Hash { bits: score_bits(score), step: STEP_MAX });
    let lon = ((cell.lon.min + cell.lon.max) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((cell.lat.min + cell.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The standard 11-character geohash of a stored score (GEOHASH). Redis's own scores use
/// the Mercator latitude range, so the cell centre is re-encoded over -90..90; the 11th
/// character would need 55 bits where there are 52, and is always '0'.
pub fn geohash_string(score: f64) -> String {
    let (lon, lat) = decode_score(score);
    let standard_lat = Span { min: -90.0, max: 90.0 };
    let bits = encode(LON_SPAN, standard_lat, lon, lat, STEP_MAX).map_or(0, |h| h.bits);
    (0..11u32)
        .map(|i| {
            let index = if i == 10 { 0 } else { (bits >> (52 - (i + 1) * 5)) & 0x1f };
            ALPHABET.get(index as usize).map_or('0', |&c| char::from(c))
        })
        .collect()
}

fn deg_rad(degrees: f64) -> f64 {
    degrees * (std::f64::consts::PI / 180.0)
}

fn rad_deg(radians: f64) -> f64 {
    radians / (std::f64::consts::PI / 180.0)
}

/// Great-circle distance in meters (haversine), Redis's `geohashGetDistance`.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((deg_rad(lon2) - deg_rad(lon1)) / 2.0).sin();
    // On one meridian the haversine reduces to the arc between the latitudes. Redis 7.0.15
    // takes this shortcut, whose result can differ from the full formula in the last bit
    // (which STOREDIST shows).
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    2.0 * EARTH_RADIUS_M * (u * u + lat1r.cos() * lat2r.cos() * v * v).sqrt().asin()
}

/// The distance between two latitudes along a meridian (Redis's `geohashGetLatDistance`).
fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// What a search covers, in meters (the unit's conversion already applied).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Area {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// A search: its centre and area.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub lon: f64,
    pub lat: f64,
    pub area: Area,
}

impl Shape {
    /// The distance of a point from the centre if the point is inside the area. A box is
    /// tested as Redis does: the north-south distance along the point's meridian and the
    /// east-west distance along its parallel, each against half the side.
    pub fn distance_if_within(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.area {
            Area::Radius(radius) => Some(distance(self.lon, self.lat, lon, lat)).filter(|d| *d <= radius),
            Area::Box { width, height } => {
                if lat_distance(lat, self.lat) > height / 2.0 || distance(lon, lat, self.lon, lat) > width / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }

    /// Half the extent north-south and east-west, in meters.
    fn half_sides(&self) -> (f64, f64) {
        match self.area {
            Area::Radius(r) => (r, r),
            Area::Box { width, height } => (height / 2.0, width / 2.0),
        }
    }

    /// The distance from the centre to the farthest point of the area.
    fn reach(&self) -> f64 {
        match self.area {
            Area::Radius(r) => r,
            Area::Box { width, height } => ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt(),
        }
    }

    /// Redis's `geohashBoundingBox`: (min lon, min lat, max lon, max lat). Meridians
    /// converge towards the pole, so the longitude extent is taken at the edge nearer to it.
    fn bounding_box(&self) -> [f64; 4] {
        let (height, width) = self.half_sides();
        let lat_delta = rad_deg(height / EARTH_RADIUS_M);
        let lon_delta_top = rad_deg(width / EARTH_RADIUS_M / deg_rad(self.lat + lat_delta).cos());
        let lon_delta_bottom = rad_deg(width / EARTH_RADIUS_M / deg_rad(self.lat - lat_delta).cos());
        let lon_delta = if self.lat < 0.0 { lon_delta_bottom } else { lon_delta_top };
        [self.lon - lon_delta, self.lat - lat_delta, self.lon + lon_delta, self.lat + lat_delta]
    }
}

/// Redis's `geohashEstimateStepsByRadius`: the precision whose cells are about as wide as
/// the search, coarser near the poles where cells narrow.
fn estimate_step(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return STEP_MAX;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    u8::try_from(step.clamp(1, i32::from(STEP_MAX))).unwrap_or(1)
}

/// Move a hash one cell east (`1`) or west (`-1`): add to or subtract from the longitude bits
/// alone, wrapping around (Redis's `geohash_move_x`).
fn move_x(hash: Hash, d: i8) -> Hash {
    move_bits(hash, d, 0xaaaa_aaaa_aaaa_aaaa)
}

/// Move a hash one cell north (`1`) or south (`-1`) (Redis's `geohash_move_y`).
fn move_y(hash: Hash, d: i8) -> Hash {
    move_bits(hash, d, 0x5555_5555_5555_5555)
}

/// Add ±1 to the coordinate whose bits `mask` selects: the other coordinate's bits are
/// filled with ones (or zeros) so that carries and borrows pass through them.
fn move_bits(hash: Hash, d: i8, mask: u64) -> Hash {
    if d == 0 {
        return hash;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let own = hash.bits & mask;
    let other = hash.bits & !mask;
    let filler = (!mask) >> shift;
    let moved = if d > 0 { own.wrapping_add(filler + 1) } else { (own | filler).wrapping_sub(filler + 1) };
    Hash { bits: (moved & (mask >> shift)) | other, step: hash.step }
}

/// The cells a search visits, in Redis's order: the centre's cell, then N, S, E, W, NE, NW,
/// SE, SW; `None` for a neighbour the area cannot reach (Redis's zeroed neighbours).
pub fn search_areas(shape: &Shape) -> [Option<Hash>; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = shape.bounding_box();
    let mut step = estimate_step(shape.reach(), shape.lat);
    let Some(mut centre) = encode_wgs84(shape.lon, shape.lat, step) else {
        return [None; 9];
    };
    // A neighbour may not reach the bounding box when the centre sits near its cell's edge:
    // then one step coarser.
    let reaches = |centre: Hash| {
        let cell = |h: Hash| decode(LON_SPAN, LAT_SPAN, h);
        !(cell(move_y(centre, 1)).lat.max < max_lat
            || cell(move_y(centre, -1)).lat.min > min_lat
            || cell(move_x(centre, 1)).lon.max < max_lon
            || cell(move_x(centre, -1)).lon.min > min_lon)
    };
    if step > 1 && !reaches(centre) {
        step -= 1;
        centre = encode_wgs84(shape.lon, shape.lat, step).unwrap_or(centre);
    }
    let cell = decode(LON_SPAN, LAT_SPAN, centre);
    // Which sides the area does not reach past the centre's cell (only at step 2 and up).
    let fine = step >= 2;
    let south = !(fine && cell.lat.min < min_lat);
    let north = !(fine && cell.lat.max > max_lat);
    let west = !(fine && cell.lon.min < min_lon);
    let east = !(fine && cell.lon.max > max_lon);
    let at = |dx: i8, dy: i8, keep: bool| keep.then(|| move_y(move_x(centre, dx), dy));
    [
        Some(centre),
        at(0, 1, north),
        at(0, -1, south),
        at(1, 0, east),
        at(-1, 0, west),
        at(1, 1, north && east),
        at(-1, 1, north && west),
        at(1, -1, south && east),
        at(-1, -1, south && west),
    ]
}

/// The scores a cell covers: `min <= score < max` (Redis's `scoresOfGeoHashBox`).
pub fn cell_scores(hash: Hash) -> (f64, f64) {
    let min = align52(hash);
    let max = align52(Hash { bits: hash.bits + 1, step: hash.step });
    (min as f64, max as f64)
}

/// A distance (in the request's unit) as Redis prints it (`%.4f`).
pub fn format_distance(distance: f64) -> String {
    format!("{distance:.4}")
}

#[cfg(test)]
mod tests;
