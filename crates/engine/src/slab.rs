//! Packing a slab: entries in numbered slots (`Option<T>`, `None` a hole a removal left), found
//! through an index of slot numbers. The keyspace's databases (`keyspace.rs`), large sets and
//! hashes (`byte_table.rs`) and sorted sets' skip lists (`zset.rs`) are laid out this way, so
//! that a scan cursor can be a slot number.
//!
//! Packing moves entries only *down*, the top ones into the lowest holes. A scan that walks
//! the slots downward therefore still finds every entry present for the whole scan: one below
//! the cursor stays below it, wherever packing moves it (one moved from above the cursor to
//! below comes twice, which SCAN allows).

use hashbrown::HashTable;

/// Slabs (and indexes) this short are never packed (shrunk): what it saves is not worth the
/// work.
const PACK_FROM_SLOTS: usize = 64;

/// Whether a slab of `slots` holding `len` entries is due for packing: more than half holes.
/// Packing then costs no more than the removals since the last one.
pub fn is_sparse(len: usize, slots: usize) -> bool {
    slots >= PACK_FROM_SLOTS && len * 2 < slots
}

/// Shrinks an index of slot numbers once it is under an eighth full, to about twice what it
/// holds, as Redis's dicts shrink below a tenth: memory follows the content, and the removals
/// pay for the rehash. `hash_of` gives the hash of the entry in a slot.
pub fn shrink_index(index: &mut HashTable<u32>, hash_of: impl Fn(u32) -> u64) {
    if index.capacity() >= PACK_FROM_SLOTS && index.len() * 8 < index.capacity() {
        index.shrink_to(index.len() * 2, |&slot| hash_of(slot));
    }
}

/// Moves the top entries of `slots` down into its lowest holes, until every entry sits below
/// their count, and tells `moved(entry, from, to)` of each move so that the index follows.
/// The slab can then be cut to that count.
pub fn pack<T>(slots: &mut [Option<T>], mut moved: impl FnMut(&T, u32, u32)) {
    let (mut hole, mut top) = (0, slots.len());
    loop {
        while slots.get(hole).is_some_and(Option::is_some) {
            hole += 1;
        }
        while top > hole && slots.get(top - 1).is_some_and(Option::is_none) {
            top -= 1;
        }
        if top <= hole + 1 {
            return;
        }
        top -= 1;
        let Some(entry) = slots.get_mut(top).and_then(Option::take) else { return };
        moved(&entry, top as u32, hole as u32);
        if let Some(place) = slots.get_mut(hole) {
            *place = Some(entry);
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// Entries end up below their count, each moved only down, and every move is reported.
    #[test]
    fn packing_moves_top_entries_down_into_the_lowest_holes() {
        let mut slots = vec![None, Some('a'), None, Some('b'), Some('c'), None, Some('d'), None];
        let mut moves = Vec::new();
        pack(&mut slots, |&entry, from, to| moves.push((entry, from, to)));
        assert_eq!(moves, [('d', 6, 0), ('c', 4, 2)]);
        assert_eq!(slots[..4], [Some('d'), Some('a'), Some('c'), Some('b')]);
        assert!(slots[4..].iter().all(Option::is_none));
        let mut full = vec![Some(1), Some(2)];
        pack(&mut full, |_, _, _| unreachable!("nothing to move"));
        pack(&mut Vec::<Option<u8>>::new(), |_, _, _| unreachable!("nothing to move"));
    }
}
