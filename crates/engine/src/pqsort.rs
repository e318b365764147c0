//! Redis's `pqsort`: a partial quicksort (Bentley–McIlroy three-way partitioning, as in
//! NetBSD's `qsort`) that only finishes the partitions overlapping a range of positions.
//!
//! Why not `select_nth_unstable` + `sort`: elements that compare equal come out in an order
//! that depends on the exact sequence of swaps, and Redis shows that order (GEOSEARCH ...
//! COUNT n over members at the same distance). Reproducing the replies byte for byte means
//! doing the same swaps, so this follows the same algorithm: insertion sort below 7
//! elements, median of three (of three medians above 40) as pivot, elements equal to the
//! pivot gathered at both ends and swapped into the middle.

use std::cmp::Ordering;

/// Order `v` so that positions `0..wanted` hold what a full sort would put there (ties in
/// Redis's order); the rest is left partitioned.
pub fn partial_sort<T, F>(v: &mut [T], wanted: usize, cmp: F)
where
    F: Fn(&T, &T) -> Ordering,
{
    if wanted == 0 {
        return;
    }
    let sorter = Sorter { cmp, last: wanted - 1 };
    sorter.sort(v, 0, v.len());
}

struct Sorter<F> {
    cmp: F,
    /// The last position that must end up sorted (the first is 0).
    last: usize,
}

impl<F> Sorter<F> {
    fn cmp_at<T>(&self, v: &[T], i: usize, j: usize) -> Ordering
    where
        F: Fn(&T, &T) -> Ordering,
    {
        match (v.get(i), v.get(j)) {
            (Some(a), Some(b)) => (self.cmp)(a, b),
            _ => Ordering::Equal,
        }
    }

    /// Whether the segment `start..start + len` holds a wanted position.
    fn overlaps(&self, start: usize, len: usize) -> bool {
        let (first, last) = (0, self.last);
        !((first < start && last < start) || (first >= start + len && last >= start + len))
    }

    fn med3<T>(&self, v: &[T], a: usize, b: usize, c: usize) -> usize
    where
        F: Fn(&T, &T) -> Ordering,
    {
        if self.cmp_at(v, a, b).is_lt() {
            if self.cmp_at(v, b, c).is_lt() {
                b
            } else if self.cmp_at(v, a, c).is_lt() {
                c
            } else {
                a
            }
        } else if self.cmp_at(v, b, c).is_gt() {
            b
        } else if self.cmp_at(v, a, c).is_lt() {
            a
        } else {
            c
        }
    }

    /// Sort the segment `a..a + n` of `v` (absolute positions).
    fn sort<T>(&self, v: &mut [T], mut a: usize, mut n: usize)
    where
        F: Fn(&T, &T) -> Ordering,
    {
        loop {
            if n < 7 {
                for m in a + 1..a + n {
                    let mut l = m;
                    while l > a && self.cmp_at(v, l - 1, l).is_gt() {
                        v.swap(l, l - 1);
                        l -= 1;
                    }
                }
                return;
            }
            let pivot = self.pivot(v, a, n);
            v.swap(a, pivot);
            let (mut pa, mut pb) = (a + 1, a + 1);
            let (mut pc, mut pd) = (a + n - 1, a + n - 1);
            loop {
                while pb <= pc {
                    let order = self.cmp_at(v, pb, a);
                    if order.is_gt() {
                        break;
                    }
                    if order.is_eq() {
                        v.swap(pa, pb);
                        pa += 1;
                    }
                    pb += 1;
                }
                while pb <= pc {
                    let order = self.cmp_at(v, pc, a);
                    if order.is_lt() {
                        break;
                    }
                    if order.is_eq() {
                        v.swap(pc, pd);
                        pd -= 1;
                    }
                    pc -= 1;
                }
                if pb > pc {
                    break;
                }
                v.swap(pb, pc);
                pb += 1;
                pc -= 1;
            }
            let pn = a + n;
            let r = (pa - a).min(pb - pa);
            swap_runs(v, a, pb - r, r);
            let r = (pd - pc).min(pn - pd - 1);
            swap_runs(v, pb, pn - r, r);
            let left = pb - pa;
            if left > 1 && self.overlaps(a, left) {
                self.sort(v, a, left);
            }
            let right = pd - pc;
            if right > 1 && self.overlaps(pn - right, right) {
                (a, n) = (pn - right, right);
                continue;
            }
            return;
        }
    }

    /// The pivot's position: the middle, the median of three past 7, of three medians past 40.
    fn pivot<T>(&self, v: &[T], a: usize, n: usize) -> usize
    where
        F: Fn(&T, &T) -> Ordering,
    {
        let mut m = a + n / 2;
        if n > 7 {
            let (mut l, mut last) = (a, a + n - 1);
            if n > 40 {
                let d = n / 8;
                l = self.med3(v, l, l + d, l + 2 * d);
                m = self.med3(v, m - d, m, m + d);
                last = self.med3(v, last - 2 * d, last - d, last);
            }
            m = self.med3(v, l, m, last);
        }
        m
    }
}

/// Swap the `len` elements from `x` with the `len` elements from `y`, pairwise.
fn swap_runs<T>(v: &mut [T], x: usize, y: usize, len: usize) {
    for i in 0..len {
        v.swap(x + i, y + i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wanted_prefix_is_sorted() {
        let mut state = 7u64;
        for len in 0..200usize {
            let mut v: Vec<u64> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (state >> 33) % 50
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort();
            let wanted = len / 3;
            partial_sort(&mut v, wanted, |a, b| a.cmp(b));
            assert_eq!(v.get(..wanted), sorted.get(..wanted), "len {len}");
        }
    }

    #[test]
    fn ties_are_ordered_as_redis_orders_them() {
        // Redis 7.0: ten members at one point, then one 108 m east and one 108 m west;
        // GEOSEARCH ... COUNT 3 ASC answered m8 m1 m10 (the input in score order).
        let mut v: Vec<(&str, u32)> =
            vec![("b", 1), ("m1", 0), ("m10", 0), ("m2", 0), ("m3", 0), ("m4", 0), ("m5", 0), ("m6", 0), ("m7", 0)];
        v.extend([("m8", 0), ("m9", 0), ("a", 1)]);
        partial_sort(&mut v, 3, |x, y| x.1.cmp(&y.1));
        let names: Vec<&str> = v.iter().take(3).map(|p| p.0).collect();
        assert_eq!(names, ["m8", "m1", "m10"]);
    }
}
