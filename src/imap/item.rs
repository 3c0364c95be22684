//! One message's FETCH response, owned, with accessors for what the rules need.

use async_imap::imap_proto::{AttributeValue, BodyStructure, MessageSection, SectionPath};

/// The data items of one `* n FETCH (...)` response.
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

    /// The text after the header: `BODY[TEXT]` or `RFC822.TEXT`.
    pub fn text(&self) -> Option<&[u8]> {
        self.attributes.iter().find_map(|a| match a {
            AttributeValue::BodySection {
                section: Some(SectionPath::Full(MessageSection::Text)),
                data: Some(d),
                ..
            } => Some(d.as_ref()),
            AttributeValue::Rfc822Text(Some(d)) => Some(d.as_ref()),
            _ => None,
        })
    }

    /// Any body section by path (`BODY[1.2]`, `BODY[1.MIME]` ...).
    pub fn section(&self, path: &SectionPath) -> Option<&[u8]> {
        self.attributes.iter().find_map(|a| match a {
            AttributeValue::BodySection {
                section: Some(p),
                data: Some(d),
                ..
            } if p == path => Some(d.as_ref()),
            _ => None,
        })
    }

    pub fn bodystructure(&self) -> Option<&BodyStructure<'static>> {
        self.attributes.iter().find_map(|a| match a {
            AttributeValue::BodyStructure(b) => Some(b),
            _ => None,
        })
    }

    /// X-GM-LABELS (Gmail).
    pub fn gmail_labels(&self) -> Option<Vec<String>> {
        self.attributes.iter().find_map(|a| match a {
            AttributeValue::GmailLabels(l) => Some(l.iter().map(|s| s.to_string()).collect()),
            _ => None,
        })
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
