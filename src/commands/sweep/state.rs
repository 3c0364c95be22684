//! The sweep command's link to the state database (shared with the daemon): which rules were
//! already applied to a message (they add nothing again), intents in the journal before
//! copies and moves, outcomes and applied (rule, message) pairs after.
//!
//! Without a usable database (the directory belongs to another user, say) the sweep still
//! runs, with a warning: rules may then be applied again to messages a daemon already handled.
//! A dry run only reads (and never creates) the database.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::imap::MailboxInfo;
use crate::imap::uidset::Uid;
use crate::rules::{FinalKind, Plan};
use crate::state::{Action, Applied, JournalId, NewJournalEntry, Outcome, StateDb, StateError};
use crate::sweep::MessageResult;

/// The database and what the current mailbox pass knows about it.
pub(super) struct StateLink {
    /// `None`: sweeping without state (unavailable, or a dry run without a database yet).
    db: Option<StateDb>,
    /// Read only: nothing is recorded.
    dry_run: bool,
    account: String,
    mailbox: String,
    /// The mailbox's UIDVALIDITY for this pass; `None` turns the state off for the pass (the
    /// server sent none, or it differs from what the database holds for the mailbox).
    validity: Option<u32>,
    /// Journal intents of the batch being executed, by UID.
    intents: HashMap<u32, Vec<JournalId>>,
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
            mailbox: String::new(),
            validity: None,
            intents: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// A new mailbox pass begins.
    pub(super) fn start(&mut self, account: &str, mailbox: &str) {
        self.flush();
        self.account = account.to_owned();
        self.mailbox = mailbox.to_owned();
        self.validity = None;
    }

    pub(super) fn selected(&mut self, info: &MailboxInfo) {
        let Some(db) = &self.db else { return };
        let Some(given) = info.uid_validity else {
            return;
        };
        match db.mailbox(&self.account, &self.mailbox) {
            Ok(Some(stored)) if stored.uid_validity != given => {
                // The daemon resets the mailbox when it next selects it; until then the
                // stored pairs describe other messages.
                tracing::warn!(account = %self.account, mailbox = %self.mailbox, stored = stored.uid_validity, given, "UIDVALIDITY changed; sweeping this mailbox without state");
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
        let Some(path) = db.path().map(Path::to_path_buf) else {
            return HashMap::new();
        };
        let raw: Vec<u32> = messages.iter().map(|(u, _)| u.get()).collect();
        // Which rules: through the state API. Which message each record was about: read from
        // the same file (the `applied` table of docs/state.md), as the API does not return it.
        let rules = match db.applied_rules(&self.account, &self.mailbox, validity, &raw) {
            Ok(map) => map,
            Err(e) => {
                self.fail(&e);
                return HashMap::new();
            }
        };
        if rules.is_empty() {
            return HashMap::new();
        }
        let recorded = match recorded_message_ids(
            &path,
            &self.account,
            &self.mailbox,
            validity,
            &rules,
        ) {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(account = %self.account, mailbox = %self.mailbox, error = %e, "cannot read Message-IDs of applied rules; treating them as not applied");
                return HashMap::new();
            }
        };
        let mut out = HashMap::new();
        for (uid, id) in messages {
            let Some(names) = rules.get(&uid.get()) else {
                continue;
            };
            let same: HashSet<String> = names
                .iter()
                .filter(|rule| {
                    recorded
                        .get(&(uid.get(), (*rule).clone()))
                        .map(Option::as_deref)
                        == Some(*id)
                })
                .cloned()
                .collect();
            if !same.is_empty() {
                out.insert(*uid, same);
            }
        }
        out
    }

    /// Intents for copies and terminal actions, before their commands are sent.
    pub(super) fn before_execute(&mut self, planned: &[MessageResult]) {
        self.flush();
        if self.dry_run {
            return;
        }
        let (Some(db), Some(validity)) = (&mut self.db, self.validity) else {
            return;
        };
        let mut uids = Vec::new();
        let rules: Vec<String> = planned.iter().map(|r| r.rules.join(",")).collect();
        let mut rows = Vec::new();
        for (r, rule) in planned.iter().zip(&rules) {
            for (action, dest) in risky_actions(&r.plan) {
                uids.push(r.uid.get());
                rows.push(entry(
                    &self.account,
                    &self.mailbox,
                    validity,
                    r,
                    rule,
                    action,
                    dest,
                ));
            }
        }
        if rows.is_empty() {
            return;
        }
        match db.journal_intents(&rows) {
            Ok(ids) => {
                for (uid, id) in uids.into_iter().zip(ids) {
                    self.intents.entry(uid).or_default().push(id);
                }
            }
            Err(e) => self.fail(&e),
        }
    }

    pub(super) fn message(&mut self, r: &MessageResult) {
        if !self.dry_run && self.db.is_some() && self.validity.is_some() {
            self.pending.push(r.clone());
        }
    }

    /// Writes the buffered results in one transaction: outcomes, flag changes, applied pairs.
    pub(super) fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let intents = std::mem::take(&mut self.intents);
        if pending.is_empty() {
            return;
        }
        let (Some(db), Some(validity)) = (&mut self.db, self.validity) else {
            return;
        };
        let (account, mailbox) = (self.account.as_str(), self.mailbox.as_str());
        let mut write = || -> Result<(), StateError> {
            let tx = db.batch()?;
            for r in &pending {
                let ids = intents.get(&r.uid.get()).map(Vec::as_slice).unwrap_or(&[]);
                if r.error.is_some() {
                    let reason = r.error.clone().unwrap_or_default();
                    tx.journal_outcomes(ids, &Outcome::Failed(reason))?;
                    continue;
                }
                tx.journal_outcomes(ids, &Outcome::Done)?;
                let rule = r.rules.join(",");
                for (action, dest) in flag_actions(&r.plan) {
                    let row = entry(account, mailbox, validity, r, &rule, action, Some(dest));
                    tx.journal_record(&row, &Outcome::Done)?;
                }
                let pairs: Vec<Applied<'_>> = r
                    .rules
                    .iter()
                    .map(|rule| Applied {
                        uid: r.uid.get(),
                        rule,
                        message_id: r.message_id.as_deref(),
                    })
                    .collect();
                tx.record_applied(account, mailbox, validity, &pairs)?;
            }
            tx.commit()
        };
        if let Err(e) = write() {
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &StateError) {
        tracing::error!(account = %self.account, mailbox = %self.mailbox, error = %super::chain(e), "state database failed; sweeping on without it");
        self.db = None;
    }
}

/// (uid, rule) -> the Message-ID recorded with that applied pair.
fn recorded_message_ids(
    path: &Path,
    account: &str,
    mailbox: &str,
    validity: u32,
    rules: &HashMap<u32, HashSet<String>>,
) -> rusqlite::Result<HashMap<(u32, String), Option<String>>> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mut stmt = conn.prepare_cached(
        "SELECT rule, message_id FROM applied \
         WHERE account = ?1 AND mailbox = ?2 AND uid_validity = ?3 AND uid = ?4",
    )?;
    let mut out = HashMap::new();
    for uid in rules.keys() {
        let rows = stmt.query_map(rusqlite::params![account, mailbox, validity, uid], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        for row in rows {
            let (rule, id) = row?;
            out.insert((*uid, rule), id);
        }
    }
    Ok(out)
}

fn entry<'e>(
    account: &'e str,
    mailbox: &'e str,
    uid_validity: u32,
    r: &'e MessageResult,
    rule: &'e str,
    action: Action,
    destination: Option<&'e str>,
) -> NewJournalEntry<'e> {
    NewJournalEntry {
        account,
        mailbox,
        uid_validity,
        uid: r.uid.get(),
        message_id: r.message_id.as_deref(),
        rule,
        action,
        destination,
    }
}

/// Copies and the terminal action: not safe to repeat, so journaled as intents first.
fn risky_actions(plan: &Plan) -> Vec<(Action, Option<&str>)> {
    let mut out: Vec<(Action, Option<&str>)> = plan
        .copy
        .iter()
        .map(|m| (Action::Copy, Some(m.as_str())))
        .collect();
    if let Some(f) = &plan.final_action {
        let action = match f.action {
            FinalKind::Move => Action::Move,
            FinalKind::Archive => Action::Archive,
            FinalKind::Trash => Action::Trash,
            FinalKind::Delete => Action::Delete,
        };
        out.push((action, f.mailbox.as_deref()));
    }
    out
}

/// Flag and label changes: harmless to repeat, journaled once done.
fn flag_actions(plan: &Plan) -> Vec<(Action, &str)> {
    let mut out = Vec::new();
    for (action, list) in [
        (Action::Flag, &plan.add_flags),
        (Action::Unflag, &plan.remove_flags),
        (Action::Label, &plan.add_labels),
    ] {
        out.extend(list.iter().map(|f| (action, f.as_str())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a second server (a restarted test server, a restored backup) can give the
    /// same account and mailbox the same UIDVALIDITY; its UID 1 is another message, and rules
    /// applied to the first server's UID 1 must not count as applied to it.
    #[test]
    fn applied_rules_count_only_for_the_same_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = Vec::new();
        let mut link = StateLink::open(dir.path(), false, &mut sink);
        assert!(sink.is_empty(), "{}", String::from_utf8_lossy(&sink));
        link.start("acct", "INBOX");
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
