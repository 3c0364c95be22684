//! FETCH of only what the rules need, and turning each answer into a [`MessageView`].
//!
//! [`FetchSpec::new`] reads [`FetchNeeds`] and builds the item list:
//!
//! - always `UID`; `FLAGS`, `RFC822.SIZE` and `INTERNALDATE` only when a rule needs them
//!   (flag and keyword conditions or flag actions, size conditions, age conditions or date
//!   templates): the view of a message leaves out what was not fetched;
//! - `BODY.PEEK[HEADER.FIELDS (...)]` when the rules name a finite set of headers, else
//!   `BODY.PEEK[HEADER]`;
//! - `BODYSTRUCTURE` only when some rule tests attachments;
//! - for `body` conditions the message itself, bounded: `BODY.PEEK[]<0.262144>` (the first
//!   256 KiB; headers included, so the MIME structure can be decoded). Text past that bound is
//!   not seen by `body` conditions.
//!
//! Every section is fetched with `.PEEK`, so fetching never sets `\Seen`.

use std::fmt::Write as _;

use async_imap::imap_proto::{BodyStructure, ContentDisposition, ContentType};

use crate::imap::item::{FetchedItem, merge_items};
use crate::imap::uidset::{Uid, UidSet};
use crate::rules::{Attachment, FetchNeeds, MessageFacts, MessageView};

/// How many bytes of a message are fetched for `body` conditions.
pub const BODY_LIMIT: u32 = 256 * 1024;

/// How many messages one `UID FETCH` asks for: big enough to amortise the round trip, small
/// enough to keep memory bounded (a few MB with headers only).
pub const FETCH_CHUNK: u64 = 500;

/// The FETCH items for one rule set, and how to read the answers.
#[derive(Clone, Debug)]
pub struct FetchSpec {
    /// What the rules asked for.
    needs: FetchNeeds,
    /// The parenthesised item list sent after the UID set.
    items: String,
    /// Its `BODY.PEEK[HEADER.FIELDS (...)]` item, when the rules name their headers.
    header_fields: Option<String>,
}

impl FetchSpec {
    pub fn new(needs: &FetchNeeds) -> FetchSpec {
        let mut items = String::from("(UID");
        let mut header_fields = None;
        // Each only when a rule needs it: on Dovecot's maildir, INTERNALDATE and RFC822.SIZE
        // can cost a stat or a read of every message that the index has not cached.
        if needs.flags {
            items.push_str(" FLAGS");
        }
        if needs.size {
            items.push_str(" RFC822.SIZE");
        }
        if needs.received {
            items.push_str(" INTERNALDATE");
        }
        if needs.body {
            // The partial message includes the header block, so no header section is needed.
            let _ = write!(items, " BODY.PEEK[]<0.{BODY_LIMIT}>");
        } else {
            match &needs.headers {
                Some(names) => {
                    let mut section = String::from("BODY.PEEK[HEADER.FIELDS (");
                    for (i, name) in names.iter().enumerate() {
                        if i > 0 {
                            section.push(' ');
                        }
                        push_astring(&mut section, name);
                    }
                    section.push_str(")]");
                    items.push(' ');
                    items.push_str(&section);
                    header_fields = Some(section);
                }
                None => items.push_str(" BODY.PEEK[HEADER]"),
            }
        }
        if needs.attachments {
            items.push_str(" BODYSTRUCTURE");
        }
        items.push(')');
        FetchSpec {
            needs: needs.clone(),
            items,
            header_fields,
        }
    }

    /// The `BODY.PEEK[HEADER.FIELDS (...)]` item alone, when the rules name a finite set of
    /// headers (and no `body` condition fetches the message instead).
    pub fn header_fields(&self) -> Option<&str> {
        self.header_fields.as_deref()
    }

    /// The item list, e.g. `(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (From)])`.
    pub fn items(&self) -> &str {
        &self.items
    }

    /// The views of the messages in `asked`, in the order of `items`: the answers to the
    /// command lines of one chunk, merged by UID again across lines (see
    /// [`Session::uid_fetch`](crate::imap::Session::uid_fetch) for one answer). Items of other
    /// messages (unsolicited flag updates) are ignored; an asked-for message whose answer
    /// lacks an item is left out with a warning, as [`view`](Self::view) would not evaluate it.
    /// Each message is viewed once.
    pub fn views(&self, items: Vec<FetchedItem>, asked: &UidSet) -> Vec<(Uid, MessageView)> {
        let items = merge_items(items);
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let Some(uid) = item.uid().and_then(Uid::new) else {
                continue;
            };
            if !asked.contains(uid) {
                continue;
            }
            if let Some(missing) = self.missing(item) {
                tracing::warn!(
                    uid = uid.get(),
                    missing,
                    "the server's FETCH answer lacks an item asked for; the message is not evaluated"
                );
                continue;
            }
            out.extend(self.view(item));
        }
        out
    }

    /// One message's FETCH answer as a view, with its UID. `None` for an answer without a UID,
    /// and for one that lacks an item the spec asked for (an unsolicited flag update of a
    /// message, or a server that left something out): evaluating it would judge a message by
    /// data it does not have.
    pub fn view(&self, fetch: &FetchedItem) -> Option<(Uid, MessageView)> {
        let uid = Uid::new(fetch.uid()?)?;
        if self.missing(fetch).is_some() {
            return None;
        }
        let facts = MessageFacts {
            flags: fetch
                .flags()
                .unwrap_or_default()
                .into_iter()
                .filter_map(flag_name)
                .collect(),
            size: u64::from(fetch.size().unwrap_or(0)),
            received: fetch.internal_date(),
        };
        let raw = if self.needs.body {
            fetch.body()
        } else {
            fetch.header()
        };
        let mut view = MessageView::parse(raw.unwrap_or_default(), facts);
        if self.needs.attachments
            && let Some(bs) = fetch.bodystructure()
        {
            view.set_attachments(attachments(bs));
        }
        Some((uid, view))
    }
}

impl FetchSpec {
    /// The first item of [`items`](Self::items) the answer does not hold.
    fn missing(&self, fetch: &FetchedItem) -> Option<&'static str> {
        if self.needs.flags && fetch.flags().is_none() {
            return Some("FLAGS");
        }
        if self.needs.size && fetch.size().is_none() {
            return Some("RFC822.SIZE");
        }
        if self.needs.received && fetch.internal_date_raw().is_none() {
            return Some("INTERNALDATE");
        }
        if self.needs.body {
            if fetch.body().is_none() {
                return Some("BODY[]");
            }
        } else if fetch.header().is_none() {
            return Some("BODY[HEADER]");
        }
        if self.needs.attachments && fetch.bodystructure().is_none() {
            return Some("BODYSTRUCTURE");
        }
        None
    }
}

/// A FETCH astring: an atom when it is one, else a quoted string.
fn push_astring(out: &mut String, s: &str) {
    let atom = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        });
    if atom {
        out.push_str(s);
    } else {
        out.push('"');
        for c in s.chars().filter(|c| !c.is_control()) {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
}

/// The IMAP spelling of a flag: system flags in their canonical case (servers may send any
/// case), keywords as sent. `\*` is not a message flag.
fn flag_name(flag: String) -> Option<String> {
    const SYSTEM: [&str; 6] = [
        "\\Seen",
        "\\Answered",
        "\\Flagged",
        "\\Deleted",
        "\\Draft",
        "\\Recent",
    ];
    if flag == "\\*" {
        return None;
    }
    Some(
        match SYSTEM.iter().find(|s| s.eq_ignore_ascii_case(&flag)) {
            Some(s) => (*s).to_owned(),
            None => flag,
        },
    )
}

/// The attachments a BODYSTRUCTURE describes, as the rules engine sees them in a full
/// message: every non-multipart part (an attached message counts as one part; its inside is not
/// looked into) with a disposition of `attachment` or a file name.
pub fn attachments(bs: &BodyStructure<'_>) -> Vec<Attachment> {
    let mut out = Vec::new();
    collect(bs, &mut out);
    out
}

fn collect(bs: &BodyStructure<'_>, out: &mut Vec<Attachment>) {
    let common = match bs {
        BodyStructure::Multipart { bodies, .. } => {
            for b in bodies {
                collect(b, out);
            }
            return;
        }
        BodyStructure::Basic { common, .. }
        | BodyStructure::Text { common, .. }
        | BodyStructure::Message { common, .. } => common,
    };
    let is_attachment = common
        .disposition
        .as_ref()
        .is_some_and(|d| d.ty.eq_ignore_ascii_case("attachment"));
    let filename = part_filename(&common.ty, common.disposition.as_ref());
    if is_attachment || filename.is_some() {
        out.push(Attachment { filename });
    }
}

/// The decoded file name of a part: Content-Disposition `filename`, else Content-Type `name`.
///
/// Servers pass parameters through as the message wrote them (RFC 2231 `filename*0*=...`
/// pieces, RFC 2047 encoded words). To decode them exactly as a full parse of the message
/// would, the parameters are written back into a small MIME header and read by the same
/// parser the rules engine uses.
fn part_filename(
    ty: &ContentType<'_>,
    disposition: Option<&ContentDisposition<'_>>,
) -> Option<String> {
    let relevant =
        |params: &Option<Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)>>,
         base: &str| {
            params
                .iter()
                .flatten()
                .filter(|(k, _)| {
                    let k = k.to_ascii_lowercase();
                    k == base
                        || k.strip_prefix(base)
                            .is_some_and(|rest| rest.starts_with('*'))
                })
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
    let names = relevant(&ty.params, "name");
    let filenames = disposition
        .map(|d| relevant(&d.params, "filename"))
        .unwrap_or_default();
    if names.is_empty() && filenames.is_empty() {
        return None;
    }
    let mut header = String::new();
    let _ = write!(
        header,
        "Content-Type: {}/{}",
        token(&ty.ty),
        token(&ty.subtype)
    );
    for (k, v) in &names {
        push_param(&mut header, k, v);
    }
    header.push_str("\r\n");
    if let Some(d) = disposition {
        let _ = write!(header, "Content-Disposition: {}", token(&d.ty));
        for (k, v) in &filenames {
            push_param(&mut header, k, v);
        }
        header.push_str("\r\n");
    }
    header.push_str("\r\n");
    let message = mail_parser::MessageParser::new().parse(header.as_bytes())?;
    use mail_parser::MimeHeaders as _;
    message
        .parts
        .first()?
        .attachment_name()
        .map(str::to_owned)
        .filter(|n| !n.trim().is_empty())
}

/// A MIME token (type, subtype, disposition): anything else becomes `x`.
fn token(s: &str) -> &str {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-+._".contains(&b))
    {
        s
    } else {
        "x"
    }
}

fn push_param(header: &mut String, key: &str, value: &str) {
    let key: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '-' | '_' | '.'))
        .collect();
    // An RFC 2231 extended value (`UTF-8''%E2%82%AC.pdf`) is written bare, as in the message.
    let bare = key.ends_with('*')
        && !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b));
    if bare {
        let _ = write!(header, ";\r\n {key}={value}");
        return;
    }
    let _ = write!(header, ";\r\n {key}=\"");
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            header.push('\\');
        }
        header.push(c);
    }
    header.push('"');
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
