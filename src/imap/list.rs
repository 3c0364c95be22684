//! Mailbox commands on a session: LIST (with SPECIAL-USE, RFC 6154), STATUS, CREATE, SUBSCRIBE,
//! `exists` and `ensure_mailbox` (parents first, subscribed, tolerant of creation races); and
//! what LIST tells: [`MailboxEntry`], [`SpecialUse`], [`resolve_special`].

use async_imap::imap_proto::{MailboxDatum, NameAttribute, Response, StatusAttribute};

use super::ImapError;
use super::name;
use super::session::{MailboxStatus, Session};

impl Session {
    /// Every mailbox (`LIST "" "*"`, with `RETURN (SPECIAL-USE)` when the server has
    /// LIST-EXTENDED and SPECIAL-USE), names decoded into the config form.
    pub async fn list(&mut self) -> Result<Vec<MailboxEntry>, ImapError> {
        let cmd = if self.has_capability("SPECIAL-USE") && self.has_capability("LIST-EXTENDED") {
            "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
        } else {
            "LIST \"\" \"*\""
        };
        let responses = self.run_command(cmd).await?;
        let mut out = Vec::new();
        for r in &responses {
            let Response::MailboxData(MailboxDatum::List(l)) = r else {
                continue;
            };
            let delimiter = l.delimiter.as_deref().and_then(|d| d.chars().next());
            let wire = l.name.to_string();
            let name = decode_name(&wire, delimiter, self.account());
            let attributes: Vec<String> = l.name_attributes.iter().map(attribute_name).collect();
            let special_use = attributes
                .iter()
                .find_map(|a| SpecialUse::from_attribute(a));
            out.push(MailboxEntry {
                name,
                wire_name: wire,
                delimiter,
                special_use,
                attributes,
            });
        }
        Ok(out)
    }

    /// `STATUS <mailbox> (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)`.
    pub async fn status(&mut self, mailbox: &str) -> Result<MailboxStatus, ImapError> {
        let arg = self.wire_arg(mailbox).await?;
        let responses = self
            .run_command(&format!(
                "STATUS {arg} (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"
            ))
            .await?;
        let mut st = MailboxStatus::default();
        for r in &responses {
            if let Response::MailboxData(MailboxDatum::Status { status, .. }) = r {
                for a in status {
                    match a {
                        StatusAttribute::Messages(n) => st.messages = Some(*n),
                        StatusAttribute::Unseen(n) => st.unseen = Some(*n),
                        StatusAttribute::UidNext(n) => st.uid_next = Some(*n),
                        StatusAttribute::UidValidity(n) => st.uid_validity = Some(*n),
                        _ => {}
                    }
                }
            }
        }
        Ok(st)
    }

    /// CREATE one mailbox (no parents).
    pub async fn create(&mut self, mailbox: &str) -> Result<(), ImapError> {
        let arg = self.wire_arg(mailbox).await?;
        self.run_command(&format!("CREATE {arg}")).await.map(|_| ())
    }

    /// SUBSCRIBE.
    pub async fn subscribe(&mut self, mailbox: &str) -> Result<(), ImapError> {
        let arg = self.wire_arg(mailbox).await?;
        self.run_command(&format!("SUBSCRIBE {arg}"))
            .await
            .map(|_| ())
    }

    /// DELETE (tests and tooling; imapsort itself never deletes mailboxes).
    pub async fn delete_mailbox(&mut self, mailbox: &str) -> Result<(), ImapError> {
        let arg = self.wire_arg(mailbox).await?;
        self.run_command(&format!("DELETE {arg}")).await.map(|_| ())
    }

    /// Make sure a mailbox exists: create it and its missing parents, subscribe what was
    /// created. Tolerates another client creating it at the same time (`[ALREADYEXISTS]`).
    /// Returns whether anything was created.
    pub async fn ensure_mailbox(&mut self, mailbox: &str) -> Result<bool, ImapError> {
        if mailbox.eq_ignore_ascii_case("INBOX") {
            return Ok(false);
        }
        let delim = self.delimiter().await?;
        // Validate the whole name before creating any parent.
        name::to_wire(mailbox, delim)?;
        let mut created = false;
        let mut chain = if delim.is_some() {
            name::parents(mailbox)
        } else {
            Vec::new()
        };
        chain.push(mailbox.to_string());
        for name in chain {
            if self.exists(&name).await? {
                continue;
            }
            match self.create(&name).await {
                Ok(()) => {
                    created = true;
                    tracing::info!(account = %self.account(), mailbox = %name, "created mailbox");
                }
                Err(e) if is_already_exists(&e) => {}
                Err(e) => {
                    // A race may still have created it: look again before giving up.
                    if !self.exists(&name).await? {
                        return Err(e);
                    }
                }
            }
            if let Err(e) = self.subscribe(&name).await {
                tracing::warn!(account = %self.account(), mailbox = %name, error = %e, "could not subscribe");
            }
        }
        Ok(created)
    }

    /// Whether a mailbox exists and can hold messages (not `\Noselect` / `\NonExistent`).
    ///
    /// The name is a LIST pattern on the wire, where `*` and `%` are wildcards (RFC 3501
    /// §6.3.8) that a mailbox name may hold too. So the answer is read for the exact name,
    /// decoded as [`list`](Self::list) decodes it; `*` is sent as `%` (which stays within one
    /// level), so a name with wildcards lists its siblings at most, not the whole tree.
    pub async fn exists(&mut self, mailbox: &str) -> Result<bool, ImapError> {
        let inbox = mailbox.eq_ignore_ascii_case("INBOX");
        let pattern = if inbox {
            "INBOX".to_owned()
        } else {
            let delim = self.delimiter().await?;
            let wire = name::to_wire(mailbox, delim)?.replace('*', "%");
            super::auth::quote(&wire).ok_or(ImapError::InvalidArgument("mailbox name"))?
        };
        let responses = self.run_command(&format!("LIST \"\" {pattern}")).await?;
        let account = self.account().to_owned();
        Ok(responses.iter().any(|r| {
            let Response::MailboxData(MailboxDatum::List(l)) = r else {
                return false;
            };
            let selectable = !l.name_attributes.iter().any(|a| {
                matches!(a, NameAttribute::NoSelect)
                    || matches!(a, NameAttribute::Extension(x) if x.eq_ignore_ascii_case("\\NonExistent"))
            });
            let delimiter = l.delimiter.as_deref().and_then(|d| d.chars().next());
            let listed = decode_name(&l.name, delimiter, &account);
            let same = if inbox {
                listed.eq_ignore_ascii_case("INBOX")
            } else {
                listed == mailbox
            };
            same && selectable
        }))
    }
}

/// A name as LIST sent it, in the config form: modified UTF-7 decoded (a UTF8=ACCEPT server
/// sends UTF-8 as it is), the server's delimiter turned into `/`. A name that is not valid
/// modified UTF-7 is used as sent, with a warning.
fn decode_name(wire: &str, delimiter: Option<char>, account: &str) -> String {
    if wire.is_ascii() {
        name::from_wire(wire, delimiter).unwrap_or_else(|e| {
            tracing::warn!(account = %account, mailbox = %wire, error = %e, "mailbox name is not modified UTF-7; using it as sent");
            wire.to_owned()
        })
    } else {
        match delimiter {
            Some(d) if d != '/' => wire.split(d).collect::<Vec<_>>().join("/"),
            _ => wire.to_owned(),
        }
    }
}

/// The SPECIAL-USE attributes of RFC 6154.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpecialUse {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
}

impl SpecialUse {
    /// From a LIST attribute such as `\Trash` (case-insensitive).
    pub fn from_attribute(attr: &str) -> Option<SpecialUse> {
        let a = attr.strip_prefix('\\')?.to_ascii_lowercase();
        Some(match a.as_str() {
            "all" => SpecialUse::All,
            "archive" => SpecialUse::Archive,
            "drafts" => SpecialUse::Drafts,
            "flagged" => SpecialUse::Flagged,
            "junk" => SpecialUse::Junk,
            "sent" => SpecialUse::Sent,
            "trash" => SpecialUse::Trash,
            _ => return None,
        })
    }

    /// The attribute as written on the wire.
    pub fn as_attribute(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }
}

/// One mailbox from LIST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxEntry {
    /// Decoded UTF-8, `/`-separated: the form users write in the config.
    pub name: String,
    /// Exactly what the server sent, for commands.
    pub wire_name: String,
    /// The server's hierarchy delimiter for this mailbox (`None`: flat).
    pub delimiter: Option<char>,
    /// The SPECIAL-USE attribute, if any.
    pub special_use: Option<SpecialUse>,
    /// All attributes as sent (`\HasChildren`, `\Noselect`, `\Trash` ...).
    pub attributes: Vec<String>,
}

impl MailboxEntry {
    /// `\Noselect` / `\NonExistent` mailboxes cannot be selected or counted.
    pub fn is_selectable(&self) -> bool {
        !self.attributes.iter().any(|a| {
            a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
        })
    }
}

/// The mailbox `trash` / `archive` resolve to (RULES.md): the account's setting, else the
/// mailbox with that SPECIAL-USE, else the plain default name.
pub fn resolve_special(
    configured: Option<&str>,
    entries: &[MailboxEntry],
    use_: SpecialUse,
    fallback: &str,
) -> String {
    if let Some(c) = configured {
        return c.to_string();
    }
    entries
        .iter()
        .find(|e| e.special_use == Some(use_))
        .map(|e| e.name.clone())
        .unwrap_or_else(|| fallback.to_string())
}

fn is_already_exists(e: &ImapError) -> bool {
    match e {
        ImapError::No { code, text, .. } => {
            code.as_deref() == Some("ALREADYEXISTS")
                || text.to_ascii_lowercase().contains("already exists")
        }
        _ => false,
    }
}

fn attribute_name(a: &NameAttribute<'_>) -> String {
    match a {
        NameAttribute::NoInferiors => "\\Noinferiors".into(),
        NameAttribute::NoSelect => "\\Noselect".into(),
        NameAttribute::Marked => "\\Marked".into(),
        NameAttribute::Unmarked => "\\Unmarked".into(),
        NameAttribute::All => "\\All".into(),
        NameAttribute::Archive => "\\Archive".into(),
        NameAttribute::Drafts => "\\Drafts".into(),
        NameAttribute::Flagged => "\\Flagged".into(),
        NameAttribute::Junk => "\\Junk".into(),
        NameAttribute::Sent => "\\Sent".into(),
        NameAttribute::Trash => "\\Trash".into(),
        NameAttribute::Extension(x) => x.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_resolution_prefers_config_then_attribute_then_default() {
        let entries = vec![MailboxEntry {
            name: "Deleted Items".into(),
            wire_name: "Deleted Items".into(),
            delimiter: Some('/'),
            special_use: Some(SpecialUse::Trash),
            attributes: vec!["\\Trash".into()],
        }];
        let t = SpecialUse::Trash;
        assert_eq!(resolve_special(Some("Bin"), &entries, t, "Trash"), "Bin");
        assert_eq!(resolve_special(None, &entries, t, "Trash"), "Deleted Items");
        assert_eq!(resolve_special(None, &[], t, "Trash"), "Trash");
        let a = SpecialUse::Archive;
        assert_eq!(resolve_special(None, &entries, a, "Archive"), "Archive");
    }
}
