//! Sets of half-open byte ranges, merged on insert.
//!
//! Used for the regions a job failed to write or verify; certificates list
//! them, and the job fails when the set is not empty.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One half-open byte range `[offset, offset + length)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

impl ByteRange {
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// Non-overlapping, non-adjacent ranges kept in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<ByteRange>", into = "Vec<ByteRange>")]
pub struct RangeSet {
    /// start → end (exclusive)
    map: BTreeMap<u64, u64>,
}

impl RangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `[offset, offset + length)`, merging with overlapping or adjacent ranges.
    pub fn insert(&mut self, offset: u64, length: u64) {
        if length == 0 {
            return;
        }
        let mut start = offset;
        let mut end = offset.saturating_add(length);
        // The range starting at or before `start` may overlap or touch it.
        if let Some((&s, &e)) = self.map.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
                self.map.remove(&s);
            }
        }
        // Swallow every range that starts inside or right after the new one.
        let swallowed: Vec<(u64, u64)> =
            self.map.range(start..=end).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in swallowed {
            end = end.max(e);
            self.map.remove(&s);
        }
        self.map.insert(start, end);
    }

    pub fn extend(&mut self, other: &RangeSet) {
        for r in other.iter() {
            self.insert(r.offset, r.length);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Total bytes covered.
    pub fn total(&self) -> u64 {
        self.map.iter().map(|(s, e)| e - s).sum()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = ByteRange> + '_ {
        self.map.iter().map(|(&s, &e)| ByteRange {
            offset: s,
            length: e - s,
        })
    }

    pub fn contains(&self, offset: u64) -> bool {
        self.map
            .range(..=offset)
            .next_back()
            .is_some_and(|(_, &e)| offset < e)
    }
}

impl From<Vec<ByteRange>> for RangeSet {
    fn from(v: Vec<ByteRange>) -> Self {
        let mut set = RangeSet::new();
        for r in v {
            set.insert(r.offset, r.length);
        }
        set
    }
}

impl From<RangeSet> for Vec<ByteRange> {
    fn from(s: RangeSet) -> Self {
        s.iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merges_overlapping_and_adjacent() {
        let mut s = RangeSet::new();
        s.insert(10, 5);
        s.insert(20, 5);
        assert_eq!(s.len(), 2);
        s.insert(15, 5); // touches both
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![ByteRange {
                offset: 10,
                length: 15
            }]
        );
        s.insert(0, 1);
        s.insert(100, 0);
        assert_eq!(s.len(), 2);
        assert_eq!(s.total(), 16);
        assert!(s.contains(24) && !s.contains(25) && s.contains(0) && !s.contains(1));
    }

    proptest! {
        /// The set covers exactly the union of what was inserted.
        #[test]
        fn matches_a_bitmap(ops in prop::collection::vec((0u64..200, 0u64..30), 0..40)) {
            let mut set = RangeSet::new();
            let mut bits = [false; 256];
            for (o, l) in ops {
                set.insert(o, l);
                for b in o..(o + l) { bits[b as usize] = true; }
            }
            for (i, &b) in bits.iter().enumerate() {
                prop_assert_eq!(set.contains(i as u64), b);
            }
            prop_assert_eq!(set.total(), bits.iter().filter(|b| **b).count() as u64);
            // Ranges are disjoint and not adjacent.
            let v: Vec<_> = set.iter().collect();
            for w in v.windows(2) { prop_assert!(w[0].end() < w[1].offset); }
            // Serde round trip.
            let json = serde_json::to_string(&set).unwrap();
            prop_assert_eq!(serde_json::from_str::<RangeSet>(&json).unwrap(), set);
        }
    }
}
