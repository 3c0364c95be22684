//! Mailbox management on a session: LIST (with SPECIAL-USE), STATUS, CREATE, SUBSCRIBE, and
//! `ensure_mailbox` (parents first, subscribed, tolerant of creation races).

use async_imap::imap_proto::{MailboxDatum, NameAttribute, Response, StatusAttribute};

use super::ImapError;
use super::mailbox::{self, MailboxEntry, SpecialUse};
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
            let name = if wire.is_ascii() {
                mailbox::from_wire(&wire, delimiter).unwrap_or_else(|e| {
                    tracing::warn!(account = %self.account(), mailbox = %wire, error = %e, "mailbox name is not modified UTF-7; using it as sent");
                    wire.clone()
                })
            } else {
                // A UTF8=ACCEPT server sends UTF-8 as is.
                match delimiter {
                    Some(d) if d != '/' => wire.split(d).collect::<Vec<_>>().join("/"),
                    _ => wire.clone(),
                }
            };
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
        mailbox::to_wire(mailbox, delim)?;
        let mut created = false;
        let mut chain = if delim.is_some() {
            mailbox::parents(mailbox)
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

    /// Whether a mailbox exists (`LIST "" <name>`).
    pub async fn exists(&mut self, mailbox: &str) -> Result<bool, ImapError> {
        let arg = self.wire_arg(mailbox).await?;
        let responses = self.run_command(&format!("LIST \"\" {arg}")).await?;
        Ok(responses.iter().any(|r| {
            matches!(r, Response::MailboxData(MailboxDatum::List(l))
                if !l.name_attributes.iter().any(|a| matches!(a, NameAttribute::NoSelect)
                    || matches!(a, NameAttribute::Extension(x) if x.eq_ignore_ascii_case("\\NonExistent"))))
        }))
    }
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
