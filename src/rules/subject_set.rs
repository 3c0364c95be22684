//! Every Subject regex of a rule set in one [`RegexSet`]: a message's subject is searched once
//! for all of them, the first time a rule needs one, instead of once per regex.
//!
//! A pattern's bit says exactly what its own regex's `is_match` would (same pattern, same
//! case flag); `evaluate_plain` in the tests runs the regexes one by one to check that.

use std::cell::OnceCell;

use regex::{RegexSet, RegexSetBuilder};

use super::view::MessageView;

/// The subject regexes, split by case flag (a set has one).
#[derive(Debug, Default)]
pub(crate) struct SubjectSets {
    /// (set, slot of each of its patterns), case-insensitive then case-sensitive.
    sets: Vec<(RegexSet, Vec<u32>)>,
    /// Slots in all: bits per message.
    slots: usize,
}

impl SubjectSets {
    /// `patterns[slot]` = (regex source, case-sensitive). `None` when there are too few to
    /// gain anything, or a set would not build (size limits): the regexes then run alone.
    pub(crate) fn build(patterns: &[(String, bool)]) -> Option<SubjectSets> {
        if patterns.len() < 2 {
            return None;
        }
        let mut sets = Vec::new();
        for case_sensitive in [false, true] {
            let (sources, slots): (Vec<&str>, Vec<u32>) = patterns
                .iter()
                .enumerate()
                .filter(|(_, (_, cs))| *cs == case_sensitive)
                .map(|(slot, (p, _))| (p.as_str(), slot as u32))
                .unzip();
            if sources.is_empty() {
                continue;
            }
            let set = RegexSetBuilder::new(sources)
                .case_insensitive(!case_sensitive)
                .build()
                .ok()?;
            sets.push((set, slots));
        }
        Some(SubjectSets {
            sets,
            slots: patterns.len(),
        })
    }

    fn matches(&self, v: &MessageView) -> SlotBits {
        let mut bits = if self.slots <= 64 {
            SlotBits::Small(0)
        } else {
            SlotBits::Large(vec![false; self.slots])
        };
        for subject in v.subjects().flatten() {
            for (set, slots) in &self.sets {
                for i in set.matches(subject.text()).iter() {
                    bits.set(slots[i]);
                }
            }
        }
        bits
    }
}

/// A bit per slot; a plain word for up to 64 regexes.
enum SlotBits {
    Small(u64),
    Large(Vec<bool>),
}

impl SlotBits {
    fn set(&mut self, slot: u32) {
        match self {
            SlotBits::Small(w) => *w |= 1 << slot,
            SlotBits::Large(v) => v[slot as usize] = true,
        }
    }

    fn get(&self, slot: u32) -> bool {
        match self {
            SlotBits::Small(w) => w & (1 << slot) != 0,
            SlotBits::Large(v) => v[slot as usize],
        }
    }
}

/// Per message: the subject searched once, when a rule first asks.
pub(crate) struct Memo<'a> {
    sets: Option<&'a SubjectSets>,
    /// Per slot: some subject matched the pattern.
    bits: OnceCell<SlotBits>,
}

impl<'a> Memo<'a> {
    pub(crate) fn new(sets: Option<&'a SubjectSets>) -> Memo<'a> {
        Memo {
            sets,
            bits: OnceCell::new(),
        }
    }

    /// No set: every regex runs alone.
    pub(crate) fn none() -> Memo<'static> {
        Memo {
            sets: None,
            bits: OnceCell::new(),
        }
    }

    /// Whether some subject matches the regex of `slot`; `None` without a set.
    #[inline]
    pub(crate) fn subject(&self, slot: u32, v: &MessageView) -> Option<bool> {
        let sets = self.sets?;
        Some(self.bits.get_or_init(|| sets.matches(v)).get(slot))
    }
}
