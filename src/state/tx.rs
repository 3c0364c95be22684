//! [`StateTx`]: the writes of one batch, in one transaction.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, params};

use super::{
    Applied, Batch, Entry, EntryId, JournalEntry, JournalId, Link, NewEntry, NewFence,
    NewJournalEntry, OpenEntry, Outcome, Placed, StateError, history, id_runs, journal, steps_of,
    transfer,
};
use crate::vocab::{MailboxName, UidValidity};

/// A batch of writes in one transaction. Dropping it without [`StateTx::commit`] rolls back.
pub struct StateTx<'a> {
    /// The open (IMMEDIATE) transaction: it holds the write lock from the start.
    pub(super) tx: rusqlite::Transaction<'a>,
    /// One time stamp for every row of the batch.
    pub(super) now: i64,
}

impl StateTx<'_> {
    /// Makes every write of the batch durable at once.
    pub fn commit(self) -> Result<(), StateError> {
        self.tx.commit()?;
        Ok(())
    }

    /// Starts the mailbox over: a new (or first seen) UIDVALIDITY, `last_uid` 0, and the applied
    /// pairs of its old life forgotten (they name UIDs that now mean other messages).
    pub fn reset_mailbox(
        &self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
    ) -> Result<(), StateError> {
        self.reset_mailbox_at(account, mailbox, uid_validity, 0)
    }

    /// [`reset_mailbox`](Self::reset_mailbox), starting at `last_uid` instead of 0, in one
    /// step: for `first_start: new`, where the existing mail (UIDNEXT - 1 and below) is
    /// deliberately left alone; a crash between a reset and a separate `set_last_uid` would
    /// otherwise sort the whole mailbox on the next start.
    pub fn reset_mailbox_at(
        &self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        last_uid: u32,
    ) -> Result<(), StateError> {
        let old: Option<Option<u32>> = self
            .tx
            .query_row(
                "SELECT uid_validity FROM mailbox WHERE account = ?1 AND mailbox = ?2",
                params![account, mailbox.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        self.tx.execute(
            "INSERT INTO mailbox (account, mailbox, uid_validity, last_uid, last_activity) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (account, mailbox) DO UPDATE SET uid_validity = ?3, last_uid = ?4, \
             last_activity = ?5",
            params![
                account,
                mailbox.as_str(),
                uid_validity.get(),
                last_uid,
                self.now
            ],
        )?;
        let forgotten = self.tx.execute(
            "DELETE FROM applied WHERE account = ?1 AND mailbox = ?2",
            params![account, mailbox.as_str()],
        )?;
        let uid_validity = uid_validity.get();
        let mailbox = mailbox.as_str();
        match old.flatten() {
            Some(old) if old != uid_validity => tracing::warn!(
                account = %account,
                mailbox = %mailbox,
                old_uid_validity = old,
                uid_validity,
                forgotten,
                "UIDVALIDITY changed; mailbox state reset"
            ),
            Some(_) => tracing::info!(
                account = %account,
                mailbox = %mailbox,
                uid_validity,
                forgotten,
                "mailbox state reset"
            ),
            None => tracing::info!(
                account = %account,
                mailbox = %mailbox,
                uid_validity,
                last_uid,
                "mailbox state started"
            ),
        }
        Ok(())
    }

    /// Advances the last handled UID to `uid`; never moves it backwards (the larger value
    /// stays). Returns the value now stored. A mailbox not seen before starts here. Refused
    /// when the stored UIDVALIDITY differs: the caller is working on a mailbox's old life.
    pub fn set_last_uid(
        &self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        uid: u32,
    ) -> Result<u32, StateError> {
        self.check_validity(account, mailbox, uid_validity)?;
        let stored: u32 = self.tx.query_row(
            "INSERT INTO mailbox (account, mailbox, uid_validity, last_uid, last_activity) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (account, mailbox) DO UPDATE SET uid_validity = ?3, \
             last_uid = max(last_uid, ?4), last_activity = ?5 \
             RETURNING last_uid",
            params![account, mailbox.as_str(), uid_validity.get(), uid, self.now],
            |r| r.get(0),
        )?;
        if stored > uid {
            tracing::debug!(
                account = %account,
                mailbox = %mailbox,
                uid,
                stored,
                "last_uid not moved backwards"
            );
        }
        Ok(stored)
    }

    /// Remembers (rule, message) pairs as applied; a repeat for the same message changes
    /// nothing, and a record of the same (UID, rule) made for another message (same
    /// UIDVALIDITY, another server's life) is replaced: left in place, it would never count
    /// and the rule would run again at every sweep.
    pub fn record_applied(
        &self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        applied: &[Applied<'_>],
    ) -> Result<(), StateError> {
        self.check_validity(account, mailbox, uid_validity)?;
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO applied \
             (account, mailbox, uid_validity, uid, rule, message_id, applied_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (account, mailbox, uid_validity, uid, rule) DO UPDATE \
             SET message_id = excluded.message_id, applied_at = excluded.applied_at \
             WHERE applied.message_id IS NOT excluded.message_id",
        )?;
        for a in applied {
            stmt.execute(params![
                account,
                mailbox.as_str(),
                uid_validity.get(),
                a.uid,
                a.rule,
                a.message_id,
                self.now
            ])?;
        }
        Ok(())
    }

    /// Forgets the applied pairs of messages no longer in the mailbox. `present` must be the
    /// mailbox's complete UID list (`UID SEARCH ALL`), not a filtered search. Returns how many
    /// pairs went.
    pub fn forget_applied_except(
        &self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        present: &[u32],
    ) -> Result<usize, StateError> {
        let keep: HashSet<u32> = present.iter().copied().collect();
        let mut stmt = self.tx.prepare_cached(
            "SELECT DISTINCT uid FROM applied WHERE account = ?1 AND mailbox = ?2 \
             AND uid_validity = ?3",
        )?;
        let gone: Vec<u32> = stmt
            .query_map(
                params![account, mailbox.as_str(), uid_validity.get()],
                |r| r.get(0),
            )?
            .collect::<Result<Vec<u32>, _>>()?
            .into_iter()
            .filter(|uid| !keep.contains(uid))
            .collect();
        let mut delete = self.tx.prepare_cached(
            "DELETE FROM applied WHERE account = ?1 AND mailbox = ?2 AND uid_validity = ?3 \
             AND uid = ?4",
        )?;
        let mut n = 0;
        for uid in gone {
            n += delete.execute(params![account, mailbox.as_str(), uid_validity.get(), uid])?;
        }
        Ok(n)
    }

    /// Writes a batch's fences, before its first copy-based command (state/transfer.rs).
    pub fn record_fences(
        &self,
        batch: &Batch<'_>,
        fences: &[NewFence<'_>],
    ) -> Result<(), StateError> {
        transfer::insert_fences(&self.tx, self.now, batch, fences)
    }

    /// Adds what the server said a copy or move command of the batch copied into
    /// `destination` (COPYUID).
    pub fn record_copies(
        &self,
        batch: &Batch<'_>,
        destination: &str,
        copies: &crate::imap::uidset::CopyUid,
    ) -> Result<(), StateError> {
        transfer::add_copies(&self.tx, self.now, batch, destination, copies)
    }

    /// Writes an intent before a non-idempotent command; finish it with
    /// [`journal_outcome`](Self::journal_outcome).
    pub fn journal_intent(&self, entry: &NewJournalEntry<'_>) -> Result<JournalId, StateError> {
        journal::insert(&self.tx, self.now, entry, &Outcome::Intent, Link::default())
    }

    /// A journal row that is a step of a history entry (`link`), with its outcome (`Intent`
    /// before a command).
    pub fn journal_step(
        &self,
        link: Link<'_>,
        entry: &NewJournalEntry<'_>,
        outcome: &Outcome,
    ) -> Result<JournalId, StateError> {
        journal::insert(&self.tx, self.now, entry, outcome, link)
    }

    /// The entries of `mailbox` not done yet for these UIDs, which a retried plan continues:
    /// (UID, Message-ID, entry, its plan, its rules).
    pub fn open_entries(
        &self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        uids: &[u32],
    ) -> Result<Vec<OpenEntry>, StateError> {
        history::open_of(&self.tx, account, mailbox, uid_validity, uids)
    }

    /// Writes a history entry for a message about to be acted on (not done yet).
    pub fn insert_entry(&self, entry: &NewEntry<'_>) -> Result<EntryId, StateError> {
        history::insert(&self.tx, self.now, entry)
    }

    /// A retry of entry `id`'s plan (`old` its plan and rules so far): the entry keeps both.
    pub fn extend_entry(
        &self,
        id: EntryId,
        old: (&crate::rules::Plan, &[String]),
        retry: &NewEntry<'_>,
    ) -> Result<(), StateError> {
        history::extend(&self.tx, id, old, retry)
    }

    /// Marks entries done: their plans were carried out completely.
    pub fn finish_entries(&self, ids: &[EntryId]) -> Result<(), StateError> {
        history::finish(&self.tx, ids)
    }

    /// Where the entry's move left the message (COPYUID, or what recovery found).
    pub fn entry_moved_to(
        &self,
        id: EntryId,
        uid_validity: u32,
        uid: u32,
    ) -> Result<(), StateError> {
        history::moved_to(&self.tx, id, uid_validity, uid)
    }

    /// Where one of the entry's copies is.
    pub fn entry_copied_to(&self, id: EntryId, placed: &Placed) -> Result<(), StateError> {
        history::copied_to(&self.tx, id, placed)
    }

    /// Marks done those of `ids` whose copy, move and delete steps are all done (recovery
    /// settled the last of them; of a step tried more than once, the last try counts).
    /// Returns them.
    pub fn finish_entries_if_complete(&self, ids: &[EntryId]) -> Result<Vec<EntryId>, StateError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT NOT EXISTS (SELECT 1 FROM journal j WHERE j.entry = ?1 \
             AND j.action IN ('copy', 'move', 'archive', 'trash', 'delete') \
             AND j.outcome <> 'done' AND j.id = (SELECT max(k.id) FROM journal k \
             WHERE k.entry = j.entry AND k.action = j.action \
             AND k.destination IS j.destination))",
        )?;
        let mut complete = Vec::new();
        for id in ids {
            if stmt.query_row([id.0], |r| r.get::<_, bool>(0))? {
                complete.push(*id);
            }
        }
        history::finish(&self.tx, &complete)?;
        Ok(complete)
    }

    /// The history entries with these ids, read inside the batch.
    pub fn entries(&self, ids: &[EntryId]) -> Result<Vec<Entry>, StateError> {
        history::by_ids(&self.tx, ids)
    }

    /// The journal rows of these entries, read inside the batch (what it wrote included).
    pub fn steps_of(&self, entries: &[EntryId]) -> Result<Vec<JournalEntry>, StateError> {
        steps_of(&self.tx, entries)
    }

    /// The rules recorded as applied to one message (for the same Message-ID), markers
    /// included, read inside the batch.
    pub fn applied_of(
        &self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        uid: u32,
        message_id: Option<&str>,
    ) -> Result<Vec<String>, StateError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT rule FROM applied WHERE account = ?1 AND mailbox = ?2 AND uid_validity = ?3 \
             AND uid = ?4 AND message_id IS ?5",
        )?;
        let rows = stmt.query_map(
            params![
                account,
                mailbox.as_str(),
                uid_validity.get(),
                uid,
                message_id
            ],
            |r| r.get::<_, String>(0),
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The UIDVALIDITY the state keeps `mailbox` under (`None`: no row, or never selected).
    pub fn mailbox_validity(
        &self,
        account: &str,
        mailbox: &MailboxName,
    ) -> Result<Option<UidValidity>, StateError> {
        let stored: Option<Option<u32>> = self
            .tx
            .prepare_cached("SELECT uid_validity FROM mailbox WHERE account = ?1 AND mailbox = ?2")?
            .query_row(params![account, mailbox.as_str()], |r| r.get(0))
            .optional()?;
        Ok(stored.flatten().and_then(UidValidity::new))
    }

    /// Marks entries undone.
    pub fn mark_undone(&self, ids: &[EntryId]) -> Result<(), StateError> {
        history::undone(&self.tx, self.now, ids)
    }

    /// Intents for a whole batch (one COPY of many UIDs), in the order given.
    pub fn journal_intents(
        &self,
        entries: &[NewJournalEntry<'_>],
    ) -> Result<Vec<JournalId>, StateError> {
        entries.iter().map(|e| self.journal_intent(e)).collect()
    }

    /// Writes a finished action in one go (idempotent commands such as STORE need no intent).
    pub fn journal_record(
        &self,
        entry: &NewJournalEntry<'_>,
        outcome: &Outcome,
    ) -> Result<JournalId, StateError> {
        journal::insert(&self.tx, self.now, entry, outcome, Link::default())
    }

    /// Records how an intent ended.
    pub fn journal_outcome(&self, id: JournalId, outcome: &Outcome) -> Result<(), StateError> {
        journal::set_outcome(&self.tx, self.now, id, outcome)
    }

    /// Records one outcome for many intents (the one COPY they were part of, or a whole
    /// batch). Runs of consecutive ids (intents written together) are updated by one
    /// statement each: a 100,000-message sweep closes its intents in a handful of them.
    pub fn journal_outcomes(&self, ids: &[JournalId], outcome: &Outcome) -> Result<(), StateError> {
        for (first, last) in id_runs(ids.iter().map(|id| id.0)) {
            if first == last {
                journal::set_outcome(&self.tx, self.now, JournalId(first), outcome)?;
            } else {
                journal::set_outcomes(&self.tx, self.now, (first, last), outcome)?;
            }
        }
        Ok(())
    }

    /// Remembers the latest error of a mailbox (kept, with its time, until the next one).
    /// The text must not hold secrets; it is cut to 1000 characters.
    pub fn record_error(
        &self,
        account: &str,
        mailbox: &MailboxName,
        text: &str,
    ) -> Result<(), StateError> {
        let text: String = text.chars().take(1000).collect();
        self.tx.execute(
            "INSERT INTO mailbox (account, mailbox, last_error, last_error_at) \
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (account, mailbox) DO UPDATE SET last_error = ?3, last_error_at = ?4",
            params![account, mailbox.as_str(), text, self.now],
        )?;
        Ok(())
    }

    /// Notes that the mailbox's worker was active (connected, caught up, idled).
    pub fn touch(&self, account: &str, mailbox: &MailboxName) -> Result<(), StateError> {
        self.tx.execute(
            "INSERT INTO mailbox (account, mailbox, last_activity) VALUES (?1, ?2, ?3) \
             ON CONFLICT (account, mailbox) DO UPDATE SET last_activity = ?3",
            params![account, mailbox.as_str(), self.now],
        )?;
        Ok(())
    }

    fn check_validity(
        &self,
        account: &str,
        mailbox: &MailboxName,
        given: UidValidity,
    ) -> Result<(), StateError> {
        let stored: Option<Option<u32>> = self
            .tx
            .prepare_cached("SELECT uid_validity FROM mailbox WHERE account = ?1 AND mailbox = ?2")?
            .query_row(params![account, mailbox.as_str()], |r| r.get(0))
            .optional()?;
        match stored.flatten().and_then(UidValidity::new) {
            Some(stored) if stored != given => Err(StateError::UidValidityMismatch {
                account: account.to_owned(),
                mailbox: mailbox.to_string(),
                stored,
                given,
            }),
            _ => Ok(()),
        }
    }
}
