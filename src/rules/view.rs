//! [`MessageView`]: one message, decoded once, in the shape the matchers want.
//!
//! Built from a full message or just its header block. Header values are unfolded and
//! RFC 2047-decoded up front; their lower-cased forms are computed on first use and cached,
//! so a rule set folds each haystack at most once per message.

use std::sync::{LazyLock, OnceLock};

use mail_parser::{
    Address, HeaderName, HeaderValue, MessageParser, MimeHeaders, PartType, parsers::MessageStream,
};

/// What the IMAP layer knows about a message besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct MessageFacts {
    /// Flags and keywords as the server reported them (`\Seen`, `$Junk`, `work`).
    pub flags: Vec<String>,
    /// RFC822.SIZE, for `size` conditions.
    pub size: u64,
    /// INTERNALDATE with its offset: age conditions and the `{year}`… template variables.
    pub received: Option<jiff::Zoned>,
}

/// An attachment as far as the rules care: its decoded file name, if it has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attachment {
    /// Content-Disposition `filename` (RFC 2231/2047 decoded), else Content-Type `name`.
    pub filename: Option<String>,
}

/// A text and its lower-cased form, folded lazily once.
#[derive(Debug)]
pub(crate) struct Folded {
    /// The decoded text as the message wrote it (regexes and captures see this).
    text: Box<str>,
    /// `None` inside: the text is already lower case, so no copy is kept.
    lower: OnceLock<Option<Box<str>>>,
}

impl Folded {
    pub(crate) fn new(text: impl Into<Box<str>>) -> Folded {
        Folded {
            text: text.into(),
            lower: OnceLock::new(),
        }
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The Unicode lower-case form (computed on first call).
    pub(crate) fn lower(&self) -> &str {
        let lower = self.lower.get_or_init(|| {
            let t = &*self.text;
            if t.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
                None
            } else {
                Some(t.to_lowercase().into_boxed_str())
            }
        });
        lower.as_deref().unwrap_or(&self.text)
    }
}

/// One instance of a header: places in the view's copy of the header block, and the
/// decoded value, computed on first use (most headers are never read by any rule).
#[derive(Debug)]
pub(crate) struct HeaderField {
    /// The name's bytes in `raw`.
    name: (u32, u32),
    /// The value's bytes in `raw` (after the colon, up to and including the line end).
    value_at: (u32, u32),
    /// Unfolded and decoded; `None` inside when the bytes could not be decoded.
    value: OnceLock<Option<Folded>>,
}
/// One address of an address header.
#[derive(Debug)]
pub(crate) struct AddressEntry {
    /// Lower-cased `local@domain` (address matchers see this).
    pub(crate) address: Box<str>,
    /// Decoded display name, when there is one.
    pub(crate) name: Option<Folded>,
}

impl AddressEntry {
    /// The part after the last `@` (empty when there is none).
    pub(crate) fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or_default()
    }
}

/// The addresses of every instance of one address header.
#[derive(Debug, Default)]
pub(crate) struct AddressList {
    /// Instances of the header (present even when empty or unparsable).
    pub(crate) count: u32,
    pub(crate) addrs: Vec<AddressEntry>,
}

/// Address headers with dedicated slots, in [`AddressSlot`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AddressSlot {
    From = 0,
    Sender = 1,
    ReplyTo = 2,
    To = 3,
    Cc = 4,
    Bcc = 5,
}

/// System flags as bits, for O(1) flag conditions.
pub(crate) const FLAG_SEEN: u8 = 1;
pub(crate) const FLAG_FLAGGED: u8 = 2;
pub(crate) const FLAG_ANSWERED: u8 = 4;
pub(crate) const FLAG_DRAFT: u8 = 8;

/// One message, decoded for rule evaluation. Built once per message; cheap to evaluate
/// many rules against.
#[derive(Debug, Default)]
pub struct MessageView {
    /// A copy of the top-level header block: header values are decoded from it on demand.
    raw: Box<[u8]>,
    /// Every header instance in message order.
    headers: Vec<HeaderField>,
    /// (hash of lower-case name, index into `headers`), sorted: lookup without hashing at
    /// evaluation time, since rules carry their names' hashes.
    index: Vec<(u64, u32)>,
    /// A bit per header name present (bit `hash >> 57`): most header conditions name a
    /// header the message lacks, and this answers them without touching `index`.
    names: u128,
    /// Indices of the Subject instances (the most used header gets a direct slot).
    subject: Vec<u32>,
    /// The first Subject's decoded value, kept in the view itself: the header rules read
    /// most, reached without following two pointers (`subject`, then `headers`).
    first_subject: OnceLock<Option<Folded>>,
    /// From, Sender, Reply-To, To, Cc, Bcc.
    pub(crate) addresses: [AddressList; 6],
    /// List-Id identifiers (inside `<>`, else the trimmed value), one per decodable instance.
    pub(crate) list_ids: Vec<Folded>,
    /// Instances of List-Id, decodable or not (for `exists`).
    pub(crate) list_id_count: u32,
    /// The Date header, with the offset it was written in.
    date: Option<jiff::Zoned>,
    /// Message-ID as written (trimmed, with its angle brackets).
    message_id: Option<String>,
    /// Lower-cased flags and keywords.
    pub(crate) flags_lower: Vec<Box<str>>,
    /// `\Seen` etc. as bits.
    pub(crate) system_flags: u8,
    pub(crate) size: u64,
    pub(crate) received: Option<jiff::Zoned>,
    /// Attachment file names (`None` for an attachment without a name).
    pub(crate) attachments: Vec<Option<Folded>>,
    /// The decoded body text (text/plain, else visible text of text/html).
    pub(crate) body: Option<Folded>,
}

/// FNV-1a over the lower-cased name; rules hash their header names the same way at compile
/// time.
pub(crate) fn name_hash(lower_name: &str) -> u64 {
    name_hash_bytes(lower_name.as_bytes())
}

/// The bit of [`MessageView::names`] for a name hash.
fn name_bit(hash: u64) -> u128 {
    1 << (hash >> 57)
}

fn name_hash_bytes(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h ^= u64::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Only what the view reads is parsed structurally; everything else is skipped by the
/// parser and decoded here as unstructured text.
static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .header_address(HeaderName::From)
        .header_address(HeaderName::Sender)
        .header_address(HeaderName::ReplyTo)
        .header_address(HeaderName::To)
        .header_address(HeaderName::Cc)
        .header_address(HeaderName::Bcc)
        .header_date(HeaderName::Date)
        .header_content_type(HeaderName::ContentType)
        .header_content_type(HeaderName::ContentDisposition)
        .header_text(HeaderName::ContentTransferEncoding)
        .default_header_ignore()
});

/// Unfold and decode one raw header value. `None` when the bytes are not UTF-8 (8-bit junk)
/// or an encoded word decoded to garbage.
pub(crate) fn decode_unstructured(raw: &[u8]) -> Option<String> {
    let Ok(text) = std::str::from_utf8(raw) else {
        return None;
    };
    // Fast path: one line, no encoded words: the trimmed text is the value.
    let body = text.trim_end_matches(['\r', '\n']);
    if !body.contains('\n') && !body.contains("=?") {
        return Some(body.trim_matches([' ', '\t', '\r']).to_owned());
    }
    let mut with_nl;
    let raw = if raw.ends_with(b"\n") {
        raw
    } else {
        with_nl = Vec::with_capacity(raw.len() + 1);
        with_nl.extend_from_slice(raw);
        with_nl.push(b'\n');
        &with_nl[..]
    };
    let text = match MessageStream::new(raw).parse_unstructured() {
        HeaderValue::Text(t) => t.into_owned(),
        _ => String::new(),
    };
    if text.contains(char::REPLACEMENT_CHARACTER)
        && !String::from_utf8_lossy(raw).contains(char::REPLACEMENT_CHARACTER)
    {
        return None;
    }
    Some(text)
}

fn trim_end_len(b: &[u8]) -> usize {
    b.iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |p| p + 1)
}

/// The List-Id identifier: inside `<>`, else the whole trimmed value.
pub(crate) fn list_identifier(value: &str) -> &str {
    if let Some(open) = value.find('<')
        && let Some(len) = value[open + 1..].find('>')
    {
        return value[open + 1..open + 1 + len].trim();
    }
    value.trim()
}

impl MessageView {
    /// Build the view. `raw` is a full message or just its header block. Never panics,
    /// whatever the bytes.
    pub fn parse(raw: &[u8], facts: MessageFacts) -> MessageView {
        let mut view = MessageView {
            size: facts.size,
            received: facts.received,
            ..MessageView::default()
        };
        view.set_flags(&facts.flags);
        let Some(message) = PARSER.parse(raw) else {
            return view;
        };
        let Some(root) = message.parts.first() else {
            return view;
        };
        let block_end = root
            .headers
            .iter()
            .map(|h| h.offset_end as usize)
            .max()
            .unwrap_or(0)
            .min(raw.len());
        view.raw = raw[..block_end].into();
        view.headers.reserve(root.headers.len());
        for header in &root.headers {
            let idx = view.headers.len() as u32;
            let start = (header.offset_start as usize).min(block_end);
            let end = (header.offset_end as usize).clamp(start, block_end);
            let name_start = (header.offset_field as usize).min(start);
            let name_bytes = &raw[name_start..start];
            let name_len = name_bytes
                .iter()
                .position(|&b| b == b':')
                .unwrap_or(name_bytes.len());
            let name_end = name_start + trim_end_len(&name_bytes[..name_len]);
            let field = HeaderField {
                name: (name_start as u32, name_end as u32),
                value_at: (start as u32, end as u32),
                value: OnceLock::new(),
            };
            let slot = match header.name {
                HeaderName::From => Some(AddressSlot::From),
                HeaderName::Sender => Some(AddressSlot::Sender),
                HeaderName::ReplyTo => Some(AddressSlot::ReplyTo),
                HeaderName::To => Some(AddressSlot::To),
                HeaderName::Cc => Some(AddressSlot::Cc),
                HeaderName::Bcc => Some(AddressSlot::Bcc),
                _ => None,
            };
            if let Some(slot) = slot {
                let list = &mut view.addresses[slot as usize];
                list.count += 1;
                if std::str::from_utf8(&raw[start..end]).is_ok()
                    && let HeaderValue::Address(address) = &header.value
                {
                    push_addresses(&mut list.addrs, address);
                }
            }
            match header.name {
                HeaderName::Subject => view.subject.push(idx),
                HeaderName::ListId => {
                    view.list_id_count += 1;
                    if let Some(v) = decode_unstructured(&raw[start..end]) {
                        view.list_ids.push(Folded::new(list_identifier(&v)));
                    }
                }
                HeaderName::MessageId if view.message_id.is_none() => {
                    view.message_id = decode_unstructured(&raw[start..end])
                        .map(|v| v.trim().to_owned())
                        .filter(|v| !v.is_empty());
                }
                HeaderName::Date if view.date.is_none() => {
                    if let HeaderValue::DateTime(dt) = &header.value {
                        view.date = to_zoned(dt);
                    }
                }
                _ => {}
            }
            let hash = name_hash_bytes(&raw[name_start..name_end]);
            view.names |= name_bit(hash);
            view.index.push((hash, idx));
            view.headers.push(field);
        }
        view.index.sort_unstable();
        view.read_parts(&message);
        view
    }

    /// Attachments learnt from BODYSTRUCTURE when only headers were fetched.
    pub fn set_attachments(&mut self, attachments: Vec<Attachment>) {
        self.attachments = attachments
            .into_iter()
            .map(|a| a.filename.filter(|n| !n.trim().is_empty()).map(Folded::new))
            .collect();
    }

    /// Body text and attachments from the full message (when the view was built from the
    /// header fields only and a rule needs the body): `raw` is the whole message, or the
    /// Content-* headers followed by the text.
    pub fn set_body_from_message(&mut self, raw: &[u8]) {
        if let Some(message) = PARSER.parse(raw) {
            self.attachments.clear();
            self.read_parts(&message);
        }
    }

    /// The first From address, lower-cased (`local@domain`): who the history says sent it.
    pub fn from_address(&self) -> Option<&str> {
        self.addresses[AddressSlot::From as usize]
            .addrs
            .first()
            .map(|a| &*a.address)
    }

    /// The decoded Subject (its first instance), as the history shows it; `None` when there
    /// is none or it cannot be decoded.
    pub fn subject(&self) -> Option<&str> {
        self.subjects().next().flatten().map(Folded::text)
    }

    /// Message-ID as written, angle brackets included.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// The Date header's time, in the offset it was written with.
    pub fn date(&self) -> Option<&jiff::Zoned> {
        self.date.as_ref()
    }

    /// The arrival time the view was built with.
    pub fn received(&self) -> Option<&jiff::Zoned> {
        self.received.as_ref()
    }

    /// Set the arrival time after parsing (`test` falls back to the Date header).
    pub fn set_received(&mut self, received: Option<jiff::Zoned>) {
        self.received = received;
    }

    /// How many From headers the message has (more than one makes `from` conditions false).
    pub fn from_count(&self) -> u32 {
        self.addresses[AddressSlot::From as usize].count
    }

    /// Every decodable value of header `name` (any case), in message order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        let lower = name.to_ascii_lowercase();
        self.header(name_hash(&lower), &lower)
            .flatten()
            .map(Folded::text)
            .collect()
    }

    /// The instances of a header by hashed lower-case name: one item per instance, `None`
    /// for an instance that cannot be decoded.
    pub(crate) fn header<'a, 'n>(
        &'a self,
        hash: u64,
        lower_name: &'n str,
    ) -> impl Iterator<Item = Option<&'a Folded>> + use<'a, 'n> {
        let start = if self.names & name_bit(hash) == 0 {
            self.index.len()
        } else {
            self.index.partition_point(|&(h, _)| h < hash)
        };
        self.index[start..]
            .iter()
            .take_while(move |&&(h, _)| h == hash)
            .map(move |&(_, i)| &self.headers[i as usize])
            .filter(move |f| {
                self.raw[f.name.0 as usize..f.name.1 as usize]
                    .eq_ignore_ascii_case(lower_name.as_bytes())
            })
            .map(move |f| self.value(f))
    }

    /// Subject instances (`None`: undecodable).
    pub(crate) fn subjects(&self) -> impl Iterator<Item = Option<&Folded>> {
        // `subject` itself is read only to decode the value, once.
        let first = (!self.subject.is_empty()).then(|| {
            self.first_subject
                .get_or_init(|| self.decode(&self.headers[self.subject[0] as usize]))
                .as_ref()
        });
        let rest = self.subject.get(1..).unwrap_or_default();
        first
            .into_iter()
            .chain(rest.iter().map(|&i| self.value(&self.headers[i as usize])))
    }

    /// A header instance's decoded value, decoded on first use.
    fn value<'a>(&'a self, f: &'a HeaderField) -> Option<&'a Folded> {
        f.value.get_or_init(|| self.decode(f)).as_ref()
    }

    fn decode(&self, f: &HeaderField) -> Option<Folded> {
        decode_unstructured(&self.raw[f.value_at.0 as usize..f.value_at.1 as usize])
            .map(Folded::new)
    }

    pub(crate) fn address_list(&self, slot: AddressSlot) -> &AddressList {
        &self.addresses[slot as usize]
    }

    fn set_flags(&mut self, flags: &[String]) {
        for flag in flags {
            let lower = flag.trim().to_lowercase();
            self.system_flags |= match lower.as_str() {
                "\\seen" => FLAG_SEEN,
                "\\flagged" => FLAG_FLAGGED,
                "\\answered" => FLAG_ANSWERED,
                "\\draft" => FLAG_DRAFT,
                _ => 0,
            };
            if !lower.is_empty() {
                self.flags_lower.push(lower.into_boxed_str());
            }
        }
    }

    /// True when the message has `flag` (compared case-insensitively).
    pub fn has_flag(&self, flag: &str) -> bool {
        let lower = flag.to_lowercase();
        self.flags_lower.iter().any(|f| **f == *lower)
    }

    /// Attachments and body text from the MIME structure.
    fn read_parts(&mut self, message: &mail_parser::Message<'_>) {
        let mut plain = Vec::new();
        let mut html = Vec::new();
        for part in &message.parts {
            if matches!(part.body, PartType::Multipart(_)) {
                continue;
            }
            let disposition_attachment = part
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
            let name = part.attachment_name().filter(|n| !n.trim().is_empty());
            if disposition_attachment || name.is_some() {
                self.attachments.push(name.map(Folded::new));
                continue;
            }
            match &part.body {
                PartType::Text(text) => {
                    let is_plain = part.content_type().is_none_or(|ct| {
                        ct.ctype().eq_ignore_ascii_case("text")
                            && ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
                    });
                    if is_plain {
                        plain.push(text.as_ref());
                    }
                }
                PartType::Html(text) => html.push(text.as_ref()),
                _ => {}
            }
        }
        let body = if !plain.is_empty() {
            plain.join("\n")
        } else {
            html.iter()
                .map(|h| mail_parser::decoders::html::html_to_text(h))
                .collect::<Vec<_>>()
                .join("\n")
        };
        self.body = Some(Folded::new(body));
    }
}

fn push_addresses(out: &mut Vec<AddressEntry>, address: &Address<'_>) {
    let mut push = |addr: &mail_parser::Addr<'_>| {
        let Some(a) = addr
            .address
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
        else {
            return;
        };
        out.push(AddressEntry {
            address: a.to_lowercase().into_boxed_str(),
            name: addr
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(Folded::new),
        });
    };
    match address {
        Address::List(list) => list.iter().for_each(&mut push),
        Address::Group(groups) => groups
            .iter()
            .flat_map(|g| g.addresses.iter())
            .for_each(&mut push),
    }
}

fn to_zoned(dt: &mail_parser::DateTime) -> Option<jiff::Zoned> {
    if !dt.is_valid() {
        return None;
    }
    let secs = i32::from(dt.tz_hour) * 3600 + i32::from(dt.tz_minute) * 60;
    let offset =
        jiff::tz::Offset::from_seconds(if dt.tz_before_gmt { -secs } else { secs }).ok()?;
    let civil = jiff::civil::DateTime::new(
        i16::try_from(dt.year).ok()?,
        i8::try_from(dt.month).ok()?,
        i8::try_from(dt.day).ok()?,
        i8::try_from(dt.hour).ok()?,
        i8::try_from(dt.minute).ok()?,
        i8::try_from(dt.second).ok()?,
        0,
    )
    .ok()?;
    civil.to_zoned(jiff::tz::TimeZone::fixed(offset)).ok()
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
