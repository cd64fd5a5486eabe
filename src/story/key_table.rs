//! The band index's table, key -> newest article, in place of a general hash map. A million
//! keys outgrow the CPU's caches, so nearly every probe waits on memory; one array of key and
//! article pairs, probed in order from the slot the key's low bits pick (the keys are hashes
//! already), can load the first slot of all an article's keys at once, so that they wait on
//! memory together rather than one after another. It holds what a `HashMap<u32, u32>` holds, which a
//! property test checks.

/// Keys to articles by open addressing with linear probing, at most three quarters full.
#[derive(Debug, Default)]
pub(super) struct KeyTable {
    /// A key in the high half, its article in the low; 0 is an empty slot, so the key 0 is
    /// kept apart.
    slots: Vec<u64>,
    zero: Option<u32>,
    len: usize,
}

impl KeyTable {
    pub(super) fn get(&self, key: u32) -> Option<u32> {
        if key == 0 {
            return self.zero;
        }
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut slot = key as usize & mask;
        loop {
            let held = self.slots[slot];
            if held == 0 {
                return None;
            }
            if (held >> 32) as u32 == key {
                return Some(held as u32);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Sets `key` to `article`, giving back the article it had.
    pub(super) fn insert(&mut self, key: u32, article: u32) -> Option<u32> {
        if key == 0 {
            let old = self.zero.replace(article);
            self.len += usize::from(old.is_none());
            return old;
        }
        if 4 * (self.len + 1) > 3 * self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut slot = key as usize & mask;
        let packed = (u64::from(key) << 32) | u64::from(article);
        loop {
            let held = self.slots[slot];
            if held == 0 {
                self.slots[slot] = packed;
                self.len += 1;
                return None;
            }
            if (held >> 32) as u32 == key {
                self.slots[slot] = packed;
                return Some(held as u32);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Reads the first slot of each key, so that their cache misses overlap instead of
    /// coming one after another in the probes that follow.
    pub(super) fn prefetch(&self, keys: &[u32]) {
        let mask = self.slots.len().wrapping_sub(1);
        for &key in keys {
            if let Some(&held) = self.slots.get(key as usize & mask) {
                std::hint::black_box(held);
            }
        }
    }

    /// How many keys it holds.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn grow(&mut self) {
        let size = (2 * self.slots.len()).max(1024);
        let mut grown = vec![0; size];
        advise_huge_pages(&mut grown);
        let old = std::mem::replace(&mut self.slots, grown);
        let mask = size - 1;
        for held in old.into_iter().filter(|&held| held != 0) {
            let mut slot = (held >> 32) as usize & mask;
            while self.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = held;
        }
    }
}

/// Asks the kernel to back a large table with huge pages (2 MB) where it allows it on request
/// (transparent huge pages in `madvise` mode): a table of a million keys then takes a few
/// page faults instead of thousands, and its probes, which land anywhere in it, no longer
/// miss the TLB as well as the cache. Only whole huge pages inside the table are advised;
/// the advice is a hint, and without it the table works the same.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise_huge_pages(slots: &mut [u64]) {
    const HUGE_PAGE: usize = 2 << 20;
    let start = slots.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(slots);
    let (first, last) = (
        start.next_multiple_of(HUGE_PAGE),
        end / HUGE_PAGE * HUGE_PAGE,
    );
    if first < last {
        // SAFETY: the range is whole pages inside the table's own allocation, and
        // MADV_HUGEPAGE changes only how its pages are backed, never what they hold.
        unsafe {
            libc::madvise(
                first as *mut libc::c_void,
                last - first,
                libc::MADV_HUGEPAGE,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_slots: &mut [u64]) {}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Through growth and overwrites, with keys that share low bits and the key 0.
        #[test]
        fn holds_what_a_hash_map_holds(
            ops in prop::collection::vec((0u32..4, 0u32..3000, any::<u32>()), 0..2000),
        ) {
            let (mut table, mut map) = (KeyTable::default(), HashMap::new());
            for (high, low, article) in ops {
                // Few distinct low bits, so that probes run into each other.
                let key = (high << 30) | (low * 16);
                prop_assert_eq!(table.insert(key, article), map.insert(key, article));
                prop_assert_eq!(table.len(), map.len());
            }
            for key in map.keys().copied().chain([0, 1, 16, u32::MAX]) {
                prop_assert_eq!(table.get(key), map.get(&key).copied());
            }
        }
    }
}
