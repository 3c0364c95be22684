//! One message's FETCH data, owned, with accessors for what the rules need; and
//! [`merge_by_uid`], which makes one item per message out of a command's FETCH responses.

use std::collections::HashMap;

use async_imap::imap_proto::{
    AttributeValue, BodyStructure, MessageSection, Response, SectionPath,
};

/// The data items of one message: one `* n FETCH (...)` response, or several merged.
#[derive(Debug)]
pub struct FetchedItem {
    /// Message sequence number (changes with expunges; use `uid()`).
    pub seq: u32,
    /// Everything the server sent, as imap-proto parsed it.
    pub attributes: Vec<AttributeValue<'static>>,
}

impl FetchedItem {
    pub fn uid(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            AttributeValue::Uid(u) => Some(*u),
            _ => None,
        })
    }

    /// The flags as sent (`\Seen`, `$Junk`, `work`); `None` when FLAGS was not fetched.
    pub fn flags(&self) -> Option<Vec<String>> {
        self.attributes.iter().find_map(|a| match a {
            AttributeValue::Flags(f) => Some(f.iter().map(|s| s.to_string()).collect()),
            _ => None,
        })
    }

    /// RFC822.SIZE.
    pub fn size(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            AttributeValue::Rfc822Size(n) => Some(*n),
            _ => None,
        })
    }

    /// INTERNALDATE as sent, e.g. `17-Jul-1996 02:44:25 -0700`.
    pub fn internal_date_raw(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            AttributeValue::InternalDate(d) => Some(d.as_ref()),
            _ => None,
        })
    }

    /// INTERNALDATE parsed, keeping the server's offset (templates use its local date).
    pub fn internal_date(&self) -> Option<jiff::Zoned> {
        parse_internal_date(self.internal_date_raw()?)
    }

    /// The header: `BODY[HEADER]`, `BODY[HEADER.FIELDS (...)]` or `RFC822.HEADER`.
    pub fn header(&self) -> Option<&[u8]> {
        self.attributes.iter().find_map(|a| match a {
            AttributeValue::BodySection {
                section: Some(SectionPath::Full(MessageSection::Header)),
                data: Some(d),
                ..
            } => Some(d.as_ref()),
            AttributeValue::Rfc822Header(Some(d)) => Some(d.as_ref()),
            _ => None,
        })
    }

    /// The whole message: `BODY[]` or `RFC822`.
    pub fn body(&self) -> Option<&[u8]> {
        self.attributes.iter().find_map(|a| match a {
            AttributeValue::BodySection {
                section: None,
                data: Some(d),
                ..
            } => Some(d.as_ref()),
            AttributeValue::Rfc822(Some(d)) => Some(d.as_ref()),
            _ => None,
        })
    }

    pub fn bodystructure(&self) -> Option<&BodyStructure<'static>> {
        self.attributes.iter().find_map(|a| match a {
            AttributeValue::BodyStructure(b) => Some(b),
            _ => None,
        })
    }
}

/// One item per message out of a command's untagged responses, in the order the messages
/// first appear; everything that is not a FETCH is left out.
///
/// RFC 3501 7.4.2 lets a server split one message's items over several FETCH responses, and
/// another client's flag changes arrive as unsolicited `* n FETCH (FLAGS (...))`, with or
/// without a UID, anywhere in the answer. So responses are merged by UID, a later data item
/// replacing an earlier one of the same kind (a later FLAGS is the newer state). A response
/// without a UID is placed by its sequence number when another response of the same answer
/// pairs that number with a UID and no EXPUNGE or VANISHED in the answer has moved the numbers;
/// otherwise it cannot be placed safely and is dropped. Messages the command did not ask for
/// may be among the items (an unsolicited update with a UID): callers match by UID, and check
/// that an item holds what they asked for.
pub(crate) fn merge_by_uid(responses: Vec<Response<'static>>) -> Vec<FetchedItem> {
    let without_uid = |r: &Response<'_>| matches!(r, Response::Fetch(_, a) if uid_in(a).is_none());
    let renumbered =
        |r: &Response<'_>| matches!(r, Response::Expunge(_) | Response::Vanished { .. });
    // Usually every response carries its UID and no map is needed.
    let mut uid_of_seq: HashMap<u32, u32> = HashMap::new();
    if responses.iter().any(without_uid) && !responses.iter().any(renumbered) {
        for r in &responses {
            if let Response::Fetch(seq, attributes) = r
                && let Some(uid) = uid_in(attributes)
            {
                uid_of_seq.insert(*seq, uid);
            }
        }
    }
    let mut items: Vec<FetchedItem> = Vec::new();
    let mut index_of_uid: HashMap<u32, usize> = HashMap::new();
    for r in responses {
        let Response::Fetch(seq, attributes) = r else {
            continue;
        };
        let explicit = uid_in(&attributes);
        let Some(uid) = explicit.or_else(|| uid_of_seq.get(&seq).copied()) else {
            continue;
        };
        if let Some(&i) = index_of_uid.get(&uid) {
            items[i].absorb(attributes);
            continue;
        }
        index_of_uid.insert(uid, items.len());
        let mut item = FetchedItem { seq, attributes };
        if explicit.is_none() {
            // Placed by its sequence number: the UID is made explicit.
            item.attributes.push(AttributeValue::Uid(uid));
        }
        items.push(item);
    }
    items
}

/// Items of several answers (the command lines of one pipelined chunk) as one item per
/// message: items with the same UID are merged as [`merge_by_uid`] merges responses, in the
/// order given. A server running pipelined commands at once may answer a message of one line
/// while reading another, and a flag update may come in any of them.
pub(crate) fn merge_items(items: Vec<FetchedItem>) -> Vec<FetchedItem> {
    let mut out: Vec<FetchedItem> = Vec::with_capacity(items.len());
    let mut index_of_uid: HashMap<u32, usize> = HashMap::with_capacity(items.len());
    for item in items {
        let Some(uid) = item.uid() else {
            continue;
        };
        match index_of_uid.get(&uid) {
            Some(&i) => out[i].absorb(item.attributes),
            None => {
                index_of_uid.insert(uid, out.len());
                out.push(item);
            }
        }
    }
    out
}

fn uid_in(attributes: &[AttributeValue<'_>]) -> Option<u32> {
    attributes.iter().find_map(|a| match a {
        AttributeValue::Uid(u) => Some(*u),
        _ => None,
    })
}

impl FetchedItem {
    /// Take in a later response's data items: each replaces an earlier one of the same kind.
    fn absorb(&mut self, later: Vec<AttributeValue<'static>>) {
        for a in later {
            self.attributes.retain(|old| !same_item(old, &a));
            self.attributes.push(a);
        }
    }
}

/// Whether two data items are the same item (so the later replaces the earlier): the same
/// kind, and for body sections the same section and partial offset.
fn same_item(a: &AttributeValue<'_>, b: &AttributeValue<'_>) -> bool {
    match (a, b) {
        (
            AttributeValue::BodySection {
                section: sa,
                index: ia,
                ..
            },
            AttributeValue::BodySection {
                section: sb,
                index: ib,
                ..
            },
        ) => sa == sb && ia == ib,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// Parse `date-time` of RFC 3501 (`" 7-Jul-2026 02:44:25 -0700"`, day may be space-padded).
pub fn parse_internal_date(raw: &str) -> Option<jiff::Zoned> {
    let s = raw.trim();
    jiff::fmt::strtime::parse("%d-%b-%Y %H:%M:%S %z", s)
        .ok()?
        .to_zoned()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_dates_parse_with_their_offset() {
        for (raw, want) in [
            (
                "17-Jul-1996 02:44:25 -0700",
                Some("1996-07-17T02:44:25-07:00"),
            ),
            (
                " 7-Jul-2026 23:00:00 +0200",
                Some("2026-07-07T23:00:00+02:00"),
            ),
            ("garbage", None),
        ] {
            let got = parse_internal_date(raw).map(|z| {
                z.timestamp()
                    .to_zoned(z.time_zone().clone())
                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                    .to_string()
            });
            assert_eq!(got.as_deref(), want, "{raw:?}");
        }
    }
}
