//! The sweep command's link to the state database (shared with the daemon): which rules were
//! already applied to a message (they add nothing again), open intents settled
//! ([`crate::reconcile`]), intents in the journal before copies and moves, outcomes and
//! applied (rule, message) pairs after ([`crate::record`], as the daemon).
//!
//! Without a usable database (the directory belongs to another user, say) the sweep still
//! runs, with a warning: rules may then be applied again to messages a daemon already handled.
//! A dry run only reads (and never creates) the database.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::imap::MailboxInfo;
use crate::imap::uidset::Uid;
use crate::record::{self, Intents, Place};
use crate::state::{StateDb, StateError};
use crate::sweep::MessageResult;
use crate::vocab::{MailboxName, UidValidity};

/// The database and what the current mailbox pass knows about it.
pub(super) struct StateLink {
    /// `None`: sweeping without state (unavailable, or a dry run without a database yet).
    db: Option<StateDb>,
    /// Read only: nothing is recorded.
    dry_run: bool,
    account: String,
    mailbox: MailboxName,
    /// The mailbox's UIDVALIDITY for this pass; `None` turns the state off for the pass (the
    /// server sent none, or it differs from what the database holds for the mailbox).
    validity: Option<UidValidity>,
    /// Journal intents of the batch being executed, by UID.
    intents: Intents,
    /// Results waiting to be written in one transaction.
    pending: Vec<MessageResult>,
}

impl StateLink {
    /// Opens the database in `dir` (read-only for a dry run); problems become one warning on
    /// `err` and a sweep without state.
    pub(super) fn open(dir: &Path, dry_run: bool, err: &mut dyn std::io::Write) -> StateLink {
        let db = if dry_run {
            StateDb::open_read_only(dir)
        } else {
            StateDb::open(dir).map(Some)
        };
        let db = match db {
            Ok(db) => db,
            Err(e) => {
                let _ = writeln!(
                    err,
                    "imapsort: warning: state database unavailable ({}); sweeping without it, so \
                     rules may be applied again to messages already handled",
                    super::chain(&e)
                );
                None
            }
        };
        StateLink {
            db,
            dry_run,
            account: String::new(),
            mailbox: MailboxName::inbox(),
            validity: None,
            intents: Intents::new(),
            pending: Vec::new(),
        }
    }

    /// A new mailbox pass begins.
    pub(super) fn start(&mut self, account: &str, mailbox: &MailboxName) {
        self.flush();
        // Intents left without a result are the journal's to settle; their UIDs mean
        // nothing in the next mailbox.
        self.intents.clear();
        self.account = account.to_owned();
        self.mailbox = mailbox.clone();
        self.validity = None;
    }

    pub(super) fn selected(&mut self, info: &MailboxInfo) {
        let Some(db) = &self.db else { return };
        let Some(given) = info.uid_validity.and_then(UidValidity::new) else {
            return;
        };
        match db.mailbox(&self.account, &self.mailbox) {
            Ok(Some(stored)) if stored.uid_validity != given => {
                // The daemon resets the mailbox when it next selects it; until then the
                // stored pairs describe other messages.
                tracing::warn!(account = %self.account, mailbox = %self.mailbox, stored = stored.uid_validity.get(), given = given.get(), "UIDVALIDITY changed; sweeping this mailbox without state");
            }
            Ok(_) => self.validity = Some(given),
            Err(e) => self.fail(&e),
        }
    }

    /// The rules recorded as applied to each message — only where the record names the same
    /// Message-ID. UIDs alone could mislead: two servers (a test server restarted, a restored
    /// backup) can give the same account and mailbox the same UIDVALIDITY.
    pub(super) fn applied(
        &mut self,
        messages: &[(Uid, Option<&str>)],
    ) -> HashMap<Uid, HashSet<String>> {
        let (Some(db), Some(validity)) = (&self.db, self.validity) else {
            return HashMap::new();
        };
        let raw: Vec<(u32, Option<&str>)> = messages.iter().map(|(u, id)| (u.get(), *id)).collect();
        match db.applied_rules_to(&self.account, &self.mailbox, validity, &raw) {
            Ok(map) => map
                .into_iter()
                .filter_map(|(u, rules)| Uid::new(u).map(|u| (u, rules)))
                .collect(),
            Err(e) => {
                self.fail(&e);
                HashMap::new()
            }
        }
    }

    /// Settles the open journal intents of the mailbox just started (see
    /// [`crate::reconcile`]): a copy a crashed or part-failed sweep made is not made again.
    /// Selects the mailbox only when there is something to settle; never in a dry run.
    pub(super) async fn reconcile(
        &mut self,
        session: &mut crate::imap::Session,
        rules: &crate::rules::RuleSet,
    ) -> Result<(), crate::imap::ImapError> {
        if self.dry_run {
            return Ok(());
        }
        let Some(db) = &self.db else { return Ok(()) };
        let mine = match db.unfinished_intents(&self.account) {
            Ok(all) => crate::reconcile::intents_of(all, &self.mailbox),
            Err(e) => {
                self.fail(&e);
                return Ok(());
            }
        };
        if mine.is_empty() {
            return Ok(());
        }
        let info = session.select(&self.mailbox).await?;
        let Some(validity) = info.uid_validity.and_then(UidValidity::new) else {
            return Ok(());
        };
        let settled =
            crate::reconcile::settle_intents(session, &self.mailbox, validity, &mine, rules)
                .await?;
        let Some(db) = &mut self.db else {
            return Ok(());
        };
        match crate::reconcile::record(db, &self.account, &self.mailbox, validity, &settled) {
            Ok(()) => {
                tracing::info!(account = %self.account, mailbox = %self.mailbox, intents = settled.len(), "settled actions an earlier run left open");
            }
            Err(e) => self.fail(&e),
        }
        Ok(())
    }

    /// Intents for copies and terminal actions, before their commands are sent.
    pub(super) fn before_execute(&mut self, planned: &[MessageResult]) {
        self.flush();
        if self.dry_run {
            return;
        }
        let (Some(db), Some(uid_validity)) = (&mut self.db, self.validity) else {
            return;
        };
        let at = Place {
            account: &self.account,
            mailbox: &self.mailbox,
            uid_validity,
        };
        match record::intents(db, at, planned) {
            Ok(ids) => self.intents.extend(ids),
            Err(e) => self.fail(&e),
        }
    }

    pub(super) fn message(&mut self, r: &MessageResult) {
        if !self.dry_run && self.db.is_some() && self.validity.is_some() {
            self.pending.push(r.clone());
            if self.pending.len() >= record::RESULTS_BATCH {
                self.flush();
            }
        }
    }

    /// Writes the buffered results in one transaction: outcomes, flag changes, applied pairs.
    /// Intents of messages without a result yet (decided, not yet carried out) stay.
    pub(super) fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        if let (Some(db), Some(uid_validity)) = (&mut self.db, self.validity) {
            let at = Place {
                account: &self.account,
                mailbox: &self.mailbox,
                uid_validity,
            };
            if let Err(e) = record::results(db, at, &pending, &self.intents) {
                self.fail(&e);
            }
        }
        self.intents.forget(pending.iter().map(|r| r.uid.get()));
    }

    fn fail(&mut self, e: &StateError) {
        tracing::error!(account = %self.account, mailbox = %self.mailbox, error = %super::chain(e), "state database failed; sweeping on without it");
        self.db = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Plan;

    /// Regression: a second server (a restarted test server, a restored backup) can give the
    /// same account and mailbox the same UIDVALIDITY; its UID 1 is another message, and rules
    /// applied to the first server's UID 1 must not count as applied to it.
    #[test]
    fn applied_rules_count_only_for_the_same_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = Vec::new();
        let mut link = StateLink::open(dir.path(), false, &mut sink);
        assert!(sink.is_empty(), "{}", String::from_utf8_lossy(&sink));
        link.start("acct", &MailboxName::inbox());
        link.selected(&MailboxInfo {
            uid_validity: Some(7),
            ..MailboxInfo::default()
        });
        let uid = Uid::new(1).unwrap();
        let done = MessageResult {
            uid,
            message_id: Some("<a@x>".into()),
            rules: vec!["r".into()],
            plan: Plan::default(),
            warnings: vec![],
            done: false,
            error: None,
        };
        link.message(&done);
        link.flush();
        let cases: [(Option<&str>, bool); 3] =
            [(Some("<a@x>"), true), (Some("<b@x>"), false), (None, false)];
        for (id, applied) in cases {
            let got = link.applied(&[(uid, id)]);
            assert_eq!(got.contains_key(&uid), applied, "{id:?}: {got:?}");
        }
    }
}
