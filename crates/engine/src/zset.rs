//! The sorted set: members ordered by score, then by member bytes.
//!
//! # Structure and why
//!
//! As Redis does, two layouts: while Redis 7.0 would hold the set as a listpack (see below) its
//! entries in order in one buffer (`zset/packed.rs`), beyond it a skip list with spans, as in
//! Redis's `t_zset.c`, plus a hash index from member to node:
//!
//! * Nodes live in a slab (`Vec<Option<Node>>`) and link to each other by slot number instead
//!   of by pointer, so the structure is plain safe Rust. Slot 0 is the header; since nothing
//!   ever links *to* the header, 0 doubles as "no node".
//! * Each level of each node carries a *span* (how many nodes its link skips), which makes rank
//!   queries and access by rank O(log n) — what a `BTreeMap<(score, member), ()>` cannot do
//!   without an order-statistic augmentation. Level-0 links plus backward links give O(1)
//!   steps in both directions for range walks (ZRANGE, ZREVRANGE, LIMIT).
//! * The index is a `hashbrown::HashTable<u32>` of slot numbers keyed by a hash of the member
//!   (under the process's one seed, as large sets and hashes hash theirs), so ZSCORE/ZMSCORE
//!   and the existence checks are O(1) and the member bytes are stored once.
//! * A node keeps its slot while its member is in the set (a score change relinks the same
//!   slot), until a removal leaves the slab more than half holes: then the top nodes move down
//!   into the lowest holes and every link follows (`slab.rs`), so memory follows the set down.
//!   ZSCAN's cursor walks the slots downward, so a member present for the whole scan stays
//!   below the cursor until it is visited and is returned. Freed slots are reused by later
//!   insertions.
//!
//! Costs (n members, expected, the skip list's levels being random with p = 1/4 as in Redis):
//! insert, remove, score change, rank, access by rank and range seek O(log n); member lookup
//! O(1); each further step of a range walk O(1); a range count O(log n); removing k members
//! of a range O(log n + k).
//!
//! # Order
//!
//! Scores compare with IEEE `<` and `==`, so `-0.0` and `0.0` are the same position (ties
//! then go by member bytes, memcmp then length — slice order). NaN is never stored (the
//! callers refuse it); `inf` and `-inf` are ordinary scores.
//!
//! # Redis 7.0's two encodings
//!
//! Redis keeps small sets (≤ 128 members, none longer than 64 bytes) as a listpack and
//! converts to a skip list on growth, never back (except for the results of STORE commands).
//! StayKV switches layouts at exactly those points, because the encoding is visible: `OBJECT
//! ENCODING`, ZSCAN (a listpack set is returned whole, in order, with cursor 0), the sign of
//! zero (a listpack stores `-0` as the integer `0`; a skip list keeps it), and which member
//! a lex range over mixed scores starts at (a listpack is searched linearly).

use bytes::Bytes;
use hashbrown::HashTable;

/// Redis's `zset-max-listpack-entries` default.
pub const LISTPACK_MAX_ENTRIES: usize = 128;
/// Redis's `zset-max-listpack-value` default.
pub const LISTPACK_MAX_VALUE: usize = 64;

const MAX_LEVEL: usize = 32;
/// The header's slot, and "no node" in links.
const HEAD: u32 = 0;
const NIL: u32 = 0;

#[derive(Debug, Clone, Copy, Default)]
struct Level {
    forward: u32,
    span: u32,
}

#[derive(Debug, Clone)]
struct Node {
    member: Bytes,
    score: f64,
    backward: u32,
    levels: Box<[Level]>,
}

mod packed;

use packed::Packed;

use crate::byte_table::hash;

/// A sorted set. See the module documentation.
#[derive(Clone)]
pub struct ZSet {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Where Redis 7.0 holds a listpack.
    Packed(Packed),
    Skip(Box<SkipList>),
}

/// The skip list of a sorted set past the listpack limits.
#[derive(Clone)]
struct SkipList {
    nodes: Vec<Option<Node>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    tail: u32,
    level: usize,
    len: usize,
    member_bytes: usize,
    rng: u64,
}

/// ZADD's options, as `zsetAdd` takes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub incr: bool,
}

/// What [`ZSet::add`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AddOutcome {
    /// A new member, with this score.
    Added(f64),
    /// An existing member moved to this score.
    Updated(f64),
    /// An existing member whose (new) score equals the old one: nothing changed, but INCR
    /// still answers this score.
    Unchanged(f64),
    /// Refused by NX, XX, GT or LT.
    Skipped,
    /// The score (or the incremented score) is not a number.
    Nan,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new()
    }
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

fn get<T: Copy + Default>(items: &[T], i: usize) -> T {
    items.get(i).copied().unwrap_or_default()
}

fn put<T>(items: &mut [T], i: usize, value: T) {
    if let Some(slot) = items.get_mut(i) {
        *slot = value;
    }
}

fn slot_member(nodes: &[Option<Node>], slot: u32) -> &[u8] {
    nodes.get(slot as usize).and_then(Option::as_ref).map_or(&[], |n| &n.member[..])
}

/// Redis's quick emptiness test before a range search, given the set's first and last members
/// (score, member): the bounds are crossed, the set is empty, the last member is below the
/// minimum, or the first is above the maximum. (With a lex range over members of different
/// scores these matter: Redis's answer is defined by them.)
fn may_hold<R: Range>(range: &R, first: Option<(f64, &[u8])>, last: Option<(f64, &[u8])>) -> bool {
    let (Some((first_score, first)), Some((last_score, last))) = (first, last) else { return false };
    !range.is_empty() && range.gte_min(last_score, last) && range.lte_max(first_score, first)
}

/// Whether `score` is -0 (equal to 0, but kept apart by a skip list).
pub fn is_negative_zero(score: f64) -> bool {
    score.to_bits() == (-0.0f64).to_bits()
}

/// A listpack stores an integral score as an integer: `-0` becomes `0`.
fn listpack_score(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

impl ZSet {
    pub fn new() -> ZSet {
        ZSet { repr: Repr::Packed(Packed::default()) }
    }

    /// An empty set created for about `size_hint` members (Redis's `zsetTypeCreate`): a
    /// hint above the listpack limit starts it in the skip-list encoding.
    pub fn with_size_hint(size_hint: usize) -> ZSet {
        if size_hint <= LISTPACK_MAX_ENTRIES {
            ZSet::new()
        } else {
            ZSet { repr: Repr::Skip(Box::new(SkipList::new())) }
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.len(),
            Repr::Skip(s) => s.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether Redis 7.0 would hold this set as a listpack (else a skip list).
    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, Repr::Packed(_))
    }

    /// Leave the listpack encoding for good, as Redis's SORT does to a sorted set it reads
    /// (`zsetConvert(sortval, OBJ_ENCODING_SKIPLIST)`), and as Redis does when a set outgrows it.
    pub fn convert_to_skiplist(&mut self) {
        if let Repr::Packed(packed) = &self.repr {
            let mut skip = SkipList::new();
            packed.for_each(|member, score| skip.insert_new(Bytes::copy_from_slice(member), score));
            self.repr = Repr::Skip(Box::new(skip));
        }
    }

    /// Switch to the listpack encoding if the set is small enough, as Redis does for the
    /// results of ZUNIONSTORE and friends and when loading an RDB file.
    pub fn convert_to_listpack_if_needed(&mut self) {
        if let Repr::Skip(skip) = &mut self.repr {
            let small = skip.len <= LISTPACK_MAX_ENTRIES
                && skip.iter_from_rank(0, false).all(|(m, _)| m.len() <= LISTPACK_MAX_VALUE);
            let packed = small.then(|| Packed::from_sorted(skip.iter_from_rank(0, false).map(|(m, s)| (&m[..], s))));
            if let Some(Some(packed)) = packed {
                self.repr = Repr::Packed(packed);
            }
        }
    }

    /// Approximate heap bytes, for INFO memory.
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.heap_size(),
            Repr::Skip(s) => std::mem::size_of::<SkipList>() + s.heap_size(),
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Packed(p) => p.score(member),
            Repr::Skip(s) => s.score(member),
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.score(member).is_some()
    }

    /// A member that is not in the set; the set leaves the listpack encoding first if the
    /// member would take it past Redis's limits.
    fn insert_new(&mut self, member: Bytes, score: f64) {
        if self.is_listpack() && (self.len() + 1 > LISTPACK_MAX_ENTRIES || member.len() > LISTPACK_MAX_VALUE) {
            self.convert_to_skiplist();
        }
        if let Repr::Packed(p) = &mut self.repr {
            if p.insert_new(&member, score) {
                return;
            }
            self.convert_to_skiplist();
        }
        if let Repr::Skip(s) = &mut self.repr {
            s.insert_new(member, score);
        }
    }

    /// A new score for a member of the set.
    fn set_score(&mut self, member: &[u8], score: f64) {
        match &mut self.repr {
            Repr::Packed(p) => p.set_score(member, score),
            Repr::Skip(s) => s.set_score(member, score),
        }
    }

    /// Add `member` or change its score. Returns true if it was new. The score must not be
    /// NaN (a NaN is ignored).
    pub fn insert(&mut self, member: Bytes, score: f64) -> bool {
        if score.is_nan() {
            return false;
        }
        match self.score(&member) {
            Some(current) => {
                if current != score {
                    self.set_score(&member, score);
                }
                false
            }
            None => {
                self.insert_new(member, score);
                true
            }
        }
    }

    /// ZADD's per-element step with its options (Redis's `zsetAdd`).
    pub fn add(&mut self, member: &[u8], score: f64, flags: AddFlags) -> AddOutcome {
        if score.is_nan() {
            return AddOutcome::Nan;
        }
        match self.score(member) {
            Some(_) if flags.nx => AddOutcome::Skipped,
            Some(current) => {
                let mut score = score;
                if flags.incr {
                    score += current;
                    if score.is_nan() {
                        return AddOutcome::Nan;
                    }
                }
                if (flags.lt && score >= current) || (flags.gt && score <= current) {
                    return AddOutcome::Skipped;
                }
                if score != current {
                    self.set_score(member, score);
                    AddOutcome::Updated(score)
                } else {
                    AddOutcome::Unchanged(score)
                }
            }
            None if flags.xx => AddOutcome::Skipped,
            None => {
                self.insert_new(Bytes::copy_from_slice(member), score);
                AddOutcome::Added(score)
            }
        }
    }

    /// Remove `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Packed(p) => p.remove(member),
            Repr::Skip(s) => s.packing_after(|s| s.remove(member)),
        }
    }

    /// 0-based rank of `member`, from the lowest (or with `reverse`, from the highest).
    pub fn rank(&self, member: &[u8], reverse: bool) -> Option<usize> {
        match &self.repr {
            Repr::Packed(p) => p.rank(member, reverse),
            Repr::Skip(s) => s.rank(member, reverse),
        }
    }

    /// The member at 0-based `rank` from the lowest, and its score.
    pub fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        match &self.repr {
            Repr::Packed(p) => p.get(rank),
            Repr::Skip(s) => s.get_by_rank(rank).map(|(m, score)| (&m[..], score)),
        }
    }

    /// Every member in order, lowest first.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from_rank(0, false)
    }

    /// Every member from the highest down.
    pub fn iter_rev(&self) -> Iter<'_> {
        self.iter_from_rank(0, true)
    }

    /// Members from 0-based `rank` on, in the order `reverse` says (a reverse rank counts from
    /// the highest, as ZREVRANGE does).
    pub fn iter_from_rank(&self, rank: usize, reverse: bool) -> Iter<'_> {
        Iter(match &self.repr {
            Repr::Packed(p) => {
                let at = if reverse { p.len().checked_sub(rank + 1) } else { Some(rank) };
                IterRepr::Packed(packed::Iter::new(p, at, reverse))
            }
            Repr::Skip(s) => IterRepr::Skip(s.iter_from_rank(rank, reverse)),
        })
    }

    /// A walk from the first member in `range` (the last with `reverse`) that does not stop at
    /// the range's far end: Redis applies a LIMIT offset before it checks that end again. A
    /// listpack is searched linearly; with a lex range over mixed scores this can differ from
    /// a skip-list seek, and Redis answers what the linear search finds.
    pub fn walk_from<R: Range>(&self, range: &R, reverse: bool) -> Iter<'_> {
        Iter(match &self.repr {
            Repr::Packed(p) => IterRepr::Packed(p.walk_from(range, reverse)),
            Repr::Skip(s) => IterRepr::Skip(s.walk_from(range, reverse)),
        })
    }

    /// The members in `range`, from the lowest (or from the highest with `reverse`).
    pub fn range<'a, R: Range>(&'a self, range: &'a R, reverse: bool) -> impl Iterator<Item = (&'a [u8], f64)> + 'a {
        self.walk_from(range, reverse).take_while(move |(m, s)| range.contains_far_end(*s, m, reverse))
    }

    /// How many members `range` holds.
    pub fn count_in<R: Range>(&self, range: &R) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.count_in(range),
            Repr::Skip(s) => s.count_in(range),
        }
    }

    /// Remove the run of members from the first in `range` while they stay in it; returns
    /// how many.
    pub fn remove_in<R: Range>(&mut self, range: &R) -> usize {
        match &mut self.repr {
            Repr::Packed(p) => p.remove_in(range),
            Repr::Skip(s) => s.packing_after(|s| s.remove_in(range)),
        }
    }

    /// Remove the members of 0-based ranks `start..=end` (lowest first); returns how many.
    pub fn remove_rank_range(&mut self, start: usize, end: usize) -> usize {
        match &mut self.repr {
            Repr::Packed(p) => p.remove_ranks(start, end),
            Repr::Skip(s) => s.packing_after(|s| s.remove_rank_range(start, end)),
        }
    }

    /// Remove and return up to `count` members from the lowest (or the highest with `max`).
    pub fn pop(&mut self, count: usize, max: bool) -> Vec<(Bytes, f64)> {
        match &mut self.repr {
            Repr::Packed(p) => p.pop(count, max),
            Repr::Skip(s) => s.packing_after(|s| s.pop(count, max)),
        }
    }

    /// One page of ZSCAN over a skip-list set (see `SkipList::scan`); a listpack set is
    /// visited whole, with cursor 0 next, as Redis returns it.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut visit: impl FnMut(&'a [u8], f64)) -> u64 {
        match &self.repr {
            Repr::Packed(p) => {
                p.for_each(visit);
                0
            }
            Repr::Skip(s) => s.scan(cursor, count, |member, score| visit(member, score)),
        }
    }

    /// Check every structural invariant (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        match &self.repr {
            Repr::Packed(p) => p.check(),
            Repr::Skip(s) => s.check(),
        }
    }
}

/// A walk over members from a starting one, forward or backward.
#[derive(Clone)]
pub struct Iter<'a>(IterRepr<'a>);

impl std::fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum IterRepr<'a> {
    Packed(packed::Iter<'a>),
    Skip(SkipIter<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Packed(it) => it.next(),
            IterRepr::Skip(it) => it.next().map(|(m, score)| (&m[..], score)),
        }
    }
}

impl SkipList {
    fn new() -> SkipList {
        // Xorshift needs a state other than zero.
        let rng = rand::random::<u64>() | 1;
        let head = Node {
            member: Bytes::new(),
            score: 0.0,
            backward: NIL,
            // Grown as the set's level grows (`link`): a small set's header then costs 8
            // bytes a level instead of 256 for all 32 it might ever use.
            levels: vec![Level::default(); 1].into_boxed_slice(),
        };
        SkipList {
            nodes: vec![Some(head)],
            free: Vec::new(),
            index: HashTable::new(),
            tail: NIL,
            level: 1,
            len: 0,
            member_bytes: 0,
            rng,
        }
    }

    /// Approximate heap bytes, for INFO memory.
    fn heap_size(&self) -> usize {
        let slots = self.nodes.capacity() * std::mem::size_of::<Option<Node>>();
        // Levels: 4/3 per node on average (p = 1/4), 8 bytes each; the index: 4 bytes + control.
        slots + self.member_bytes + self.len * 11 + self.index.capacity() * 5
    }

    // ---- node access (slots are always valid while linked; misses read as empty) ----

    fn node(&self, slot: u32) -> Option<&Node> {
        self.nodes.get(slot as usize).and_then(Option::as_ref)
    }

    fn node_mut(&mut self, slot: u32) -> Option<&mut Node> {
        self.nodes.get_mut(slot as usize).and_then(Option::as_mut)
    }

    fn forward(&self, slot: u32, level: usize) -> u32 {
        self.node(slot).and_then(|n| n.levels.get(level)).map_or(NIL, |l| l.forward)
    }

    fn span(&self, slot: u32, level: usize) -> usize {
        self.node(slot).and_then(|n| n.levels.get(level)).map_or(0, |l| l.span as usize)
    }

    fn set_link(&mut self, slot: u32, level: usize, forward: u32, span: usize) {
        if let Some(l) = self.node_mut(slot).and_then(|n| n.levels.get_mut(level)) {
            l.forward = forward;
            l.span = u32::try_from(span).unwrap_or(u32::MAX);
        }
    }

    fn set_span(&mut self, slot: u32, level: usize, span: usize) {
        let forward = self.forward(slot, level);
        self.set_link(slot, level, forward, span);
    }

    fn set_backward(&mut self, slot: u32, backward: u32) {
        if let Some(n) = self.node_mut(slot) {
            n.backward = backward;
        }
    }

    fn backward(&self, slot: u32) -> u32 {
        self.node(slot).map_or(NIL, |n| n.backward)
    }

    fn score_at(&self, slot: u32) -> f64 {
        self.node(slot).map_or(0.0, |n| n.score)
    }

    fn levels_of(&self, slot: u32) -> usize {
        self.node(slot).map_or(0, |n| n.levels.len())
    }

    /// Whether the node at `slot` sorts before (score, member).
    fn precedes(&self, slot: u32, score: f64, member: &[u8]) -> bool {
        self.node(slot).is_some_and(|n| n.score < score || (n.score == score && n.member[..] < *member))
    }

    fn find(&self, member: &[u8]) -> Option<u32> {
        let nodes = &self.nodes;
        self.index.find(hash(member), |&slot| slot_member(nodes, slot) == member).copied()
    }

    fn random_level(&mut self) -> usize {
        let mut level = 1;
        loop {
            // xorshift64: only the level distribution depends on it.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            if level < MAX_LEVEL && (self.rng & 0xFFFF) < 0x4000 {
                level += 1;
            } else {
                return level;
            }
        }
    }

    /// For each level, the last node before (score, member).
    fn predecessors(&self, score: f64, member: &[u8]) -> [u32; MAX_LEVEL] {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for level in (0..self.level).rev() {
            loop {
                let next = self.forward(x, level);
                if next != NIL && self.precedes(next, score, member) {
                    x = next;
                } else {
                    break;
                }
            }
            put(&mut update, level, x);
        }
        update
    }

    /// Link the (unlinked) node at `slot` into its place (Redis's `zslInsert`).
    fn link(&mut self, slot: u32) {
        let Some((score, member)) = self.node(slot).map(|n| (n.score, n.member.clone())) else {
            return;
        };
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0usize; MAX_LEVEL];
        let mut x = HEAD;
        for level in (0..self.level).rev() {
            let mut r = if level + 1 == self.level { 0 } else { get(&rank, level + 1) };
            loop {
                let next = self.forward(x, level);
                if next != NIL && self.precedes(next, score, &member) {
                    r += self.span(x, level);
                    x = next;
                } else {
                    break;
                }
            }
            put(&mut rank, level, r);
            put(&mut update, level, x);
        }
        let node_level = self.levels_of(slot);
        if node_level > self.level {
            if let Some(head) = self.node_mut(HEAD).filter(|head| head.levels.len() < node_level) {
                let mut levels = head.levels.to_vec();
                levels.resize(node_level, Level::default());
                head.levels = levels.into_boxed_slice();
            }
            for level in self.level..node_level {
                put(&mut rank, level, 0);
                put(&mut update, level, HEAD);
                self.set_link(HEAD, level, NIL, self.len);
            }
            self.level = node_level;
        }
        let rank0 = get(&rank, 0);
        for level in 0..node_level {
            let (u, r) = (get(&update, level), get(&rank, level));
            let (u_forward, u_span) = (self.forward(u, level), self.span(u, level));
            self.set_link(slot, level, u_forward, u_span.saturating_sub(rank0 - r));
            self.set_link(u, level, slot, rank0 - r + 1);
        }
        for level in node_level..self.level {
            let u = get(&update, level);
            let span = self.span(u, level);
            self.set_span(u, level, span + 1);
        }
        let first = get(&update, 0);
        self.set_backward(slot, if first == HEAD { NIL } else { first });
        let next = self.forward(slot, 0);
        if next != NIL {
            self.set_backward(next, slot);
        } else {
            self.tail = slot;
        }
        self.len += 1;
    }

    /// Unlink the node at `slot`, given its predecessors (Redis's `zslDeleteNode`).
    fn unlink_with(&mut self, slot: u32, update: &[u32; MAX_LEVEL]) {
        for level in 0..self.level {
            let u = get(update, level);
            if self.forward(u, level) == slot {
                let span = self.span(u, level) + self.span(slot, level);
                let forward = self.forward(slot, level);
                self.set_link(u, level, forward, span.saturating_sub(1));
            } else {
                let span = self.span(u, level);
                self.set_span(u, level, span.saturating_sub(1));
            }
        }
        let (next, back) = (self.forward(slot, 0), self.backward(slot));
        if next != NIL {
            self.set_backward(next, back);
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.forward(HEAD, self.level - 1) == NIL {
            self.level -= 1;
        }
        self.len = self.len.saturating_sub(1);
    }

    fn unlink(&mut self, slot: u32) {
        let Some((score, member)) = self.node(slot).map(|n| (n.score, n.member.clone())) else {
            return;
        };
        let update = self.predecessors(score, &member);
        self.unlink_with(slot, &update);
    }

    /// Release an unlinked node's slot and index entry; returns its member and score.
    fn release(&mut self, slot: u32) -> Option<(Bytes, f64)> {
        let node = self.nodes.get_mut(slot as usize)?.take()?;
        if let Ok(entry) = self.index.find_entry(hash(&node.member), |&s| s == slot) {
            entry.remove();
        }
        self.free.push(slot);
        self.member_bytes = self.member_bytes.saturating_sub(node.member.len());
        Some((node.member, node.score))
    }

    fn insert_new(&mut self, member: Bytes, score: f64) {
        let level = self.random_level();
        let member_hash = hash(&member);
        self.member_bytes += member.len();
        let node = Node { member, score, backward: NIL, levels: vec![Level::default(); level].into_boxed_slice() };
        let slot = match self.free.pop() {
            Some(slot) => {
                put(&mut self.nodes, slot as usize, Some(node));
                slot
            }
            None => {
                self.nodes.push(Some(node));
                u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let SkipList { index, nodes, .. } = self;
        index.insert_unique(member_hash, slot, |&s| hash(slot_member(nodes, s)));
        self.link(slot);
    }

    /// Give the node at `slot` a new score, moving it only if its position changes
    /// (Redis's `zslUpdateScore`).
    fn rescore(&mut self, slot: u32, score: f64) {
        let (back, next) = (self.backward(slot), self.forward(slot, 0));
        let stays = (back == NIL || self.score_at(back) < score) && (next == NIL || self.score_at(next) > score);
        if stays {
            if let Some(n) = self.node_mut(slot) {
                n.score = score;
            }
            return;
        }
        self.unlink(slot);
        if let Some(n) = self.node_mut(slot) {
            n.score = score;
        }
        self.link(slot);
    }

    // ---- what the ZSet wraps ----

    fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|slot| self.score_at(slot))
    }

    fn set_score(&mut self, member: &[u8], score: f64) {
        if let Some(slot) = self.find(member) {
            self.rescore(slot, score);
        }
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let slot = self.find(member)?;
        self.unlink(slot);
        self.release(slot).map(|(_, score)| score)
    }

    fn rank(&self, member: &[u8], reverse: bool) -> Option<usize> {
        let score = self.score(member)?;
        let mut x = HEAD;
        let mut rank = 0;
        for level in (0..self.level).rev() {
            loop {
                let next = self.forward(x, level);
                let before = self
                    .node(next)
                    .is_some_and(|n| next != NIL && (n.score < score || (n.score == score && n.member[..] <= *member)));
                if !before {
                    break;
                }
                rank += self.span(x, level);
                x = next;
            }
            if x != HEAD && self.node(x).is_some_and(|n| n.member[..] == *member) {
                let rank = rank.checked_sub(1)?;
                return Some(if reverse { self.len - 1 - rank } else { rank });
            }
        }
        None
    }

    /// The slot of the node at 0-based `rank` from the lowest (Redis's `zslGetElementByRank`).
    fn slot_at_rank(&self, rank: usize) -> u32 {
        if rank >= self.len {
            return NIL;
        }
        let target = rank + 1;
        let mut x = HEAD;
        let mut traversed = 0;
        for level in (0..self.level).rev() {
            loop {
                let next = self.forward(x, level);
                if next != NIL && traversed + self.span(x, level) <= target {
                    traversed += self.span(x, level);
                    x = next;
                } else {
                    break;
                }
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }

    fn get_by_rank(&self, rank: usize) -> Option<(&Bytes, f64)> {
        let slot = self.slot_at_rank(rank);
        self.node(slot).filter(|_| slot != NIL).map(|n| (&n.member, n.score))
    }

    fn iter_from_rank(&self, rank: usize, reverse: bool) -> SkipIter<'_> {
        let at = match reverse {
            false => self.slot_at_rank(rank),
            true => self.len.checked_sub(rank + 1).map_or(NIL, |r| self.slot_at_rank(r)),
        };
        SkipIter { set: self, at, reverse }
    }

    /// The last node (or the header) of the prefix on which `before` holds, with its 1-based
    /// rank (0 for the header). `before` must hold on a prefix of the order.
    fn seek(&self, before: impl Fn(f64, &[u8]) -> bool) -> (u32, usize) {
        let mut x = HEAD;
        let mut rank = 0;
        for level in (0..self.level).rev() {
            loop {
                let next = self.forward(x, level);
                match self.node(next) {
                    Some(n) if next != NIL && before(n.score, &n.member) => {
                        rank += self.span(x, level);
                        x = next;
                    }
                    _ => break,
                }
            }
        }
        (x, rank)
    }

    fn range_maybe_nonempty<R: Range>(&self, range: &R) -> bool {
        let end = |slot: u32| self.node(slot).filter(|_| slot != NIL).map(|n| (n.score, &n.member[..]));
        may_hold(range, end(self.forward(HEAD, 0)), end(self.tail))
    }

    /// The first member in `range` and its 0-based rank.
    fn first_in<R: Range>(&self, range: &R) -> Option<(u32, usize)> {
        if !self.range_maybe_nonempty(range) {
            return None;
        }
        let (x, rank) = self.seek(|score, member| !range.gte_min(score, member));
        let slot = self.forward(x, 0);
        let n = self.node(slot).filter(|_| slot != NIL)?;
        range.lte_max(n.score, &n.member).then_some((slot, rank))
    }

    /// The last member in `range` and its 0-based rank.
    fn last_in<R: Range>(&self, range: &R) -> Option<(u32, usize)> {
        if !self.range_maybe_nonempty(range) {
            return None;
        }
        let (slot, rank) = self.seek(|score, member| range.lte_max(score, member));
        let n = self.node(slot).filter(|_| slot != NIL)?;
        range.gte_min(n.score, &n.member).then(|| (slot, rank.saturating_sub(1)))
    }

    fn walk_from<R: Range>(&self, range: &R, reverse: bool) -> SkipIter<'_> {
        let start = match reverse {
            false => self.first_in(range),
            true => self.last_in(range),
        };
        let at = start.map_or(NIL, |(slot, _)| slot);
        SkipIter { set: self, at, reverse }
    }

    fn count_in<R: Range>(&self, range: &R) -> usize {
        let Some((_, first)) = self.first_in(range) else {
            return 0;
        };
        match self.last_in(range) {
            Some((_, last)) if last >= first => last - first + 1,
            _ => 0,
        }
    }

    fn remove_in<R: Range>(&mut self, range: &R) -> usize {
        let Some((first, _)) = self.first_in(range) else {
            return 0;
        };
        self.remove_run(first, usize::MAX, |score, member| range.lte_max(score, member))
    }

    fn remove_rank_range(&mut self, start: usize, end: usize) -> usize {
        if start > end || start >= self.len {
            return 0;
        }
        let first = self.slot_at_rank(start);
        self.remove_run(first, end - start + 1, |_, _| true)
    }

    /// Remove up to `limit` consecutive members from `first` on while `keep_going` holds.
    fn remove_run(&mut self, first: u32, limit: usize, keep_going: impl Fn(f64, &[u8]) -> bool) -> usize {
        let Some((score, member)) = self.node(first).map(|n| (n.score, n.member.clone())) else {
            return 0;
        };
        let update = self.predecessors(score, &member);
        let mut removed = 0;
        let mut x = first;
        while removed < limit && x != NIL {
            let Some(next) = self.node(x).filter(|n| keep_going(n.score, &n.member)).map(|_| self.forward(x, 0)) else {
                break;
            };
            self.unlink_with(x, &update);
            self.release(x);
            removed += 1;
            x = next;
        }
        removed
    }

    fn pop(&mut self, count: usize, max: bool) -> Vec<(Bytes, f64)> {
        let mut out = Vec::with_capacity(count.min(self.len));
        while out.len() < count {
            let slot = if max { self.tail } else { self.forward(HEAD, 0) };
            if slot == NIL {
                break;
            }
            self.unlink(slot);
            match self.release(slot) {
                Some(item) => out.push(item),
                None => break,
            }
        }
        out
    }

    /// One page of ZSCAN over a skip-list set: visit members downward from below slot
    /// `cursor` (0 starts at the top slot) until `count` were visited or ten times as many
    /// empty slots passed. Returns the next cursor, 0 when done. A member keeps its slot until
    /// the slab is packed, and packing moves members only down (`slab.rs`), so each member
    /// present for the whole scan is visited at least once.
    fn scan<'a>(&'a self, cursor: u64, count: usize, mut visit: impl FnMut(&'a Bytes, f64)) -> u64 {
        let below = match usize::try_from(cursor) {
            Ok(0) | Err(_) => self.nodes.len(),
            Ok(cursor) => cursor.min(self.nodes.len()),
        };
        let (mut found, mut passed) = (0usize, 0usize);
        let budget = count.saturating_mul(10).max(1);
        let mut next = below;
        // Slot 0 is the header.
        while next > 1 && found < count.max(1) && passed < budget {
            next -= 1;
            if let Some(n) = self.nodes.get(next).and_then(Option::as_ref) {
                visit(&n.member, n.score);
                found += 1;
            }
            passed += 1;
        }
        if next > 1 {
            next as u64
        } else {
            0
        }
    }

    /// Runs a removal, then packs the slab if it left it more than half holes: the nodes on
    /// top move down into the lowest holes and every link, the index and the tail follow
    /// (Redis frees skip-list nodes one by one; a slab would otherwise stay as long as the set
    /// ever was). Only around a whole public removal, since the removal holds slot numbers.
    fn packing_after<T>(&mut self, removal: impl FnOnce(&mut Self) -> T) -> T {
        let result = removal(self);
        // The header is a slot too.
        if crate::slab::is_sparse(self.len + 1, self.nodes.len()) {
            self.pack();
        }
        result
    }

    fn pack(&mut self) {
        let mut moved_to: Vec<u32> = (0..self.nodes.len()).map(|slot| slot as u32).collect();
        // The header (slot 0) stays: pack the slots after it.
        if let Some(members) = self.nodes.get_mut(1..) {
            crate::slab::pack(members, |_, from, to| put(&mut moved_to, from as usize + 1, to + 1));
        }
        let new_slot = |slot: u32| moved_to.get(slot as usize).copied().unwrap_or(slot);
        for node in self.nodes.iter_mut().flatten() {
            node.backward = new_slot(node.backward);
            for level in node.levels.iter_mut() {
                level.forward = new_slot(level.forward);
            }
        }
        self.tail = new_slot(self.tail);
        for slot in self.index.iter_mut() {
            *slot = new_slot(*slot);
        }
        self.nodes.truncate(self.len + 1);
        self.nodes.shrink_to_fit();
        self.free = Vec::new();
        let SkipList { index, nodes, .. } = self;
        crate::slab::shrink_index(index, |slot| hash(slot_member(nodes, slot)));
    }

    /// Check every structural invariant (tests).
    #[cfg(test)]
    fn check(&self) {
        let mut count = 0;
        let mut prev: Option<(f64, Bytes)> = None;
        let mut x = self.forward(HEAD, 0);
        let mut back = NIL;
        while x != NIL {
            let n = self.node(x).unwrap_or_else(|| unreachable!("dangling link"));
            assert_eq!(n.backward, back, "backward link");
            assert!(!n.score.is_nan());
            if let Some((ps, pm)) = &prev {
                assert!(*ps < n.score || (*ps == n.score && pm[..] < n.member[..]), "order");
            }
            assert_eq!(self.find(&n.member), Some(x), "index");
            prev = Some((n.score, n.member.clone()));
            back = x;
            x = self.forward(x, 0);
            count += 1;
        }
        assert_eq!(self.tail, back, "tail");
        assert_eq!(count, self.len, "len");
        assert_eq!(self.index.len(), self.len, "index len");
        // Spans: following any level must count ranks exactly.
        for level in 0..self.level {
            let (mut x, mut rank) = (HEAD, 0);
            loop {
                let next = self.forward(x, level);
                if next == NIL {
                    break;
                }
                rank += self.span(x, level);
                assert_eq!(self.slot_at_rank(rank - 1), next, "span at level {level}");
                x = next;
            }
        }
        for level in self.level..MAX_LEVEL {
            assert_eq!(self.forward(HEAD, level), NIL);
        }
    }
}

/// A walk over a skip list's members from a starting node, forward or backward.
#[derive(Clone)]
struct SkipIter<'a> {
    set: &'a SkipList,
    at: u32,
    reverse: bool,
}

impl<'a> Iterator for SkipIter<'a> {
    type Item = (&'a Bytes, f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at == NIL {
            return None;
        }
        let node = self.set.node(self.at)?;
        self.at = match self.reverse {
            true => node.backward,
            false => node.levels.first().map_or(NIL, |l| l.forward),
        };
        Some((&node.member, node.score))
    }
}

/// A range of members: by score ([`ScoreRange`]) or by member bytes ([`LexRange`]).
pub trait Range {
    fn gte_min(&self, score: f64, member: &[u8]) -> bool;
    fn lte_max(&self, score: f64, member: &[u8]) -> bool;
    /// The bounds admit nothing whatever the members.
    fn is_empty(&self) -> bool;
    /// Within the end a walk in this direction moves towards.
    fn contains_far_end(&self, score: f64, member: &[u8], reverse: bool) -> bool {
        if reverse {
            self.gte_min(score, member)
        } else {
            self.lte_max(score, member)
        }
    }
}

/// `min max` of ZRANGEBYSCORE and friends; `(` makes a bound exclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub min_exclusive: bool,
    pub max_exclusive: bool,
}

impl ScoreRange {
    /// Parse as Redis's `zslParseRange` does (plain `strtod`: leading spaces, overflow to
    /// infinity and an empty string are accepted; NaN and trailing bytes are not).
    pub fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, min_exclusive) = parse_bound(min)?;
        let (max, max_exclusive) = parse_bound(max)?;
        Some(ScoreRange { min, max, min_exclusive, max_exclusive })
    }
}

fn parse_bound(text: &[u8]) -> Option<(f64, bool)> {
    let (exclusive, body) = match text.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, text),
    };
    let (value, used) = strtod(body);
    // Redis checks `eptr[0] != '\0'` on a C string.
    let rest_ok = body.get(used..).is_none_or(|rest| rest.first().is_none_or(|&b| b == 0));
    (rest_ok && !value.is_nan()).then_some((value, exclusive))
}

impl Range for ScoreRange {
    fn gte_min(&self, score: f64, _: &[u8]) -> bool {
        if self.min_exclusive {
            score > self.min
        } else {
            score >= self.min
        }
    }

    fn lte_max(&self, score: f64, _: &[u8]) -> bool {
        if self.max_exclusive {
            score < self.max
        } else {
            score <= self.max
        }
    }

    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.min_exclusive || self.max_exclusive))
    }
}

/// One end of a lex range: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

impl LexBound {
    /// Redis's `zslParseLexRangeItem`.
    fn parse(item: &[u8]) -> Option<LexBound> {
        let rest = item.get(1..).unwrap_or_default();
        // `+` and `-` must end the C string.
        let alone = rest.first().is_none_or(|&b| b == 0);
        match item.first()? {
            b'+' if alone => Some(LexBound::Max),
            b'-' if alone => Some(LexBound::Min),
            b'(' => Some(LexBound::Exclusive(Bytes::copy_from_slice(rest))),
            b'[' => Some(LexBound::Inclusive(Bytes::copy_from_slice(rest))),
            _ => None,
        }
    }

    /// Redis's `sdscmplex` of a member against this bound.
    fn cmp_member(&self, member: &[u8]) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match self {
            LexBound::Min => Greater,
            LexBound::Max => Less,
            LexBound::Inclusive(b) | LexBound::Exclusive(b) => member.cmp(&b[..]),
        }
    }

    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Inclusive(_))
    }

    fn rank(&self) -> u8 {
        match self {
            LexBound::Min => 0,
            LexBound::Inclusive(_) | LexBound::Exclusive(_) => 1,
            LexBound::Max => 2,
        }
    }
}

/// `min max` of ZRANGEBYLEX and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn parse(min: &[u8], max: &[u8]) -> Option<LexRange> {
        Some(LexRange { min: LexBound::parse(min)?, max: LexBound::parse(max)? })
    }
}

impl Range for LexRange {
    fn gte_min(&self, _: f64, member: &[u8]) -> bool {
        let cmp = self.min.cmp_member(member);
        if self.min.exclusive() {
            cmp.is_gt()
        } else {
            cmp.is_ge()
        }
    }

    fn lte_max(&self, _: f64, member: &[u8]) -> bool {
        let cmp = self.max.cmp_member(member);
        if self.max.exclusive() {
            cmp.is_lt()
        } else {
            cmp.is_le()
        }
    }

    fn is_empty(&self) -> bool {
        // sdscmplex(min, max): the two infinities are shared objects, equal only to themselves.
        let cmp = match (&self.min, &self.max) {
            (LexBound::Inclusive(a) | LexBound::Exclusive(a), LexBound::Inclusive(b) | LexBound::Exclusive(b)) => {
                a.cmp(b)
            }
            (a, b) => a.rank().cmp(&b.rank()),
        };
        cmp.is_gt() || (cmp.is_eq() && (self.min.exclusive() || self.max.exclusive()))
    }
}

fn starts_with_ci(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// C's `strtod` over bytes: the value and how many bytes it used (0 when nothing parses).
/// Decimal and hexadecimal forms, `inf`/`infinity`/`nan` in any case, leading white space.
/// Out-of-range values come back as ±infinity or 0 as from glibc (see [`parse_score`] for the
/// `ERANGE` check).
pub fn strtod(text: &[u8]) -> (f64, usize) {
    let mut i = text.iter().take_while(|&&b| crate::num::is_c_space(b)).count();
    let negative = match text.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let sign = |v: f64| if negative { -v } else { v };
    let rest = text.get(i..).unwrap_or_default();
    if starts_with_ci(rest, b"infinity") {
        return (sign(f64::INFINITY), i + 8);
    }
    if starts_with_ci(rest, b"inf") {
        return (sign(f64::INFINITY), i + 3);
    }
    if starts_with_ci(rest, b"nan") {
        let mut used = 3;
        if rest.get(3) == Some(&b'(') {
            let inner = rest.get(4..).unwrap_or_default();
            let n = inner.iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
            if inner.get(n) == Some(&b')') {
                used = 4 + n + 1;
            }
        }
        return (f64::NAN, i + used);
    }
    if rest.first() == Some(&b'0') && rest.get(1).is_some_and(|b| b | 0x20 == b'x') {
        return match parse_hex(rest.get(2..).unwrap_or_default()) {
            Some((value, used)) => (sign(value), i + 2 + used),
            // "0x" without hex digits: strtod reads the "0".
            None => (sign(0.0), i + 1),
        };
    }
    let digits = |from: usize| rest.get(from..).unwrap_or_default().iter().take_while(|b| b.is_ascii_digit()).count();
    let int_digits = digits(0);
    let mut end = int_digits;
    let mut frac_digits = 0;
    if rest.get(end) == Some(&b'.') {
        frac_digits = digits(end + 1);
        if int_digits + frac_digits > 0 {
            end += 1 + frac_digits;
        }
    }
    if int_digits + frac_digits == 0 {
        return (0.0, 0);
    }
    if rest.get(end).is_some_and(|b| b | 0x20 == b'e') {
        let mut e = end + 1;
        if matches!(rest.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let exp_digits = digits(e);
        if exp_digits > 0 {
            end = e + exp_digits;
        }
    }
    let value =
        rest.get(..end).and_then(|t| std::str::from_utf8(t).ok()).and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0);
    (sign(value), i + end)
}

/// The hexadecimal part after `0x`: digits, an optional fraction, an optional `p` exponent.
fn parse_hex(text: &[u8]) -> Option<(f64, usize)> {
    let mut mantissa: u64 = 0;
    let mut exponent: i64 = 0;
    let mut sticky = false;
    let mut any = false;
    let mut i = 0;
    let mut seen_point = false;
    loop {
        match text.get(i) {
            Some(&b) if b.is_ascii_hexdigit() => {
                let d = u64::from(if b.is_ascii_digit() { b - b'0' } else { (b | 0x20) - b'a' + 10 });
                any = true;
                if mantissa >> 60 == 0 {
                    mantissa = mantissa * 16 + d;
                    if seen_point {
                        exponent -= 4;
                    }
                } else {
                    sticky |= d != 0;
                    if !seen_point {
                        exponent += 4;
                    }
                }
            }
            Some(b'.') if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if !any {
        return None;
    }
    if text.get(i).is_some_and(|b| b | 0x20 == b'p') {
        let mut e = i + 1;
        let negative = match text.get(e) {
            Some(b'-') => {
                e += 1;
                true
            }
            Some(b'+') => {
                e += 1;
                false
            }
            _ => false,
        };
        let n = text.get(e..).unwrap_or_default().iter().take_while(|b| b.is_ascii_digit()).count();
        if n > 0 {
            let value = text
                .get(e..e + n)
                .unwrap_or_default()
                .iter()
                .fold(0i64, |acc, b| acc.saturating_mul(10).saturating_add(i64::from(b - b'0')));
            exponent = exponent.saturating_add(if negative { -value } else { value });
            i = e + n;
        }
    }
    if sticky {
        mantissa |= 1;
    }
    let exponent = i32::try_from(exponent.clamp(-5000, 5000)).unwrap_or(0);
    // Scale in steps so that intermediate powers of two stay finite.
    let mut value = mantissa as f64;
    let mut e = exponent;
    while e != 0 && value != 0.0 && value.is_finite() {
        let step = e.clamp(-1000, 1000);
        value *= 2f64.powi(step);
        e -= step;
    }
    Some((value, i))
}

/// A score argument with Redis's `string2d` rules (ZADD, ZINCRBY, WEIGHTS): the whole string
/// is a number, no leading space, not NaN, and no overflow or underflow to zero.
pub fn parse_score(text: &[u8]) -> Option<f64> {
    if text.first().is_none_or(|&b| crate::num::is_c_space(b)) {
        return None;
    }
    strtod_exact(text)
}

/// [`strtod`] over the whole of `text` (leading blanks allowed, as C's; an empty text is 0),
/// refusing NaN and what `strtod` reports as `ERANGE`: overflow to infinity, and a nonzero
/// mantissa underflowing to zero.
pub fn strtod_exact(text: &[u8]) -> Option<f64> {
    let (value, used) = strtod(text);
    if used != text.len() || value.is_nan() {
        return None;
    }
    let text = text.get(text.iter().take_while(|&&b| crate::num::is_c_space(b)).count()..).unwrap_or_default();
    let body = text.strip_prefix(b"-").or_else(|| text.strip_prefix(b"+")).unwrap_or(text);
    if value.is_infinite() && !starts_with_ci(body, b"inf") {
        return None; // ERANGE: overflow
    }
    if value == 0.0 && mantissa_has_nonzero(body) {
        return None; // ERANGE: underflow to zero
    }
    Some(value)
}

fn mantissa_has_nonzero(body: &[u8]) -> bool {
    if starts_with_ci(body, b"0x") {
        let digits = body.get(2..).unwrap_or_default();
        digits.iter().take_while(|b| b.is_ascii_hexdigit() || **b == b'.').any(|b| b.is_ascii_hexdigit() && *b != b'0')
    } else {
        body.iter().take_while(|b| b.is_ascii_digit() || **b == b'.').any(|b| (b'1'..=b'9').contains(b))
    }
}

/// A score as a listpack holds it and ZSCAN of a small set returns it: integral values within
/// ±2^62 as integers, anything else as replies do ([`staykv_resp::format_double`]).
pub fn format_listpack_score(score: f64) -> String {
    const LIMIT: f64 = 4_611_686_018_427_387_904.0; // (double)(LLONG_MAX / 2)
    if score.is_finite() && (-LIMIT..=LIMIT).contains(&score) && score.fract() == 0.0 {
        return (score as i64).to_string();
    }
    staykv_resp::format_double(score)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn members(set: &ZSet) -> Vec<(String, f64)> {
        set.iter().map(|(m, s)| (String::from_utf8_lossy(m).into_owned(), s)).collect()
    }

    #[test]
    fn orders_by_score_then_member() {
        let mut z = ZSet::new();
        for (m, s) in [("b", 1.0), ("a", 1.0), ("c", 0.5), ("d", f64::INFINITY), ("e", f64::NEG_INFINITY)] {
            assert!(z.insert(b(m), s));
        }
        z.check();
        let order: Vec<_> = members(&z).into_iter().map(|(m, _)| m).collect();
        assert_eq!(order, ["e", "c", "a", "b", "d"]);
        assert_eq!(z.rank(b"a", false), Some(2));
        assert_eq!(z.rank(b"a", true), Some(2));
        assert_eq!(z.rank(b"e", true), Some(4));
        assert_eq!(z.rank(b"zz", false), None);
        assert!(!z.insert(b("a"), 7.0));
        z.check();
        assert_eq!(z.rank(b"a", false), Some(3));
        assert_eq!(z.get_by_rank(3), Some((&b"a"[..], 7.0)));
        assert_eq!(z.remove(b"c"), Some(0.5));
        assert_eq!(z.remove(b"c"), None);
        z.check();
        let rev: Vec<_> = z.iter_rev().map(|(m, _)| m).collect();
        assert_eq!(rev, [b("d"), b("a"), b("b"), b("e")]);
    }

    #[test]
    fn negative_zero_is_zero_in_order_and_listpack() {
        let mut z = ZSet::new();
        z.insert(b("b"), -0.0);
        z.insert(b("a"), 0.0);
        z.check();
        assert_eq!(members(&z)[0].0, "a");
        // Listpack encoding loses the sign.
        assert!(z.score(b"b").unwrap().is_sign_positive());
        let mut big = ZSet::with_size_hint(1000);
        assert!(!big.is_listpack());
        big.insert(b("x"), -0.0);
        assert!(big.score(b"x").unwrap().is_sign_negative());
        big.convert_to_listpack_if_needed();
        assert!(big.is_listpack());
        assert!(big.score(b"x").unwrap().is_sign_positive());
    }

    #[test]
    fn encoding_follows_redis_thresholds() {
        let mut z = ZSet::new();
        for i in 0..128 {
            z.insert(Bytes::from(format!("m{i}")), f64::from(i));
        }
        assert!(z.is_listpack());
        z.insert(b("m128"), 1.0);
        assert!(!z.is_listpack());
        z.remove(b"m128");
        assert!(!z.is_listpack(), "never converts back by itself");
        z.convert_to_listpack_if_needed();
        assert!(z.is_listpack());
        z.insert(Bytes::from(vec![b'x'; 65]), 1.0);
        assert!(!z.is_listpack());
    }

    #[test]
    fn add_flags_follow_zsetadd() {
        let mut z = ZSet::new();
        let plain = AddFlags::default();
        assert_eq!(z.add(b"a", 1.0, plain), AddOutcome::Added(1.0));
        assert_eq!(z.add(b"a", 1.0, plain), AddOutcome::Unchanged(1.0));
        assert_eq!(z.add(b"a", 2.0, AddFlags { nx: true, ..plain }), AddOutcome::Skipped);
        assert_eq!(z.add(b"b", 2.0, AddFlags { xx: true, ..plain }), AddOutcome::Skipped);
        assert_eq!(z.add(b"a", 0.5, AddFlags { gt: true, ..plain }), AddOutcome::Skipped);
        assert_eq!(z.add(b"a", 3.0, AddFlags { gt: true, ..plain }), AddOutcome::Updated(3.0));
        assert_eq!(z.add(b"a", 2.0, AddFlags { incr: true, ..plain }), AddOutcome::Updated(5.0));
        assert_eq!(z.add(b"a", -1.0, AddFlags { incr: true, lt: true, ..plain }), AddOutcome::Updated(4.0));
        assert_eq!(z.add(b"a", f64::NAN, plain), AddOutcome::Nan);
        z.insert(b("i"), f64::INFINITY);
        assert_eq!(z.add(b"i", f64::NEG_INFINITY, AddFlags { incr: true, ..plain }), AddOutcome::Nan);
        z.check();
    }

    #[test]
    fn ranges_counts_and_removal() {
        let mut z = ZSet::with_size_hint(1000);
        for i in 0..200 {
            z.insert(Bytes::from(format!("m{i:03}")), f64::from(i / 2));
        }
        z.check();
        let r = ScoreRange::parse(b"10", b"(20").unwrap();
        assert_eq!(z.count_in(&r), 20);
        let got: Vec<_> = z.range(&r, false).map(|(m, _)| Bytes::copy_from_slice(m)).collect();
        assert_eq!(got.first(), Some(&b("m020")));
        assert_eq!(got.len(), 20);
        let rev: Vec<_> = z.range(&r, true).map(|(m, _)| Bytes::copy_from_slice(m)).collect();
        assert_eq!(rev.first(), Some(&b("m039")));
        let mut same = ZSet::with_size_hint(1000);
        for i in 0..200 {
            same.insert(Bytes::from(format!("m{i:03}")), 1.0);
        }
        let lex = LexRange::parse(b"[m010", b"(m013").unwrap();
        assert_eq!(same.count_in(&lex), 3);
        assert_eq!(same.range(&lex, true).map(|(m, _)| m).collect::<Vec<_>>(), [b("m012"), b("m011"), b("m010")]);
        assert_eq!(z.remove_in(&r), 20);
        z.check();
        assert_eq!(z.count_in(&r), 0);
        assert_eq!(z.remove_rank_range(0, 9), 10);
        z.check();
        assert_eq!(z.len(), 170);
        assert_eq!(z.get_by_rank(0).map(|(m, _)| m), Some(&b"m010"[..]));
        let popped = z.pop(3, true);
        assert_eq!(popped.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(), [b("m199"), b("m198"), b("m197")]);
        z.check();
        assert_eq!(z.pop(1000, false).len(), 167);
        assert!(z.is_empty());
        z.check();
    }

    #[test]
    fn lex_range_bounds() {
        let r = LexRange::parse(b"-", b"+").unwrap();
        assert!(!r.is_empty() && r.gte_min(0.0, b"") && r.lte_max(0.0, b"\xff"));
        assert!(LexRange::parse(b"+", b"-").unwrap().is_empty());
        assert!(LexRange::parse(b"-", b"-").unwrap().is_empty());
        assert!(LexRange::parse(b"[a", b"(a").unwrap().is_empty());
        assert!(!LexRange::parse(b"[a", b"[a").unwrap().is_empty());
        assert!(LexRange::parse(b"a", b"+").is_none());
        assert!(LexRange::parse(b"", b"+").is_none());
        assert!(LexRange::parse(b"+x", b"+").is_none());
        let r = LexRange::parse(b"(a", b"[c").unwrap();
        assert!(!r.gte_min(0.0, b"a") && r.gte_min(0.0, b"aa") && r.lte_max(0.0, b"c") && !r.lte_max(0.0, b"ca"));
    }

    /// ZADD's effect on the set and on a model of (score, member) pairs (sorted by the caller).
    fn insert_both(z: &mut ZSet, model: &mut Vec<(f64, Bytes)>, member: Bytes, score: f64) {
        z.insert(member.clone(), score);
        model.retain(|(_, m)| *m != member);
        model.push((score, member));
    }

    #[test]
    fn randomized_against_a_model() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..20 {
            let mut z = if round % 2 == 0 { ZSet::new() } else { ZSet::with_size_hint(1000) };
            let mut model: Vec<(f64, Bytes)> = Vec::new();
            for step in 0..600 {
                let member = Bytes::from(format!("k{}", rng.gen_range(0..150)));
                let score = f64::from(rng.gen_range(-20..20)) / 4.0;
                match rng.gen_range(0..10) {
                    0..=5 => {
                        insert_both(&mut z, &mut model, member, score);
                    }
                    6..=7 => {
                        let removed = z.remove(&member).is_some();
                        let before = model.len();
                        model.retain(|(_, m)| *m != member);
                        assert_eq!(removed, before != model.len());
                    }
                    8 => {
                        let count = rng.gen_range(0..4);
                        let max = rng.gen_bool(0.5);
                        model.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then_with(|| a.1.cmp(&b.1)));
                        let popped = z.pop(count, max);
                        for (m, _) in &popped {
                            model.retain(|(_, x)| x != m);
                        }
                        assert!(popped.len() <= count);
                    }
                    _ => {
                        let lo = f64::from(rng.gen_range(-6..6));
                        let r = ScoreRange { min: lo, max: lo + 1.5, min_exclusive: rng.gen(), max_exclusive: false };
                        let n = z.remove_in(&r);
                        let before = model.len();
                        model.retain(|(s, m)| !(r.gte_min(*s, m) && r.lte_max(*s, m)));
                        assert_eq!(n, before - model.len());
                    }
                }
                if step % 50 == 0 {
                    z.check();
                }
                model.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then_with(|| a.1.cmp(&b.1)));
                assert_eq!(z.len(), model.len());
            }
            z.check();
            let got: Vec<_> = z.iter().map(|(m, s)| (s, Bytes::copy_from_slice(m))).collect();
            assert_eq!(got, model);
            for (i, (_, m)) in model.iter().enumerate() {
                assert_eq!(z.rank(m, false), Some(i));
            }
            for lo in -6..6 {
                let r = ScoreRange {
                    min: f64::from(lo),
                    max: f64::from(lo) + 2.0,
                    min_exclusive: true,
                    max_exclusive: false,
                };
                let expected: Vec<_> = model
                    .iter()
                    .filter(|(s, m)| r.gte_min(*s, m) && r.lte_max(*s, m))
                    .map(|(_, m)| m.clone())
                    .collect();
                assert_eq!(z.count_in(&r), expected.len());
                assert_eq!(z.range(&r, false).map(|(m, _)| m).collect::<Vec<_>>(), expected);
                let mut rev = expected.clone();
                rev.reverse();
                assert_eq!(z.range(&r, true).map(|(m, _)| m).collect::<Vec<_>>(), rev);
            }
        }
    }

    /// The packed layout's walks, by rank from either end and in both directions, after
    /// every step of random changes (the set stays within the listpack limits).
    #[test]
    fn packed_walks_against_a_model() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut z = ZSet::new();
        let mut model: Vec<(f64, Bytes)> = Vec::new();
        for _ in 0..3000 {
            // At most 100 members of at most 61 bytes, of lengths all over the length byte.
            let i = rng.gen_range(0..100);
            let member = Bytes::from("m".repeat(i * 7 % 60) + &i.to_string());
            let score = f64::from(rng.gen_range(-8..8)) / 2.0;
            match rng.gen_range(0..10) {
                0..=5 => {
                    insert_both(&mut z, &mut model, member, score);
                }
                6 => {
                    assert_eq!(z.remove(&member).is_some(), model.iter().any(|(_, m)| *m == member));
                    model.retain(|(_, m)| *m != member);
                }
                7 => {
                    let (start, end) = (rng.gen_range(0..8), rng.gen_range(0..8));
                    let removed = z.remove_rank_range(start, end);
                    let end = end.min(model.len().saturating_sub(1));
                    let expected = if start <= end && start < model.len() { end - start + 1 } else { 0 };
                    assert_eq!(removed, expected);
                    model.drain(start.min(model.len())..(start + expected).min(model.len()));
                }
                _ => {
                    let (count, max) = (rng.gen_range(0..3), rng.gen_bool(0.5));
                    let popped: Vec<_> = z.pop(count, max).into_iter().map(|(m, s)| (s, m)).collect();
                    let n = count.min(model.len());
                    let expected: Vec<_> =
                        if max { model.drain(model.len() - n..).rev().collect() } else { model.drain(..n).collect() };
                    assert_eq!(popped, expected);
                }
            }
            model.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            z.check();
            assert!(z.is_listpack());
            let owned = |(m, s): (&[u8], f64)| (s, Bytes::copy_from_slice(m));
            assert_eq!(z.iter().map(owned).collect::<Vec<_>>(), model);
            assert!(z.iter_rev().map(owned).eq(model.iter().rev().cloned()));
            let rank = rng.gen_range(0..=model.len());
            assert!(z.iter_from_rank(rank, false).map(owned).eq(model.iter().skip(rank).cloned()));
            assert!(z.iter_from_rank(rank, true).map(owned).eq(model.iter().rev().skip(rank).cloned()));
            assert_eq!(z.get_by_rank(rank).map(owned), model.get(rank).cloned());
            if let Some((score, member)) = model.get(rank) {
                assert_eq!(z.rank(member, false), Some(rank));
                assert_eq!(z.rank(member, true), Some(model.len() - 1 - rank));
                assert_eq!(z.score(member), Some(*score));
            }
        }
    }

    #[test]
    fn scan_returns_every_stable_member_once() {
        let mut z = ZSet::with_size_hint(1000);
        for i in 0..300 {
            z.insert(Bytes::from(format!("s{i}")), f64::from(i));
        }
        let mut seen = std::collections::HashMap::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = z.scan(cursor, 7, |m, _| *seen.entry(Bytes::copy_from_slice(m)).or_insert(0) += 1);
            // Churn: rescore stable members, remove and add volatile ones.
            round += 1;
            z.insert(Bytes::from(format!("s{}", round % 100)), -f64::from(round));
            z.remove(format!("s{}", 200 + round % 100).as_bytes());
            z.insert(Bytes::from(format!("new{round}")), 0.5);
            if cursor == 0 {
                break;
            }
        }
        for i in 0..100 {
            assert_eq!(seen.get(format!("s{i}").as_bytes()), Some(&1), "s{i}");
        }
        z.check();
    }

    /// ZSCAN returns every member present for the whole scan while removals between its pages
    /// (one by one, by score range, by rank range, by popping) pack the slab under it, and the
    /// set stays whole: links, ranks, scores and the index.
    #[test]
    fn scan_returns_every_stable_member_while_the_slab_packs() {
        use rand::seq::SliceRandom;
        let mut rng = rand::thread_rng();
        for round in 0..20 {
            let mut z = ZSet::with_size_hint(1000);
            // Members to remove get scores below 0 and above 10,000, so that ranges and pops
            // take only them; the 100 that stay sit in between.
            let mut names: Vec<(String, f64)> = (0..100).map(|i| (format!("stay{i}"), f64::from(i) * 10.0)).collect();
            names.extend((0..900).map(|i| (format!("low{i}"), -1.0 - f64::from(i))));
            names.extend((0..900).map(|i| (format!("high{i}"), 10_001.0 + f64::from(i))));
            names.shuffle(&mut rng);
            for (name, score) in &names {
                z.insert(Bytes::from(name.clone()), *score);
            }
            let mut leaving: Vec<String> =
                names.iter().map(|(n, _)| n.clone()).filter(|n| !n.starts_with("stay")).collect();
            leaving.shuffle(&mut rng);
            let (mut cursor, mut seen, mut pages) = (0, std::collections::HashSet::new(), 0);
            let remove_at = 1 + round * 4;
            loop {
                cursor = z.scan(cursor, 10, |m, _| {
                    seen.insert(Bytes::copy_from_slice(m));
                });
                pages += 1;
                if pages == remove_at {
                    for name in leaving.iter().take(600) {
                        z.remove(name.as_bytes());
                    }
                    z.remove_in(&ScoreRange::parse(b"-inf", b"(0").unwrap());
                    z.pop(300, true);
                    let high = z.len() - 1;
                    z.remove_rank_range(100, high);
                    assert_eq!(z.len(), 100, "round {round}: only the members that stay are left");
                    let Repr::Skip(s) = &z.repr else { panic!("a skip list") };
                    assert_eq!(s.nodes.len(), 101, "round {round}: packed");
                    z.check();
                }
                if cursor == 0 {
                    break;
                }
            }
            let missed = (0..100).filter(|i| !seen.contains(format!("stay{i}").as_bytes())).count();
            assert_eq!(missed, 0, "round {round}: members that stayed were missed");
            for i in 0..100 {
                let name = format!("stay{i}");
                assert_eq!(z.score(name.as_bytes()), Some(f64::from(i) * 10.0));
                assert_eq!(z.rank(name.as_bytes(), false), Some(i as usize));
            }
        }
    }

    #[test]
    fn strtod_like_glibc() {
        assert_eq!(strtod(b"1.5"), (1.5, 3));
        assert_eq!(strtod(b"  -2e3x"), (-2000.0, 6));
        assert_eq!(strtod(b"1e"), (1.0, 1));
        assert_eq!(strtod(b"1e+"), (1.0, 1));
        assert_eq!(strtod(b".5"), (0.5, 2));
        assert_eq!(strtod(b"5."), (5.0, 2));
        assert_eq!(strtod(b"."), (0.0, 0));
        assert_eq!(strtod(b""), (0.0, 0));
        assert_eq!(strtod(b"0x10"), (16.0, 4));
        assert_eq!(strtod(b"0x1p-1"), (0.5, 6));
        assert_eq!(strtod(b"0x.8"), (0.5, 4));
        assert_eq!(strtod(b"0xg"), (0.0, 1));
        assert_eq!(strtod(b"-Infinity"), (f64::NEG_INFINITY, 9));
        assert_eq!(strtod(b"infinit"), (f64::INFINITY, 3));
        assert!(strtod(b"nan(12)").0.is_nan());
        assert_eq!(strtod(b"nan(12)").1, 7);
    }

    #[test]
    fn score_parsing_like_string2d() {
        assert_eq!(parse_score(b"1"), Some(1.0));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+INF"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"0e500"), Some(0.0));
        assert!(parse_score(b"1e-310").is_some_and(|v| v > 0.0));
        for bad in [&b""[..], b" 1", b"1 ", b"nan", b"1e400", b"-1e400", b"1e-400", b"0x", b"abc", b"1.2.3", b"--1"] {
            assert_eq!(parse_score(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn range_parsing_like_zslparserange() {
        let r = ScoreRange::parse(b"(1", b" 2").unwrap();
        assert_eq!((r.min, r.min_exclusive, r.max, r.max_exclusive), (1.0, true, 2.0, false));
        let r = ScoreRange::parse(b"", b"(").unwrap();
        assert_eq!((r.min, r.max, r.max_exclusive), (0.0, 0.0, true));
        let r = ScoreRange::parse(b"-1e400", b"1e400").unwrap();
        assert_eq!((r.min, r.max), (f64::NEG_INFINITY, f64::INFINITY));
        assert!(ScoreRange::parse(b"nan", b"1").is_none());
        assert!(ScoreRange::parse(b"((1", b"1").is_none());
        assert!(ScoreRange::parse(b"1 ", b"1").is_none());
        assert!(ScoreRange::parse(b"1", b"a").is_none());
    }

    #[test]
    fn formats_like_redis() {
        assert_eq!(staykv_resp::format_double(1.1 + 0.0000000000000001), "1.1000000000000001");
        assert_eq!(staykv_resp::format_double(0.1), "0.10000000000000001");
        assert_eq!(staykv_resp::format_double(1e17), "1e+17");
        assert_eq!(staykv_resp::format_double(1e16), "10000000000000000");
        assert_eq!(staykv_resp::format_double(-0.0), "-0");
        assert_eq!(staykv_resp::format_double(1e-310), "9.9999999999999694e-311");
        assert_eq!(staykv_resp::format_double(0.0001), "0.0001");
        assert_eq!(staykv_resp::format_double(0.00001), "1.0000000000000001e-05");
        assert_eq!(staykv_resp::format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_listpack_score(1e17), "100000000000000000");
        assert_eq!(format_listpack_score(4611686018427387904.0), "4611686018427387904");
        assert_eq!(format_listpack_score(9223372036854775808.0), "9.2233720368547758e+18");
        assert_eq!(format_listpack_score(1.5), "1.5");
    }
}
