//! Guard keys: values one of which a message must have for a rule's condition to be able to
//! hold. Conditions ([`super::cond`]) name them; the rule index ([`super::index`]) files rules
//! under them and looks them up in each message.

use super::ast::AddressField;

/// What a guard key is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The lower-cased addresses of the field (their domains for a domain key).
    Address(AddressField),
    /// The lower-cased List-Id identifiers.
    ListIdLower,
    /// The List-Id identifiers as written (a case-sensitive matcher).
    ListIdText,
}

/// How many sources there are ([`Source::id`] is below this).
pub(crate) const SOURCES: usize = 9;

impl Source {
    /// A dense number per source, for tables and bit masks.
    pub(crate) fn id(self) -> usize {
        match self {
            Source::Address(AddressField::From) => 0,
            Source::Address(AddressField::Sender) => 1,
            Source::Address(AddressField::ReplyTo) => 2,
            Source::Address(AddressField::To) => 3,
            Source::Address(AddressField::Cc) => 4,
            Source::Address(AddressField::Bcc) => 5,
            Source::Address(AddressField::Recipient) => 6,
            Source::ListIdLower => 7,
            Source::ListIdText => 8,
        }
    }
}

/// One value a message must have for a guarded rule to be able to match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GuardKey {
    pub(crate) source: Source,
    /// The key is a domain: an address matches when its domain is the key or a subdomain.
    pub(crate) domain: bool,
    /// Compared for equality (already in the form the matcher compares).
    pub(crate) key: Box<str>,
}
