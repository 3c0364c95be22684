//! The one state sink of a pass, for the daemon and `imapsort sweep` alike: which rules were
//! already applied to a message, the journal's intents before the commands, and after them
//! what came of each message ([`super::record`]); every write through the [`Store`], on the
//! blocking pool.
//!
//! Every write that fails is an error the pass stops on (nothing more is sent): a missing
//! intent would make a crash repeat a copy, a missing result would make the next pass repeat
//! a rule. Results reach the [`Report`] only after the write that records them.
//!
//! A dry run writes nothing and reads what it can: the applied rules, when a database exists
//! and knows the mailbox under the same UIDVALIDITY.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::record::{self, Copies, Intents, Place, Placements};
use super::waiting::Waiting;
use super::{MessageResult, PassError, Report};
use crate::execute::{Copied, Fence, Outcome, Run};
use crate::imap::MailboxInfo;
use crate::imap::uidset::Uid;
use crate::state::{Begun, StateError, Store};

/// How many results are written in one transaction: a sweep hands over a whole pass's
/// results at its end, and holding 100,000 of them would cost ~40 MB.
pub const RESULTS_BATCH: usize = record::RESULTS_BATCH;

/// A journal write under way ([`Sink::begin_journal`]): the messages and their intents' ids.
pub(super) type JournalWrite = Begun<(Vec<MessageResult>, Intents)>;

/// Results being written while a batch's closing removal runs ([`Sink::write_ahead`]).
pub(super) struct Ahead {
    written: Begun<(bool, Intents)>,
    /// Whether the last commands ended as the writer was told they would, and what they
    /// placed.
    verdict: std::sync::mpsc::Sender<record::Verdict>,
    /// How many COPYUID answers the writer was shown: a closing move's come after them.
    shown: usize,
}

/// A pass's link to the state database.
#[derive(Debug)]
pub struct Sink {
    /// `None`: no state at all (a dry run without a database).
    store: Option<Store>,
    /// What the rows are about; `None` with no usable state (a dry run whose database does
    /// not know the mailbox under this UIDVALIDITY).
    place: Option<Place>,
    /// Read only: nothing is written.
    dry_run: bool,
    /// Intents written and not yet finished, by UID.
    intents: Intents,
    /// Results waiting to be written in one transaction.
    pending: Vec<MessageResult>,
    /// COPYUID answers of the batch's commands, written with its first results.
    copies: Option<Copies>,
    /// The batch's COPYUID answers, for the history entries' placements (its results are
    /// written in several transactions; each needs them).
    placed: std::sync::Arc<Placements>,
}

impl Sink {
    /// A sink writing under `place` (every write, unless `dry_run`).
    pub fn new(store: Option<Store>, place: Option<Place>, dry_run: bool) -> Sink {
        Sink {
            store,
            place,
            dry_run,
            intents: Intents::new(),
            pending: Vec::new(),
            copies: None,
            placed: Default::default(),
        }
    }

    /// The database file, for messages.
    pub fn file(&self) -> Option<PathBuf> {
        self.store.as_ref().map(Store::file)
    }

    /// The pass's own SELECT must see the UIDVALIDITY its rows are written under.
    pub(super) fn check_selected(&self, info: &MailboxInfo) -> Result<(), PassError> {
        match &self.place {
            Some(p) if info.uid_validity != Some(p.uid_validity.get()) => {
                Err(PassError::ValidityChanged {
                    mailbox: p.mailbox.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// A state error as the pass reports it.
    pub(super) fn failed(&self, source: StateError) -> PassError {
        PassError::State {
            file: self.file().unwrap_or_default(),
            source,
        }
    }

    /// The rules recorded as applied to each message — only where the record names the same
    /// Message-ID. UIDs alone could mislead: two servers (a test server restarted, a restored
    /// backup) can give the same account and mailbox the same UIDVALIDITY.
    pub(super) async fn applied(
        &mut self,
        messages: Vec<(Uid, Option<String>)>,
    ) -> Result<HashMap<Uid, HashSet<String>>, StateError> {
        let (Some(store), Some(place)) = (&self.store, &self.place) else {
            return Ok(HashMap::new());
        };
        let place = place.clone();
        let map = store
            .read(move |db| {
                let raw: Vec<(u32, Option<&str>)> = messages
                    .iter()
                    .map(|(u, id)| (u.get(), id.as_deref()))
                    .collect();
                db.applied_rules_to(&place.account, &place.mailbox, place.uid_validity, &raw)
            })
            .await?;
        Ok(map
            .into_iter()
            .filter_map(|(u, rules)| Uid::new(u).map(|u| (u, rules)))
            .collect())
    }

    /// The Message-IDs of messages an interrupted `imapsort undo` is moving back into this
    /// mailbox (its steps still open): such a message may arrive here after recovery looked
    /// (the server finishing the commands of a client that died), and is not the rules' to
    /// act on — the next undo settles it. Empty without state.
    pub(super) async fn returning(&self) -> Result<HashSet<String>, StateError> {
        let (Some(store), Some(place)) = (&self.store, &self.place) else {
            return Ok(HashSet::new());
        };
        let place = place.clone();
        let steps = store
            .call(move |db| {
                db.open_intents_into(
                    &place.account,
                    &place.mailbox,
                    crate::state::Action::UndoMove,
                )
            })
            .await?;
        Ok(steps.into_iter().filter_map(|s| s.message_id).collect())
    }

    /// Writes the history entries of `planned` and the intents of their copies and terminal
    /// actions, before their commands. The write starts now, on the blocking pool, and the
    /// pass goes on evaluating while it runs; [`end_journal`](Self::end_journal) waits for it.
    /// No command may go out for these messages before it ended.
    pub(super) fn begin_journal(
        &mut self,
        planned: Vec<MessageResult>,
    ) -> Result<JournalWrite, StateError> {
        if self.dry_run {
            return Ok(Begun::ready((planned, Intents::new())));
        }
        let (store, place) = self.writable()?;
        Ok(store.begin(move |db| {
            let started = std::time::Instant::now();
            let ids = record::intents(db, &place, &planned)?;
            tracing::debug!(
                account = %place.account,
                mailbox = %place.mailbox,
                messages = planned.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "sweep journaled"
            );
            Ok((planned, ids))
        }))
    }

    /// Waits for a write [`begin_journal`](Self::begin_journal) started; gives the messages
    /// back, with whether anything was written.
    pub(super) async fn end_journal(
        &mut self,
        write: JournalWrite,
    ) -> Result<(Vec<MessageResult>, bool), StateError> {
        let (planned, ids) = write.wait().await?;
        let wrote = ids.wrote();
        self.intents.extend(ids);
        Ok((planned, wrote))
    }

    /// A write that really reaches the disk (the mailbox's last activity), before commands
    /// for which no intent was written.
    pub(super) async fn probe(&mut self) -> Result<(), StateError> {
        if self.dry_run {
            return Ok(());
        }
        let (store, place) = self.writable()?;
        store
            .call(move |db| db.touch(&place.account, &place.mailbox))
            .await
    }

    /// Makes the batch's fences durable, before its copy-based commands (see
    /// `crate::state::Transfer`): without them, a crash could not tell whether a copy was made.
    pub(super) async fn fence(&mut self, fences: Vec<Fence>) -> Result<(), StateError> {
        if self.dry_run || fences.is_empty() {
            return Ok(());
        }
        let (store, place) = self.writable()?;
        let range = self.intents.range().ok_or_else(|| {
            StateError::Corrupt("copies to fence without intents in the journal".into())
        })?;
        store
            .call(move |db| record::fences(db, &place, range, &fences))
            .await
    }

    /// Keeps the COPYUID answers of the batch's commands, to be written with its results.
    /// They replace the previous batch's, whose results were all written before this batch's
    /// commands went out (kept for the whole pass, a million messages' placements took 70 MB).
    pub(super) fn copied(&mut self, copied: Vec<Copied>) {
        if self.dry_run {
            return;
        }
        let mut placed = Placements::default();
        placed.add(&copied);
        self.placed = std::sync::Arc::new(placed);
        if copied.is_empty() {
            return;
        }
        if let Some(intents) = self.intents.range() {
            self.copies = Some(Copies { intents, copied });
        }
    }

    /// Takes a message's result; written (then reported) with others a batch at a time.
    pub(super) async fn message<R: Report + ?Sized>(
        &mut self,
        result: MessageResult,
        report: &mut R,
    ) -> Result<(), StateError> {
        self.pending.push(result);
        if self.pending.len() >= RESULTS_BATCH {
            self.flush(report).await?;
        }
        Ok(())
    }

    /// Writes the buffered results in one transaction (outcomes, flag changes, applied
    /// pairs) and reports them while the write runs. They are reported even when the write
    /// failed: what was done on the server stays true.
    pub(super) async fn flush<R: Report + ?Sized>(
        &mut self,
        report: &mut R,
    ) -> Result<(), StateError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::sync::Arc::new(std::mem::take(&mut self.pending));
        // The write runs on the blocking pool while the results are reported here.
        let written = if self.dry_run || self.place.is_none() {
            None
        } else {
            let (store, place) = self.writable()?;
            let intents = self.intents.take(pending.iter().map(|r| r.uid.get()));
            let copies = self.copies.take();
            let batch = pending.clone();
            let placed = self.placed.clone();
            Some(store.begin(move |db| {
                record::results(db, &place, &batch, &intents, copies.as_ref(), &placed)
            }))
        };
        for r in pending.iter() {
            report.message(r);
        }
        match written {
            Some(write) => write.wait().await,
            None => Ok(()),
        }
    }

    /// Starts writing the results of `waiting` as `expected` says they will be, while the
    /// batch's closing removal runs on the server (`Executor::run_ahead`): one transaction,
    /// kept only if [`settle`](Self::settle) is told that the removal ended as expected, and
    /// never holding the state's write lock longer than [`record::AHEAD_HOLD`]. `None`: nothing
    /// to write (a dry run, no state), fewer results than [`record::AHEAD_MIN`], or the state
    /// cannot be written (the usual write after the removal will say so).
    pub(super) fn write_ahead(&mut self, waiting: &Arc<Waiting>, expected: &Run) -> Option<Ahead> {
        if self.dry_run || self.place.is_none() || waiting.count() < record::AHEAD_MIN {
            return None;
        }
        let (store, place) = self.writable().ok()?;
        let copies = if expected.copied.is_empty() {
            None
        } else {
            self.intents.range().map(|intents| Copies {
                intents,
                copied: expected.copied.clone(),
            })
        };
        let mut placed = Placements::default();
        placed.add(&expected.copied);
        let intents = self.intents.take(waiting.uids());
        let outcomes: HashMap<Uid, Outcome> = expected
            .outcomes
            .iter()
            .map(|o| (o.uid, o.clone()))
            .collect();
        let waiting = waiting.clone();
        let (verdict, told) = std::sync::mpsc::channel();
        let written = store.begin(move |db| {
            let results = waiting.results().map(|mut r| {
                let outcome = outcomes.get(&r.uid).cloned();
                super::apply_outcome(&mut r, outcome);
                r
            });
            let copies = copies.as_ref();
            let hold = record::AHEAD_HOLD;
            let kept =
                record::results_ahead(db, &place, results, &intents, copies, &placed, &told, hold)?;
            Ok((kept, intents))
        });
        Some(Ahead {
            written,
            verdict,
            shown: expected.copied.len(),
        })
    }

    /// Tells a write-ahead whether the last commands ended as it was told (`as_told`), with
    /// the COPYUID answers they added to the run's (`copied`), and waits for it. `Ok(true)`:
    /// the results are written, only reporting them is left. `Ok(false)`: nothing was written
    /// (the commands did not end as told, or the lock would have been held too long); the
    /// intents are back, for the usual write.
    pub(super) async fn settle(
        &mut self,
        ahead: Ahead,
        as_told: bool,
        copied: &[Copied],
    ) -> Result<bool, StateError> {
        let later = as_told.then(|| copied.get(ahead.shown..).unwrap_or_default().to_vec());
        // The writer may have given up already (and dropped its end): nothing to tell then.
        let _ = ahead.verdict.send(later);
        let (kept, intents) = ahead.written.wait().await?;
        if !kept {
            self.intents.extend(intents);
        }
        Ok(kept)
    }

    /// The store and place every write needs.
    fn writable(&self) -> Result<(Store, Place), StateError> {
        match (&self.store, &self.place) {
            (Some(store), Some(place)) => Ok((store.clone(), place.clone())),
            _ => Err(StateError::Corrupt(
                "a pass that changes the server needs a state database".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::record::tests::{inbox, move_to_done, result};
    use super::*;

    fn waiting(n: usize) -> Arc<Waiting> {
        let mut w = Waiting::default();
        for uid in 1..=n as u32 {
            w.push(result(uid, move_to_done(), None));
        }
        Arc::new(w)
    }

    /// A batch below [`record::AHEAD_MIN`] results (the daemon's new mail) is written after
    /// its commands, so that it never holds the state's write lock through a server round
    /// trip; from the minimum on, it is written ahead, and rolled back when the commands do
    /// not end as told.
    #[tokio::test]
    async fn only_batches_of_the_minimum_or_more_are_written_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = Sink::new(Some(Store::new(dir.path())), Some(inbox()), false);
        let run = Run {
            outcomes: vec![],
            copied: vec![],
        };
        assert!(sink.write_ahead(&waiting(1), &run).is_none());
        assert!(
            sink.write_ahead(&waiting(record::AHEAD_MIN - 1), &run)
                .is_none()
        );
        let ahead = sink
            .write_ahead(&waiting(record::AHEAD_MIN), &run)
            .expect("written ahead");
        assert!(!sink.settle(ahead, false, &[]).await.unwrap());
        let mut dry = Sink::new(Some(Store::new(dir.path())), Some(inbox()), true);
        assert!(dry.write_ahead(&waiting(record::AHEAD_MIN), &run).is_none());
    }
}
