//! Where the messages to take back are now, exactly — or why they cannot be told.
//!
//! Per mailbox: `EXAMINE` (read-only), the UIDs expected there (the server's COPYUID, or the
//! UID the rules acted on) checked under the mailbox's UIDVALIDITY; where no UID is known, a
//! `UID SEARCH HEADER Message-ID` among what arrived since the action's fence, accepted only
//! when it finds exactly one message nobody else claims. Then one `UID FETCH` of them all
//! (flags, size, arrival time, identifying headers): a message gone, marked `\Deleted`, or
//! with another Message-ID than the history's is not the one and is left alone. What is found
//! comes with its signature, which the undo step keeps (crate::undo::putback).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::imap::auth::quote;
use crate::imap::uidset::{MAX_SET_CHARS, Uid, UidSet};
use crate::imap::{ImapError, Session};
use crate::recover::find::{FIELDS, Signature};
use crate::rules::{MessageFacts, MessageView};
use crate::vocab::MailboxName;

/// A message to find, named by the caller's key.
#[derive(Clone, Debug)]
pub struct Want<K> {
    pub key: K,
    pub mailbox: MailboxName,
    pub expect: Expect,
    /// The history's Message-ID (`None`: the message has none).
    pub message_id: Option<String>,
}

/// What is known of where the message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// This UID, while the mailbox keeps this UIDVALIDITY.
    Uid { uid_validity: u32, uid: u32 },
    /// No UID: found by Message-ID, among UIDs from `fence` on when the fence is known (and
    /// the mailbox kept its UIDVALIDITY since).
    Search { fence: Option<(Option<u32>, u32)> },
}

/// A message found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub uid_validity: u32,
    pub uid: u32,
    /// Its signature (see `crate::recover::find::Signature::digest`).
    pub digest: String,
}

/// Finds every wanted message (see the module doc): per key, where it is, or why it is
/// not taken back. Leaves the last mailbox examined selected (read-only).
pub async fn locate<K: Clone + Eq + std::hash::Hash>(
    session: &mut Session,
    wants: &[Want<K>],
) -> Result<HashMap<K, Result<Found, String>>, ImapError> {
    let mut by_mailbox: BTreeMap<&MailboxName, Vec<&Want<K>>> = BTreeMap::new();
    for w in wants {
        by_mailbox.entry(&w.mailbox).or_default().push(w);
    }
    let mut out = HashMap::new();
    for (mailbox, wants) in by_mailbox {
        let info = match session.examine(mailbox).await {
            Ok(info) => info,
            Err(e) if e.is_connection_fatal() => return Err(e),
            Err(e) => {
                for w in wants {
                    let why =
                        format!("{mailbox} cannot be opened ({e}): deleted or renamed since?");
                    out.insert(w.key.clone(), Err(why));
                }
                continue;
            }
        };
        let validity = info.uid_validity.unwrap_or(0);
        // First the UIDs known, so that a search does not take one of them for its own.
        let mut at: Vec<(&Want<K>, u32)> = Vec::new();
        let mut searched: Vec<&Want<K>> = Vec::new();
        for w in &wants {
            match w.expect {
                Expect::Uid { uid_validity, uid } if uid_validity == validity => at.push((w, uid)),
                Expect::Uid { .. } => {
                    let why = format!(
                        "{mailbox} was deleted or recreated since (its UIDVALIDITY changed): \
                         the message is no longer where the action left it"
                    );
                    out.insert(w.key.clone(), Err(why));
                }
                Expect::Search { .. } => searched.push(w),
            }
        }
        let mut claimed: HashSet<u32> = at.iter().map(|(_, u)| *u).collect();
        for w in searched {
            match search(session, mailbox, w, validity, &claimed).await? {
                Ok(uid) => {
                    claimed.insert(uid);
                    at.push((w, uid));
                }
                Err(why) => {
                    out.insert(w.key.clone(), Err(why));
                }
            }
        }
        let uids: UidSet = at.iter().filter_map(|(_, u)| Uid::new(*u)).collect();
        let seen = fetch(session, &uids).await?;
        for (w, uid) in at {
            let verdict = match seen.get(&uid) {
                None => Err(format!(
                    "no longer in {mailbox} (moved or deleted since): left alone"
                )),
                Some(m) if m.deleted => Err(format!(
                    "marked \\Deleted in {mailbox} (deleted since): left alone"
                )),
                Some(m) if m.message_id != w.message_id => Err(format!(
                    "the message under its UID in {mailbox} is not the same message: left alone"
                )),
                Some(m) => Ok(Found {
                    uid_validity: validity,
                    uid,
                    digest: m.digest.clone(),
                }),
            };
            out.insert(w.key.clone(), verdict);
        }
    }
    Ok(out)
}

/// The one message with `w`'s Message-ID above its fence, not claimed by another.
async fn search<K>(
    session: &mut Session,
    mailbox: &MailboxName,
    w: &Want<K>,
    validity: u32,
    claimed: &HashSet<u32>,
) -> Result<Result<u32, String>, ImapError> {
    let Some(id) = &w.message_id else {
        return Ok(Err(
            "the server did not say where the action left it, and it has no Message-ID: it \
             cannot be told apart from other messages, so it is left alone"
                .into(),
        ));
    };
    let Some(quoted) = quote(id).filter(|q| q.is_ascii()) else {
        return Ok(Err(format!(
            "its Message-ID {id:?} cannot be searched for: left alone"
        )));
    };
    let lowest = match w.expect {
        Expect::Search {
            fence: Some((v, next)),
        } if v.is_none_or(|v| v == validity) => next,
        _ => 1,
    };
    let hits: Vec<u32> = session
        .uid_search(&format!("UID {lowest}:* HEADER Message-ID {quoted}"))
        .await?
        .into_iter()
        .filter(|u| *u >= lowest && !claimed.contains(u))
        .collect();
    Ok(match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!(
            "no message with its Message-ID in {mailbox} (moved or deleted since): left alone"
        )),
        many => Err(format!(
            "{} messages in {mailbox} have its Message-ID and the server did not say which \
             is the one: it cannot be told apart from the others, so it is left alone",
            many.len()
        )),
    })
}

/// What the FETCH says of one message.
struct Seen {
    deleted: bool,
    message_id: Option<String>,
    digest: String,
}

async fn fetch(session: &mut Session, uids: &UidSet) -> Result<HashMap<u32, Seen>, ImapError> {
    let items = FIELDS.replacen("(UID ", "(UID FLAGS ", 1);
    let mut out = HashMap::new();
    for chunk in uids.chunks(MAX_SET_CHARS, u64::MAX) {
        for item in session.uid_fetch(&chunk.to_string(), &items).await? {
            let Some((uid, signature)) = Signature::of(&item) else {
                continue;
            };
            if !Uid::new(uid).is_some_and(|u| chunk.contains(u)) {
                continue;
            }
            let deleted = item
                .flags()
                .unwrap_or_default()
                .iter()
                .any(|f| f.eq_ignore_ascii_case("\\Deleted"));
            let view =
                MessageView::parse(item.header().unwrap_or_default(), MessageFacts::default());
            out.insert(
                uid,
                Seen {
                    deleted,
                    message_id: view.message_id().map(str::to_owned),
                    digest: signature.digest(),
                },
            );
        }
    }
    Ok(out)
}
