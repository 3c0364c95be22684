//! UIDs and UID sets (RFC 3501 `sequence-set` restricted to UIDs).
//!
//! A [`UidSet`] keeps its UIDs as sorted, disjoint, non-adjacent ranges, so it prints in the
//! shortest form (`1:5,7,9:12`) and can be cut into pieces that each fit on one command line.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

/// An IMAP UID: never 0 (RFC 3501 section 2.3.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(NonZeroU32);

impl Uid {
    /// `None` for 0, which is not a UID.
    pub fn new(value: u32) -> Option<Uid> {
        NonZeroU32::new(value).map(Uid)
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A set of UIDs, kept as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct UidSet {
    /// Invariant: `start <= end`, sorted, and `end + 1 < next.start`.
    ranges: Vec<(u32, u32)>,
}

/// The line budget for a UID set inside one command. RFC 7162 section 4 recommends that clients
/// keep command lines to about 8192 octets (servers accept at least that; Dovecot 64 KiB);
/// 7,500 leaves room for the tag, the command and a mailbox name. Fewer, longer commands matter:
/// Dovecot pays a fixed cost per MOVE and per expunge (it rewrites the source mailbox's index),
/// so 3,000 scattered UIDs moved in 14 commands of 1,000 characters took 535 ms, in 2 commands
/// 177-263 ms (benches/suite, docs/BENCHMARKS.md).
pub const MAX_SET_CHARS: usize = 7500;

/// The line budget on a server known to take longer lines: Dovecot accepts command lines up to
/// its `imap_max_line_length`, 64 KiB by default; 60,000 characters of UID set leave room for
/// the rest of the line. At a million messages Dovecot pays seconds per `UID EXPUNGE` and
/// about half a second per `UID STORE` whatever their size, so the number of lines is the cost
/// (docs/BENCHMARKS.md). A server that refuses such a line (an administrator's lower limit)
/// makes the session fall back to [`MAX_SET_CHARS`] (`Session::line_refused`).
pub const LONG_SET_CHARS: usize = 60_000;

impl UidSet {
    pub fn new() -> UidSet {
        UidSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many UIDs the set holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }

    pub fn contains(&self, uid: Uid) -> bool {
        let u = uid.get();
        let i = self.ranges.partition_point(|&(_, end)| end < u);
        self.ranges.get(i).is_some_and(|&(start, _)| start <= u)
    }

    /// Adds one UID, merging with neighbouring ranges.
    pub fn insert(&mut self, uid: Uid) {
        self.insert_range(uid.get(), uid.get());
    }

    fn insert_range(&mut self, start: u32, end: u32) {
        // Fast path: UIDs mostly arrive in ascending order.
        if let Some(last) = self.ranges.last_mut() {
            if start > last.1 {
                if start == last.1 + 1 {
                    last.1 = end;
                } else {
                    self.ranges.push((start, end));
                }
                return;
            }
        } else {
            self.ranges.push((start, end));
            return;
        }
        // General case: find every range touching [start, end] and replace them by one.
        let first = self
            .ranges
            .partition_point(|&(_, e)| e.saturating_add(1) < start);
        let last = self
            .ranges
            .partition_point(|&(s, _)| s <= end.saturating_add(1));
        if first == last {
            self.ranges.insert(first, (start, end));
        } else {
            let merged = (
                start.min(self.ranges[first].0),
                end.max(self.ranges[last - 1].1),
            );
            self.ranges.splice(first..last, [merged]);
        }
    }

    /// The UIDs in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = Uid> + '_ {
        self.ranges
            .iter()
            .flat_map(|&(a, b)| (a..=b).filter_map(Uid::new))
    }

    /// The ranges, ascending, as `(first, last)` inclusive.
    pub fn ranges(&self) -> impl Iterator<Item = (Uid, Uid)> + '_ {
        self.ranges
            .iter()
            .filter_map(|&(a, b)| Some((Uid::new(a)?, Uid::new(b)?)))
    }

    /// A set that names exactly the same *existing* messages as this one, in fewer ranges.
    ///
    /// `known` is the UID range whose existing messages `existing` lists completely (UIDs are
    /// never reused, so a UID inside it that `existing` lacks will never exist). Two ranges of
    /// this set merge when every UID between them is known not to exist, so `1:3,5` becomes
    /// `1:5` once message 4 is known to be gone. A command over the result touches exactly the
    /// messages of `self`: `result ∩ existing == self ∩ existing`.
    pub fn widen(&self, existing: &UidSet, known: (Uid, Uid)) -> UidSet {
        let (lo, hi) = (known.0.get(), known.1.get());
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len());
        for &(a, b) in &self.ranges {
            if let Some(last) = out.last_mut() {
                let (x, y) = (last.1 + 1, a - 1);
                if lo <= x && y <= hi && !existing.intersects(x, y) {
                    last.1 = b;
                    continue;
                }
            }
            out.push((a, b));
        }
        UidSet { ranges: out }
    }

    /// Whether some UID in `start..=end` is in the set.
    fn intersects(&self, start: u32, end: u32) -> bool {
        let i = self.ranges.partition_point(|&(_, e)| e < start);
        self.ranges.get(i).is_some_and(|&(s, _)| s <= end)
    }

    /// Removes every UID of `other`.
    pub fn remove_all(&mut self, other: &UidSet) {
        let mut out = Vec::with_capacity(self.ranges.len());
        let mut j = 0;
        for &(a, b) in &self.ranges {
            // u64: `end + 1` of a range ending at u32::MAX must not wrap.
            let (mut start, b) = (u64::from(a), u64::from(b));
            while other
                .ranges
                .get(j)
                .is_some_and(|&(_, e)| u64::from(e) < start)
            {
                j += 1;
            }
            let mut k = j;
            while start <= b {
                match other.ranges.get(k) {
                    Some(&(oa, ob)) if u64::from(oa) <= b => {
                        if u64::from(oa) > start {
                            out.push((start as u32, oa - 1));
                        }
                        start = start.max(u64::from(ob) + 1);
                        k += 1;
                    }
                    _ => {
                        out.push((start as u32, b as u32));
                        break;
                    }
                }
            }
        }
        self.ranges = out;
    }

    /// Cuts the set into pieces whose printed form is at most `max_chars` long and that hold at
    /// most `max_uids` UIDs each, in ascending order. Together they hold exactly this set.
    pub fn chunks(&self, max_chars: usize, max_uids: u64) -> Vec<UidSet> {
        // The longest single range "4294967295:4294967295" is 21 characters.
        let max_chars = max_chars.max(21);
        let max_uids = max_uids.max(1);
        let mut out = Vec::new();
        let mut cur = UidSet::new();
        let mut cur_chars = 0usize;
        let mut cur_uids = 0u64;
        for &(a, b) in &self.ranges {
            let mut start = a;
            loop {
                let room = max_uids - cur_uids;
                let end = if u64::from(b - start) + 1 > room {
                    // `room >= 1` here and the range holds more, so this stays below `b`.
                    start + (room - 1) as u32
                } else {
                    b
                };
                let piece = range_chars(start, end) + usize::from(!cur.is_empty());
                if !cur.is_empty() && cur_chars + piece > max_chars {
                    out.push(std::mem::take(&mut cur));
                    cur_chars = 0;
                    cur_uids = 0;
                    continue;
                }
                cur.ranges.push((start, end));
                cur_chars += piece;
                cur_uids += u64::from(end - start) + 1;
                if cur_uids == max_uids {
                    out.push(std::mem::take(&mut cur));
                    cur_chars = 0;
                    cur_uids = 0;
                }
                if end == b {
                    break;
                }
                start = end + 1;
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }
}

fn digits(n: u32) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

fn range_chars(a: u32, b: u32) -> usize {
    if a == b {
        digits(a)
    } else {
        digits(a) + 1 + digits(b)
    }
}

impl FromIterator<Uid> for UidSet {
    fn from_iter<I: IntoIterator<Item = Uid>>(iter: I) -> UidSet {
        let mut set = UidSet::new();
        set.extend(iter);
        set
    }
}

impl Extend<Uid> for UidSet {
    fn extend<I: IntoIterator<Item = Uid>>(&mut self, iter: I) {
        for uid in iter {
            self.insert(uid);
        }
    }
}

impl fmt::Display for UidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}:{b}")?;
            }
        }
        Ok(())
    }
}

/// A UID set that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid uid set {input:?}")]
pub struct ParseUidSetError {
    /// The text as given, to show where it came from.
    pub input: String,
}

impl FromStr for UidSet {
    type Err = ParseUidSetError;

    /// Reads `1:5,7,9:12` (ranges may be written high to low; `*` is not accepted: a
    /// `UidSet` holds concrete UIDs).
    fn from_str(s: &str) -> Result<UidSet, ParseUidSetError> {
        let err = || ParseUidSetError {
            input: s.to_owned(),
        };
        let mut set = UidSet::new();
        for part in s.split(',') {
            let (a, b) = match part.split_once(':') {
                Some((a, b)) => (a, b),
                None => (part, part),
            };
            let parse = |t: &str| {
                if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                t.parse::<u32>().ok().and_then(Uid::new)
            };
            let (a, b) = (parse(a).ok_or_else(err)?, parse(b).ok_or_else(err)?);
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            set.insert_range(a.get(), b.get());
        }
        Ok(set)
    }
}

/// What the server said about the copies one `UID COPY` or `UID MOVE` made (RFC 4315
/// COPYUID): the destination's UIDVALIDITY and, pair by pair, source UID -> the copy's UID.
/// Kept with the journal, it names a copy exactly (for recovery and for undo), where a
/// Message-ID only names messages that look alike.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyUid {
    pub uid_validity: u32,
    /// (source, destination), in the server's order.
    pub pairs: Vec<(u32, u32)>,
}

impl CopyUid {
    /// From the two UID lists of a COPYUID response code, expanded; `None` when their
    /// lengths differ (a broken answer, ignored).
    pub fn new(uid_validity: u32, source: Vec<u32>, dest: Vec<u32>) -> Option<CopyUid> {
        (source.len() == dest.len()).then(|| CopyUid {
            uid_validity,
            pairs: source.into_iter().zip(dest).collect(),
        })
    }

    /// The copy of source UID `uid`, if this command copied it.
    pub fn dest_of(&self, uid: u32) -> Option<u32> {
        self.pairs.iter().find(|(s, _)| *s == uid).map(|(_, d)| *d)
    }

    /// Compact text for the state database: runs `SRC:DST:LEN` (consecutive pairs on both
    /// sides) joined by `,`.
    pub fn encode_pairs(&self) -> String {
        let mut runs: Vec<(u32, u32, u32)> = Vec::new();
        for &(s, d) in &self.pairs {
            match runs.last_mut() {
                Some((rs, rd, n))
                    if rs.checked_add(*n) == Some(s) && rd.checked_add(*n) == Some(d) =>
                {
                    *n += 1
                }
                _ => runs.push((s, d, 1)),
            }
        }
        runs.iter()
            .map(|(s, d, n)| format!("{s}:{d}:{n}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The pairs [`encode_pairs`](Self::encode_pairs) wrote (unreadable runs are skipped).
    pub fn decode_pairs(text: &str) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for run in text.split([',', ' ']).filter(|r| !r.is_empty()) {
            let mut parts = run.split(':').map(|p| p.parse::<u32>().ok());
            if let (Some(Some(s)), Some(Some(d)), Some(Some(n)), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            {
                out.extend((0..n).filter_map(|i| Some((s.checked_add(i)?, d.checked_add(i)?))));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copyuid_pairs_round_trip_through_their_compact_text() {
        let c = CopyUid::new(9, vec![304, 319, 320, 400], vec![3956, 3957, 3958, 4000]).unwrap();
        assert_eq!(c.encode_pairs(), "304:3956:1,319:3957:2,400:4000:1");
        assert_eq!(CopyUid::decode_pairs(&c.encode_pairs()), c.pairs);
        assert_eq!(c.dest_of(320), Some(3958));
        assert_eq!(c.dest_of(321), None);
        assert!(CopyUid::new(9, vec![1, 2], vec![3]).is_none());
        assert_eq!(CopyUid::decode_pairs("5:7:2 junk,1:2"), [(5, 7), (6, 8)]);
    }
    use proptest::prelude::*;

    fn set(uids: &[u32]) -> UidSet {
        uids.iter().filter_map(|&u| Uid::new(u)).collect()
    }

    #[test]
    fn uid_zero_is_not_a_uid() {
        assert_eq!(Uid::new(0), None);
        assert_eq!(Uid::new(7).map(Uid::get), Some(7));
    }

    #[test]
    fn prints_compressed_ranges() {
        let cases: &[(&[u32], &str)] = &[
            (&[], ""),
            (&[1], "1"),
            (&[1, 2, 3, 4, 5, 7, 9, 10, 11, 12], "1:5,7,9:12"),
            (&[12, 9, 11, 10, 7, 5, 4, 3, 2, 1, 3, 3], "1:5,7,9:12"),
            (&[5, 3, 4], "3:5"),
            (&[10, 1, 5, 2, 4, 3], "1:5,10"),
            (&[u32::MAX, u32::MAX - 1], "4294967294:4294967295"),
        ];
        for (uids, want) in cases {
            assert_eq!(set(uids).to_string(), *want, "{uids:?}");
        }
    }

    #[test]
    fn insert_merges_ranges_it_bridges() {
        let mut s = set(&[1, 2, 3, 7, 8, 9, 20]);
        s.insert(Uid::new(5).unwrap());
        assert_eq!(s.to_string(), "1:3,5,7:9,20");
        s.insert(Uid::new(4).unwrap());
        s.insert(Uid::new(6).unwrap());
        assert_eq!(s.to_string(), "1:9,20");
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn parses_what_servers_and_people_write() {
        let cases: &[(&str, Option<&str>)] = &[
            ("1:5,7,9:12", Some("1:5,7,9:12")),
            ("5:1", Some("1:5")),
            ("3,1,2", Some("1:3")),
            ("0", None),
            ("1:*", None),
            ("", None),
            ("1,,2", None),
            ("+1", None),
            ("99999999999", None),
        ];
        for (input, want) in cases {
            let got = input.parse::<UidSet>().ok().map(|s| s.to_string());
            assert_eq!(got.as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn widen_merges_only_across_uids_known_to_be_gone() {
        let existing: UidSet = "1:3,5,7,9:10,20".parse().unwrap();
        let known = (Uid::new(1).unwrap(), Uid::new(20).unwrap());
        let cases = [
            // 4 never existed: 3 and 5 merge; 6 is gone too, 7 exists and is not targeted.
            ("3,5", "3:5"),
            ("3,5,9", "3:5,9"),
            ("5,7,9:10,20", "5:20"),
            ("1,20", "1,20"),
            ("10,20", "10:20"),
        ];
        for (target, want) in cases {
            let target: UidSet = target.parse().unwrap();
            assert_eq!(target.widen(&existing, known).to_string(), want, "{target}");
        }
        // Outside the known range nothing is assumed gone.
        let narrow = (Uid::new(1).unwrap(), Uid::new(9).unwrap());
        let target: UidSet = "10,20".parse().unwrap();
        assert_eq!(target.widen(&existing, narrow).to_string(), "10,20");
    }

    #[test]
    fn chunks_respect_the_uid_budget_inside_one_range() {
        let s: UidSet = "1:1000".parse().unwrap();
        let chunks: Vec<String> = s.chunks(1000, 300).iter().map(|c| c.to_string()).collect();
        assert_eq!(chunks, ["1:300", "301:600", "601:900", "901:1000"]);
    }

    #[test]
    fn chunks_respect_the_line_budget() {
        // Every other UID: no ranges, so the text grows fast.
        let s = set(&(1..=2000).filter(|u| u % 2 == 0).collect::<Vec<_>>());
        let chunks = s.chunks(100, u64::MAX);
        assert!(chunks.len() > 10);
        for c in &chunks {
            assert!(c.to_string().len() <= 100, "{c}");
        }
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(uids in proptest::collection::vec(1u32..5000, 1..300)) {
            let s = set(&uids);
            let back: UidSet = s.to_string().parse().unwrap();
            prop_assert_eq!(&back, &s);
            let mut sorted = uids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(s.iter().map(Uid::get).collect::<Vec<_>>(), sorted.clone());
            prop_assert_eq!(s.len(), sorted.len() as u64);
            for u in 1..5001u32 {
                prop_assert_eq!(s.contains(Uid::new(u).unwrap()), sorted.binary_search(&u).is_ok());
            }
        }

        #[test]
        fn widened_sets_touch_exactly_the_same_existing_messages(
            existing in proptest::collection::vec(1u32..400, 0..300),
            pick in proptest::collection::vec(any::<bool>(), 300),
            lo in 1u32..50,
            hi in 300u32..500,
        ) {
            // Everything in `known` not in `existing` is gone; outside it, anything may exist.
            let existing = set(&existing);
            let target: UidSet = existing
                .iter()
                .zip(pick.iter().cycle())
                .filter(|(_, keep)| **keep)
                .map(|(u, _)| u)
                .collect();
            let known = (Uid::new(lo).unwrap(), Uid::new(hi).unwrap());
            let wide = target.widen(&existing, known);
            for u in 1..600u32 {
                let uid = Uid::new(u).unwrap();
                let may_exist = existing.contains(uid) || u < lo || u > hi;
                if may_exist {
                    prop_assert_eq!(wide.contains(uid), target.contains(uid), "uid {}", u);
                }
            }
            prop_assert!(target.iter().all(|u| wide.contains(u)));
            prop_assert!(wide.ranges.len() <= target.ranges.len());
        }

        #[test]
        fn remove_all_is_set_difference(
            a in proptest::collection::vec(1u32..300, 0..200),
            b in proptest::collection::vec(1u32..300, 0..200),
        ) {
            let (sa, sb) = (set(&a), set(&b));
            let mut diff = sa.clone();
            diff.remove_all(&sb);
            let want: UidSet = sa.iter().filter(|u| !sb.contains(*u)).collect();
            prop_assert_eq!(diff, want);
            let mut top: UidSet = "4294967290:4294967295".parse().unwrap();
            top.remove_all(&"4294967295".parse().unwrap());
            prop_assert_eq!(top.to_string(), "4294967290:4294967294");
        }

        #[test]
        fn chunks_cover_exactly_the_input(
            uids in proptest::collection::vec(1u32..100_000, 0..600),
            max_chars in 0usize..200,
            max_uids in 1u64..400,
        ) {
            let s = set(&uids);
            let chunks = s.chunks(max_chars, max_uids);
            let mut all = Vec::new();
            for c in &chunks {
                prop_assert!(!c.is_empty());
                prop_assert!(c.to_string().len() <= max_chars.max(21));
                prop_assert!(c.len() <= max_uids);
                all.extend(c.iter());
            }
            // Ascending across chunks, no repeats, nothing lost.
            prop_assert!(all.windows(2).all(|w| w[0] < w[1]));
            prop_assert_eq!(all, s.iter().collect::<Vec<_>>());
        }
    }
}
