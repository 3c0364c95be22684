//! IMAP words as types, with no I/O: every layer (the pure `rules`, `config`, `state`, the
//! daemon) speaks of mailboxes and UIDVALIDITY with them, so one mailbox has one identity
//! everywhere.
//!
//! - [`MailboxName`]: a mailbox name as the configuration writes it (UTF-8, `/` between
//!   levels), with `INBOX` canonical: RFC 3501 5.1 makes the name INBOX case-insensitive, so
//!   `inbox`, `Inbox` and `INBOX` are one mailbox — in `watch`, in rules' `mailboxes`, in
//!   `--mailbox` and as a key of the state database. Every other name is case-sensitive.
//! - [`UidValidity`]: RFC 3501's `nz-number`; a server that sends none (or 0) has no
//!   UIDVALIDITY, which is `Option::None`, never a magic 0.

use std::num::NonZeroU32;

/// A mailbox name (UTF-8, `/`-separated), `INBOX` in any spelling stored as `INBOX`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MailboxName(String);

impl MailboxName {
    /// The name, INBOX folded to its canonical spelling.
    pub fn new(name: impl Into<String>) -> MailboxName {
        let name = name.into();
        if name.eq_ignore_ascii_case("INBOX") {
            MailboxName::inbox()
        } else {
            MailboxName(name)
        }
    }

    /// `INBOX`.
    pub fn inbox() -> MailboxName {
        MailboxName("INBOX".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }

    /// Whether a name written somewhere else (a template's result, a server's LIST) names
    /// this mailbox.
    pub fn is(&self, other: &str) -> bool {
        self.0 == other || (self.is_inbox() && other.eq_ignore_ascii_case("INBOX"))
    }
}

impl std::ops::Deref for MailboxName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for MailboxName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for MailboxName {
    fn from(name: &str) -> MailboxName {
        MailboxName::new(name)
    }
}

impl From<String> for MailboxName {
    fn from(name: String) -> MailboxName {
        MailboxName::new(name)
    }
}

impl From<&String> for MailboxName {
    fn from(name: &String) -> MailboxName {
        MailboxName::new(name.as_str())
    }
}

impl std::str::FromStr for MailboxName {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<MailboxName, Self::Err> {
        Ok(MailboxName::new(s))
    }
}

impl std::fmt::Display for MailboxName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for MailboxName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq<str> for MailboxName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for MailboxName {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<&str> for MailboxName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl serde::Serialize for MailboxName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A mailbox's UIDVALIDITY: UIDs mean the same messages only while it stays the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UidValidity(NonZeroU32);

impl UidValidity {
    /// `None` for 0, which no server may send.
    pub fn new(value: u32) -> Option<UidValidity> {
        NonZeroU32::new(value).map(UidValidity)
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl TryFrom<u32> for UidValidity {
    type Error = ZeroUidValidity;

    fn try_from(value: u32) -> Result<UidValidity, ZeroUidValidity> {
        UidValidity::new(value).ok_or(ZeroUidValidity)
    }
}

/// 0 is not a UIDVALIDITY.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("UIDVALIDITY 0 is not valid")]
pub struct ZeroUidValidity;

impl std::fmt::Display for UidValidity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for UidValidity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_is_one_mailbox_in_any_spelling_and_other_names_keep_their_case() {
        for spelling in ["INBOX", "inbox", "Inbox", "iNbOx"] {
            assert_eq!(
                MailboxName::new(spelling),
                MailboxName::inbox(),
                "{spelling}"
            );
            assert_eq!(MailboxName::new(spelling).as_str(), "INBOX");
            assert!(MailboxName::inbox().is(spelling));
        }
        for (a, b) in [
            ("Lists", "lists"),
            ("INBOX/sub", "inbox/sub"),
            ("Inbox2", "INBOX2"),
        ] {
            assert_ne!(MailboxName::new(a), MailboxName::new(b), "{a} {b}");
            assert!(!MailboxName::new(a).is(b));
        }
        assert!(MailboxName::new("Lists/dev").is("Lists/dev"));
    }

    #[test]
    fn uidvalidity_zero_is_none() {
        assert_eq!(UidValidity::new(0), None);
        assert_eq!(UidValidity::new(7).map(UidValidity::get), Some(7));
        assert!(UidValidity::try_from(0).is_err());
    }
}
