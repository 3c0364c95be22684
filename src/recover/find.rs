//! Was this message's copy made? Looking for the copies of an interrupted batch in its
//! destinations, exactly and narrowly.
//!
//! - A copy the server reported (COPYUID, kept in the batch's transfer row) is that UID:
//!   it is there or it is not.
//! - Otherwise only what arrived in the destination since the batch's fence (UIDNEXT taken
//!   before its first copy there, durable before the command) can be the copy: `UID SEARCH UID
//!   <fence>:*`, less the copies other batches reported. Messages that were there before —
//!   an earlier copy of the same message, another message with the same Message-ID — are
//!   below the fence and never looked at; `UID FETCH 1:*` of a whole destination never goes
//!   out.
//! - Among those, a copy is the same message: the same RFC822.SIZE, INTERNALDATE (COPY keeps
//!   it) and identifying header fields (Message-ID, Date, From, To, Subject) byte for byte, so
//!   messages without a Message-ID are found as well. Each found message answers for one
//!   original only (identical originals get as many copies as were found).
//!
//! What this cannot tell apart is another client putting a byte-identical copy of the same
//! message into the destination in the moments between the fence and the crash; the message
//! is then taken as copied, and ends up in its destination once.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::imap::uidset::{MAX_SET_CHARS, Uid, UidSet};
use crate::imap::{FetchedItem, ImapError, Session};
use crate::state::Transfer;
use crate::vocab::MailboxName;

/// The fields a copy is recognised by, besides its size and arrival time.
pub(crate) const FIELDS: &str = "(UID RFC822.SIZE INTERNALDATE \
     BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM TO SUBJECT)])";

/// What makes two messages the same message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Signature {
    size: u32,
    internal_date: String,
    header: Vec<u8>,
}

impl Signature {
    /// The signature of a message fetched with [`FIELDS`], with its UID.
    pub(crate) fn of(item: &FetchedItem) -> Option<(u32, Signature)> {
        Some((
            item.uid()?,
            Signature {
                size: item.size()?,
                internal_date: item.internal_date_raw()?.to_owned(),
                header: item.header().unwrap_or_default().to_vec(),
            },
        ))
    }
}

impl Signature {
    /// The signature as text for the state database (`SIZE INTERNALDATE HASH`, the hash a
    /// 64-bit FNV-1a of the header fields): kept for a message about to be moved back by
    /// `imapsort undo`, so that its copy is recognised once the original is gone.
    pub(crate) fn digest(&self) -> String {
        let hash = self.header.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{} {} {hash:016x}", self.size, self.internal_date)
    }
}

/// The digests of `uids` in the selected mailbox (UIDs below `lowest` dropped).
pub(crate) async fn digests(
    session: &mut Session,
    uids: &UidSet,
    lowest: Option<u32>,
) -> Result<HashMap<u32, String>, ImapError> {
    Ok(fetch_signatures(session, uids, lowest)
        .await?
        .into_iter()
        .map(|(u, s)| (u, s.digest()))
        .collect())
}

/// An original whose copy into `destination` is to be looked for.
#[derive(Clone, Debug)]
pub(super) struct Wanted<'t> {
    /// The original's UID in the source.
    pub uid: u32,
    pub destination: MailboxName,
    /// The batch's transfer row for the destination (its fence, the copies reported).
    pub transfer: &'t Transfer,
    /// Copies are matched before moves: when identical originals of one batch were both
    /// copied and moved to one mailbox, a found message is the copy first.
    pub is_copy: bool,
}

/// A copy found: the destination's UIDVALIDITY (when the server says) and the copy's UID.
pub(super) type Found = HashMap<usize, (Option<u32>, u32)>;

/// For each of `wanted` (by index), its copy if one was found. `source` is selected when
/// called and again on return. `known` holds, per destination, the copies other batches
/// reported (UIDVALIDITY, UIDs): never taken for these.
pub(super) async fn copies(
    session: &mut Session,
    source: &MailboxName,
    wanted: &[Wanted<'_>],
    known: &super::Known,
) -> Result<Found, ImapError> {
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    let originals: UidSet = wanted.iter().filter_map(|w| Uid::new(w.uid)).collect();
    let signatures = fetch_signatures(session, &originals, None).await?;
    let mut by_destination: BTreeMap<&MailboxName, Vec<usize>> = BTreeMap::new();
    for (i, w) in wanted.iter().enumerate() {
        by_destination.entry(&w.destination).or_default().push(i);
    }
    for (destination, indices) in by_destination {
        let info = match session.examine(destination).await {
            Ok(info) => info,
            // Gone (deleted since): no copy is there.
            Err(e) if !e.is_connection_fatal() => continue,
            Err(e) => return Err(e),
        };
        let validity = info.uid_validity;
        // Copies the server reported: those UIDs, if they are still there.
        let mut reported: Vec<(usize, u32)> = Vec::new();
        let mut looked_for: Vec<(usize, u32)> = Vec::new();
        for &i in &indices {
            let w = &wanted[i];
            let t = w.transfer;
            let same_life = t.dest_uid_validity.is_none() || t.dest_uid_validity == validity;
            match t.copied.iter().find(|(s, _)| *s == w.uid) {
                Some(&(_, copy)) if same_life => reported.push((i, copy)),
                _ => {
                    // Below the fence is what was there before; a destination renumbered
                    // since (deleted and created again) holds only what came after.
                    let fence = match (t.dest_uid_next, t.dest_uid_validity) {
                        (Some(next), Some(v)) if Some(v) == validity => next,
                        (Some(next), None) => next,
                        _ => 1,
                    };
                    looked_for.push((i, fence));
                }
            }
        }
        let there: UidSet = reported.iter().filter_map(|&(_, c)| Uid::new(c)).collect();
        let present = search_within(session, &there).await?;
        let mut found_here: Vec<u32> = Vec::new();
        for (i, copy) in reported {
            if present.contains(&copy) {
                found.insert(i, (validity, copy));
                found_here.push(copy);
            }
        }
        if let Some(lowest) = looked_for.iter().map(|&(_, f)| f).min() {
            let mut excluded: HashSet<u32> = known
                .get(destination)
                .into_iter()
                .flatten()
                .filter(|(v, _)| v.is_none() || *v == validity)
                .map(|(_, u)| *u)
                .collect();
            excluded.extend(found_here);
            let arrived: UidSet = session
                .uid_search(&format!("UID {lowest}:*"))
                .await?
                .into_iter()
                .filter(|u| *u >= lowest && !excluded.contains(u))
                .filter_map(Uid::new)
                .collect();
            let candidates = fetch_signatures(session, &arrived, Some(lowest)).await?;
            let mut here = HashMap::new();
            matches(&looked_for, wanted, &signatures, &candidates, &mut here);
            found.extend(here.into_iter().map(|(i, copy)| (i, (validity, copy))));
        }
    }
    session.select(source).await?;
    Ok(found)
}

/// Gives each looked-for original (copies first) the lowest unclaimed candidate at or above
/// its fence with the same signature.
fn matches(
    looked_for: &[(usize, u32)],
    wanted: &[Wanted<'_>],
    originals: &HashMap<u32, Signature>,
    candidates: &HashMap<u32, Signature>,
    found: &mut HashMap<usize, u32>,
) {
    let mut by_signature: HashMap<&Signature, Vec<u32>> = HashMap::new();
    for (uid, sig) in candidates {
        by_signature.entry(sig).or_default().push(*uid);
    }
    for uids in by_signature.values_mut() {
        uids.sort_unstable();
    }
    let mut order: Vec<&(usize, u32)> = looked_for.iter().collect();
    order.sort_by_key(|(i, _)| (!wanted[*i].is_copy, wanted[*i].uid));
    let mut taken: HashSet<u32> = HashSet::new();
    for &&(i, fence) in &order {
        let Some(sig) = originals.get(&wanted[i].uid) else {
            continue;
        };
        let Some(uids) = by_signature.get(sig) else {
            continue;
        };
        if let Some(&copy) = uids.iter().find(|u| **u >= fence && !taken.contains(*u)) {
            taken.insert(copy);
            found.insert(i, copy);
        }
    }
}

/// The signatures of `uids` in the selected mailbox (UIDs below `lowest` dropped: `n:*`
/// answers with the highest UID even below `n`).
async fn fetch_signatures(
    session: &mut Session,
    uids: &UidSet,
    lowest: Option<u32>,
) -> Result<HashMap<u32, Signature>, ImapError> {
    let mut out = HashMap::new();
    for chunk in uids.chunks(MAX_SET_CHARS, u64::MAX) {
        for item in session.uid_fetch(&chunk.to_string(), FIELDS).await? {
            if let Some((uid, sig)) = Signature::of(&item)
                && Uid::new(uid).is_some_and(|u| chunk.contains(u))
                && lowest.is_none_or(|l| uid >= l)
            {
                out.insert(uid, sig);
            }
        }
    }
    Ok(out)
}

/// Which of `uids` are in the selected mailbox.
pub(crate) async fn search_within(
    session: &mut Session,
    uids: &UidSet,
) -> Result<HashSet<u32>, ImapError> {
    let mut out = HashSet::new();
    for chunk in uids.chunks(MAX_SET_CHARS, u64::MAX) {
        for u in session.uid_search(&format!("UID {chunk}")).await? {
            if Uid::new(u).is_some_and(|u| chunk.contains(u)) {
                out.insert(u);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Transfer;

    fn sig(size: u32, h: &str) -> Signature {
        Signature {
            size,
            internal_date: "02-Mar-2026 10:00:00 +0000".into(),
            header: h.as_bytes().to_vec(),
        }
    }

    #[test]
    fn identical_originals_get_as_many_copies_as_were_found_copies_first_and_above_fences() {
        let t = Transfer {
            id: 1,
            destination: MailboxName::new("A"),
            first_intent: crate::state::JournalId(1),
            last_intent: crate::state::JournalId(3),
            dest_uid_validity: Some(5),
            dest_uid_next: Some(10),
            copied: vec![],
        };
        let w = |uid, is_copy| Wanted {
            uid,
            destination: MailboxName::new("A"),
            transfer: &t,
            is_copy,
        };
        // 1 and 2 identical (no Message-ID), 3 different; 2 is a copy intent, 1 a move.
        let wanted = [w(1, false), w(2, true), w(3, false)];
        let originals: HashMap<u32, Signature> =
            [(1, sig(100, "s")), (2, sig(100, "s")), (3, sig(200, "t"))].into();
        // One message like 1/2 at 12 (above the fence), one at 4 (below: was there before).
        let candidates: HashMap<u32, Signature> = [(12, sig(100, "s")), (4, sig(200, "t"))].into();
        let looked_for = [(0, 10), (1, 10), (2, 10)];
        let mut found = HashMap::new();
        matches(&looked_for, &wanted, &originals, &candidates, &mut found);
        assert_eq!(found, HashMap::from([(1, 12)]));
    }
}
