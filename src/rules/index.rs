//! A prefilter over the rule set: rules whose condition needs one of a few exact addresses,
//! address domains or List-Id values are found by table lookups on the message's own
//! addresses and List-Ids, instead of being compared one by one.
//!
//! The index only ever rules a rule out: a rule it keeps is still evaluated in full, so the
//! outcome is exactly that of trying every rule (see `index_tests.rs`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::ast::AddressField;
use super::cond::Cond;
use super::guard::{SOURCES, Source};
use super::view::{AddressEntry, AddressSlot, MessageView};

/// Word-at-a-time multiplicative hashing: the keys are short strings and the tables small,
/// so SipHash's cost would dominate a lookup.
#[derive(Default)]
struct KeyHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
        }
        self.0 = h;
    }

    fn write_u8(&mut self, b: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}

type Map = HashMap<Box<str>, Vec<u32>, BuildHasherDefault<KeyHasher>>;

/// The keys of one source.
#[derive(Debug, Default)]
struct Table {
    /// Exact value -> rules (ascending) guarded by it.
    exact: Map,
    /// Domain -> rules (ascending) guarded by it.
    domains: Map,
}

impl Table {
    fn add(map: &mut Map, key: &str, rule: u32) {
        let rules = map.entry(key.into()).or_default();
        if rules.last() != Some(&rule) {
            rules.push(rule);
        }
    }

    fn mark(map: &Map, key: &str, bits: &mut Bits) {
        if let Some(rules) = map.get(key) {
            rules.iter().for_each(|&r| bits.set(r as usize));
        }
    }

    fn mark_address(&self, a: &AddressEntry, bits: &mut Bits) {
        if !self.exact.is_empty() {
            Self::mark(&self.exact, &a.address, bits);
        }
        if !self.domains.is_empty() {
            // `domain_matches(d, want)`: want is d itself or what follows one of d's dots.
            let d = a.domain();
            Self::mark(&self.domains, d, bits);
            for (i, _) in d.match_indices('.') {
                Self::mark(&self.domains, &d[i + 1..], bits);
            }
        }
    }
}

/// Rules guarded by keys, and the keys.
#[derive(Debug, Default)]
pub(crate) struct RuleIndex {
    /// Indexed by [`Source::id`].
    tables: Vec<Table>,
    /// Per rule: a bit per source whose keys guard it; 0: unguarded, always evaluated.
    guards: Vec<u16>,
    /// A bit per unguarded rule (words of 64).
    unguarded: Vec<u64>,
    /// Every source some rule is guarded by.
    used: u16,
}

impl RuleIndex {
    pub(crate) fn build<'a>(conds: impl Iterator<Item = &'a Cond>) -> RuleIndex {
        let mut tables: Vec<Table> = (0..SOURCES).map(|_| Table::default()).collect();
        let mut guards = Vec::new();
        let mut keys = Vec::new();
        for (rule, cond) in conds.enumerate() {
            keys.clear();
            let mut mask = 0u16;
            if cond.guard(&mut keys) {
                for k in &keys {
                    let id = k.source.id();
                    let t = &mut tables[id];
                    let map = if k.domain {
                        &mut t.domains
                    } else {
                        &mut t.exact
                    };
                    Table::add(map, &k.key, rule as u32);
                    mask |= 1 << id;
                }
            }
            guards.push(mask);
        }
        let mut unguarded = vec![0u64; guards.len().div_ceil(64)];
        for (i, g) in guards.iter().enumerate() {
            if *g == 0 {
                unguarded[i / 64] |= 1 << (i % 64);
            }
        }
        let used = guards.iter().fold(0, |a, g| a | g);
        RuleIndex {
            tables,
            guards,
            unguarded,
            used,
        }
    }

    /// The rules this message can match, in file order: every unguarded rule, and the
    /// guarded ones whose keys the message has. `indexed: false`: every rule.
    pub(crate) fn candidates(&self, v: &MessageView, indexed: bool) -> Candidates {
        let n = self.guards.len();
        let mut bits = Bits::new(n);
        if indexed {
            look_up(self, self.used, v, &mut bits);
            for (w, u) in bits.words_mut().iter_mut().zip(&self.unguarded) {
                *w |= u;
            }
        } else {
            (0..n).for_each(|i| bits.set(i));
        }
        Candidates { bits, word: 0 }
    }

    #[cfg(test)]
    pub(crate) fn guarded(&self) -> usize {
        self.guards.iter().filter(|&&g| g != 0).count()
    }
}

/// A bit per rule; inline for the usual rule set sizes.
enum Bits {
    Inline([u64; 4]),
    Heap(Vec<u64>),
}

impl Bits {
    fn new(n: usize) -> Bits {
        if n <= 256 {
            Bits::Inline([0; 4])
        } else {
            Bits::Heap(vec![0; n.div_ceil(64)])
        }
    }

    fn words_mut(&mut self) -> &mut [u64] {
        match self {
            Bits::Inline(w) => &mut w[..],
            Bits::Heap(w) => &mut w[..],
        }
    }

    fn set(&mut self, i: usize) {
        self.words_mut()[i / 64] |= 1 << (i % 64);
    }
}

/// The rules one message can match, taken in ascending order.
pub(crate) struct Candidates {
    bits: Bits,
    /// The word the next rule is looked for in.
    word: usize,
}

impl Iterator for Candidates {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        let words = self.bits.words_mut();
        while let Some(w) = words.get_mut(self.word) {
            if *w != 0 {
                let bit = w.trailing_zeros() as usize;
                *w &= *w - 1;
                return Some(self.word * 64 + bit);
            }
            self.word += 1;
        }
        None
    }
}

/// Mark the rules whose keys of `sources` the message has.
fn look_up(index: &RuleIndex, sources: u16, v: &MessageView, bits: &mut Bits) {
    let fields = [
        AddressField::From,
        AddressField::Sender,
        AddressField::ReplyTo,
        AddressField::To,
        AddressField::Cc,
        AddressField::Bcc,
        AddressField::Recipient,
    ];
    for field in fields {
        let id = Source::Address(field).id();
        if sources & (1 << id) == 0 {
            continue;
        }
        let table = &index.tables[id];
        let slots: &[AddressSlot] = match field {
            // Several From headers make every from condition false.
            AddressField::From if v.from_count() > 1 => &[],
            AddressField::From => &[AddressSlot::From],
            AddressField::Sender => &[AddressSlot::Sender],
            AddressField::ReplyTo => &[AddressSlot::ReplyTo],
            AddressField::To => &[AddressSlot::To],
            AddressField::Cc => &[AddressSlot::Cc],
            AddressField::Bcc => &[AddressSlot::Bcc],
            AddressField::Recipient => &[AddressSlot::To, AddressSlot::Cc, AddressSlot::Bcc],
        };
        for &slot in slots {
            for a in &v.address_list(slot).addrs {
                table.mark_address(a, bits);
            }
        }
    }
    let lower = Source::ListIdLower.id();
    if sources & (1 << lower) != 0 {
        for l in &v.list_ids {
            Table::mark(&index.tables[lower].exact, l.lower(), bits);
        }
    }
    let text = Source::ListIdText.id();
    if sources & (1 << text) != 0 {
        for l in &v.list_ids {
            Table::mark(&index.tables[text].exact, l.text(), bits);
        }
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
