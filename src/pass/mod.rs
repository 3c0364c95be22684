//! One pass of the rules over one mailbox: select, search, fetch in chunks, evaluate, execute,
//! with the state database around it. The same pass serves `imapsort sweep` (all rules,
//! trigger `None`) and the daemon (periodic sweeps with trigger `Sweep`; new mail with
//! trigger `New` over `UID <last+1>:*`).
//!
//! ```text
//! open     SELECT, the mailbox's state row (first start, UIDVALIDITY change)     open.rs
//! run:
//!   SELECT mailbox (UIDVALIDITY must be the one the sink writes under)
//!   UID SEARCH [UID <scope>] UNDELETED <push-down>   candidates (a superset; see imap::search)
//!   per chunk of 500 candidates:
//!     UID FETCH <chunk> (UID [FLAGS] [RFC822.SIZE] [INTERNALDATE] BODY.PEEK[HEADER.FIELDS (...)])
//!       (pipelined: up to FETCH_WINDOW chunks' FETCHes are out while one is evaluated)
//!     applied rules from the state (sink.applied); RuleSet::evaluate each message
//!     after a chunk, once the last journal write ended (else up to 5,000 wait): the decided
//!       messages' intents to the journal (sink.begin_journal), written while the next
//!       chunks are evaluated; the applied rules are read meanwhile on a second, read-only
//!       connection
//!   at the end of the pass (or every EXEC_BATCH changed messages), unless dry-run:
//!     the batch's intents durable (or, without any, a probe write): else nothing is sent
//!     carry out the plans (grouped commands, see crate::execute)         target.rs
//!     every message's result to the state, then to the Report            sink.rs, record.rs
//! ```
//!
//! Exactly once: no command that changes the server goes out unless the state database took a
//! write just before it (the batch's intents, which say what is about to happen); a failed
//! write ends the pass before any command. Evaluation is told which rules were already
//! applied to a message, so a rule's actions are never repeated. Open intents a crash or a
//! lost connection left are settled by `crate::recover` before the mailbox is acted on again.
//!
//! At most one chunk of messages is held while it is evaluated (the answers still out wait in
//! the socket), and `FETCH_WINDOW - 1` more while a batch is carried out mid-pass, so memory
//! stays flat however big the mailbox.
//! Messages marked `\Deleted` are left alone: another client is about to expunge them, and a
//! move without UIDPLUS leaves its originals marked so (sweeping them again would copy twice).

mod fetch;
pub(crate) mod open;
pub(crate) mod record;
pub mod sink;
pub mod target;
mod waiting;

use std::collections::HashMap;

use jiff::Timestamp;
use tracing::Instrument;

use crate::execute::{Executor, Outcome, Universe, group};
use crate::imap::fetch::{FETCH_CHUNK, FetchSpec};
use crate::imap::search;
use crate::imap::uidset::{MAX_SET_CHARS, Uid, UidSet};
use crate::imap::{FetchedItem, ImapError, MailboxInfo, Session};
use crate::rules::ast::Trigger;
use crate::rules::{EvalContext, FinalKind, Gist, Plan, RuleSet};
use crate::state::StateError;
use crate::vocab::MailboxName;
use fetch::{Fetch, answer, send_fetch};
use sink::Sink;
use waiting::Waiting;

/// Which messages of the mailbox a pass looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every message (a sweep).
    All,
    /// UIDs from this one up (`UID n:*`): new mail since the last handled UID.
    From(Uid),
    /// Exactly these UIDs.
    Uids(UidSet),
}

/// Where and how to run a pass.
#[derive(Clone, Debug)]
pub struct PassOptions<'a> {
    /// The account's name (rules naming accounts, logs, results).
    pub account: &'a str,
    /// The mailbox to sweep.
    pub mailbox: &'a MailboxName,
    /// The account's watch list: the default `mailboxes` of a rule.
    pub watch: &'a [MailboxName],
    /// `None`: rules of both triggers (`imapsort sweep`).
    pub trigger: Option<Trigger>,
    /// Resolved trash mailbox (configured, else SPECIAL-USE `\Trash`, else "Trash").
    pub trash: &'a str,
    /// Resolved archive mailbox (configured, else SPECIAL-USE `\Archive`, else "Archive").
    pub archive: &'a str,
    /// Age conditions are measured from here (one instant for the whole pass).
    pub now: Timestamp,
    pub scope: Scope,
    /// Evaluate and report, but send no command that changes anything.
    pub dry_run: bool,
    /// The caller's SELECT of the mailbox, when it is still the selected one (it was just
    /// opened and recovered): the pass does not SELECT it again.
    pub selected: Option<&'a MailboxInfo>,
    /// Keep each matched message's sender and subject ([`MessageResult::gist`]) for a report
    /// that prints them (`sweep`'s text output); without it the gist is empty, and a batch of
    /// waiting messages holds no text for it (a quarter of a million messages: megabytes).
    pub gists: bool,
}

/// What happened to one message that some rule matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageResult {
    pub uid: Uid,
    /// As written, angle brackets included.
    pub message_id: Option<String>,
    /// The first From address, lower-cased, for the history (not kept while waiting for
    /// the batch's commands: the entry is written before them).
    pub from: Option<String>,
    /// The decoded Subject, for the history (as `from`).
    pub subject: Option<String>,
    /// Sender and subject, for text output (JSON and the state use the Message-ID); empty
    /// unless [`PassOptions::gists`].
    pub gist: Gist,
    /// Names of the rules that matched, in order.
    pub rules: Vec<String>,
    /// Only real changes; empty when the rules want nothing done (already applied, flags set).
    pub plan: Plan,
    /// Evaluation warnings (skipped actions, several From headers) and execution warnings.
    pub warnings: Vec<String>,
    /// The plan was carried out completely (always false in a dry run or for an empty plan).
    pub done: bool,
    /// Why carrying it out failed, if it did.
    pub error: Option<String>,
}

impl MessageResult {
    /// Whether the message was (or in a dry run, would be) changed on the server.
    pub fn acted_on(&self) -> bool {
        !self.plan.is_empty()
    }

    /// Whether the plan takes the message out of the mailbox (move, archive, trash, delete).
    pub fn leaves(&self) -> bool {
        self.plan.final_action.as_ref().is_some_and(|f| {
            matches!(
                f.action,
                FinalKind::Move | FinalKind::Archive | FinalKind::Trash | FinalKind::Delete
            )
        })
    }
}

/// Totals of one pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages in scope (not `\Deleted`); those the search ruled out count as examined.
    pub examined: u64,
    /// Messages some rule matched.
    pub matched: u64,
    /// Messages whose final action took them out of the mailbox (done, or planned in a dry
    /// run).
    pub moved: u64,
    /// Messages whose plan failed (wholly or partly).
    pub errors: u64,
    /// The highest UID in scope, for the daemon's "last handled UID".
    pub highest_uid: Option<Uid>,
}

impl Summary {
    pub fn add(&mut self, other: &Summary) {
        self.examined += other.examined;
        self.matched += other.matched;
        self.moved += other.moved;
        self.errors += other.errors;
        self.highest_uid = self.highest_uid.max(other.highest_uid);
    }
}

/// Where a pass's results go once the state database has them: the daemon's log, the sweep
/// command's output.
pub trait Report {
    /// A chunk was fetched and evaluated, or a batch's commands are still under way (every
    /// few seconds): progress (the daemon's watchdog), however long the whole pass takes.
    fn progress(&mut self) {}

    /// A matched message's result, after the state database recorded it (or failed to: the
    /// pass then ends with [`PassError::State`]).
    fn message(&mut self, result: &MessageResult);
}

/// Why a pass stopped. Results handed to the report before the error stand.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("cannot select mailbox {mailbox}")]
    Select {
        mailbox: MailboxName,
        #[source]
        source: ImapError,
    },
    #[error("searching mailbox {mailbox} failed")]
    Search {
        mailbox: MailboxName,
        #[source]
        source: ImapError,
    },
    #[error("fetching from mailbox {mailbox} failed")]
    Fetch {
        mailbox: MailboxName,
        #[source]
        source: ImapError,
    },
    /// The connection broke while plans were carried out; what happened to the command in
    /// flight is for `crate::recover` to find out.
    #[error("the connection broke while acting on mailbox {mailbox}")]
    Execute {
        mailbox: MailboxName,
        #[source]
        source: ImapError,
    },
    /// The state database could not be written: nothing more is sent.
    #[error("the state database {} could not be written", .file.display())]
    State {
        file: std::path::PathBuf,
        #[source]
        source: StateError,
    },
    /// The server renumbered the mailbox since the caller opened it: the state's UIDs are
    /// about other messages now; open it again.
    #[error("the UIDVALIDITY of {mailbox} changed")]
    ValidityChanged { mailbox: MailboxName },
}

impl PassError {
    /// The IMAP error underneath, if it is one.
    pub fn imap(&self) -> Option<&ImapError> {
        match self {
            PassError::Select { source, .. }
            | PassError::Search { source, .. }
            | PassError::Fetch { source, .. }
            | PassError::Execute { source, .. } => Some(source),
            PassError::State { .. } | PassError::ValidityChanged { .. } => None,
        }
    }
}

/// The `when` of every rule that could run in this pass (account, mailbox, trigger).
fn applicable_conditions<'r>(
    rules: &'r RuleSet,
    opts: &PassOptions<'_>,
) -> Vec<&'r crate::rules::ast::Condition> {
    rules
        .rules()
        .enumerate()
        .filter(|(i, _)| {
            rules.applies_to(*i, Some(opts.account), opts.mailbox, opts.watch)
                && opts.trigger.is_none_or(|t| rules.triggers(*i).contains(&t))
        })
        .map(|(_, r)| &r.when)
        .collect()
}

/// The `UID SEARCH` criteria for a scope, ending in `keys` (`ALL`, `DELETED`, `UNDELETED ...`).
fn criteria(scope: &Scope, keys: &str) -> Vec<String> {
    match scope {
        Scope::All => vec![keys.to_owned()],
        Scope::From(uid) => vec![format!("UID {uid}:* {keys}")],
        Scope::Uids(set) => set
            .chunks(MAX_SET_CHARS, u64::MAX)
            .into_iter()
            .map(|c| format!("UID {c} {keys}"))
            .collect(),
    }
}

/// The messages in scope (not `\Deleted`), and what is known about which messages exist.
async fn in_scope(
    session: &mut Session,
    scope: &Scope,
) -> Result<(UidSet, Option<Universe>), ImapError> {
    let lowest = match scope {
        Scope::All => Uid::new(1),
        Scope::From(from) => Some(*from),
        // Between explicit UIDs anything may exist: no universe.
        Scope::Uids(_) => None,
    };
    let Some(lowest) = lowest else {
        let undeleted = search_uids(session, &criteria(scope, "UNDELETED"), scope).await?;
        return Ok((undeleted, None));
    };
    let existing = search_uids(session, &criteria(scope, "ALL"), scope).await?;
    let Some((_, highest)) = existing.ranges().last() else {
        return Ok((existing, None));
    };
    let deleted = search_uids(session, &criteria(scope, "DELETED"), scope).await?;
    let mut undeleted = existing.clone();
    undeleted.remove_all(&deleted);
    let universe = Universe {
        existing,
        known: (lowest, highest),
    };
    Ok((undeleted, Some(universe)))
}

/// Runs one pass. Every matched message's result goes to the state (`sink`), then to
/// `report`, batch by batch. Generic over the report (not `dyn`) so that a `Send` report
/// keeps the pass `Send`, as the daemon's spawned workers need.
pub async fn run<R: Report + ?Sized>(
    session: &mut Session,
    rules: &RuleSet,
    opts: &PassOptions<'_>,
    executor: &mut Executor,
    sink: &mut Sink,
    report: &mut R,
) -> Result<Summary, PassError> {
    let mailbox = opts.mailbox.clone();
    let started = std::time::Instant::now();
    let info = match opts.selected {
        Some(info) if session.selected() == Some(opts.mailbox.as_str()) => *info,
        _ => session
            .select(opts.mailbox)
            .await
            .map_err(|source| PassError::Select {
                mailbox: mailbox.clone(),
                source,
            })?,
    };
    sink.check_selected(&info)?;
    let mut summary = Summary::default();

    let conditions = applicable_conditions(rules, opts);
    let query = search::superset(conditions.iter().copied(), opts.now);
    let search_err = |source| PassError::Search {
        mailbox: mailbox.clone(),
        source,
    };

    // Everything in scope: counted as examined, and its highest UID reported.
    let (in_scope, mut universe) = in_scope(session, &opts.scope).await.map_err(search_err)?;
    summary.examined = in_scope.len();
    summary.highest_uid = in_scope.ranges().last().map(|(_, hi)| hi);
    let spec = FetchSpec::new(&rules.needs());
    let candidates = if query.is_nothing() {
        UidSet::new()
    } else if query.is_all() {
        in_scope
    } else {
        if opts.scope == Scope::All
            && query.reads_headers()
            && session.is_dovecot()
            && let (Some(section), Some((lowest, _))) =
                (spec.header_fields(), in_scope.ranges().next())
        {
            prime_cache(session, lowest, section)
                .await
                .map_err(search_err)?;
        }
        let keys = format!("UNDELETED {query}");
        search_uids(session, &criteria(&opts.scope, &keys), &opts.scope)
            .await
            .map_err(search_err)?
    };
    tracing::debug!(
        account = %opts.account,
        mailbox = %opts.mailbox,
        query = %query,
        examined = summary.examined,
        candidates = candidates.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sweep search"
    );
    if candidates.is_empty() {
        return Ok(summary);
    }

    let delimiter = session.delimiter().await.ok().flatten();
    // Plans wait until the pass ends (or EXEC_BATCH messages want changes), so each
    // destination gets one command for many messages rather than one per fetch chunk.
    let mut held = Held::default();
    let mut pass = Pass {
        session,
        opts,
        executor,
        sink,
        report,
        summary: &mut summary,
    };
    let returning = match pass.sink.returning().await {
        Ok(r) => r,
        Err(e) => return Err(pass.sink.failed(e)),
    };
    let chunks = candidates.chunks(usize::MAX, FETCH_CHUNK);
    // The first FETCH_WINDOW chunks' FETCHes go out at once; each answer read sends the
    // next, so the server always has a chunk to read while imapsort parses and evaluates.
    let mut in_flight = InFlight::default();
    for chunk in chunks.iter().take(FETCH_WINDOW) {
        let sent = send_fetch(pass.session, &spec, chunk, universe.as_ref()).await;
        in_flight.0.push_back(sent);
    }
    for (i, chunk) in chunks.iter().enumerate() {
        let Some(current) = in_flight.0.pop_front() else {
            break;
        };
        let items = match answer(pass.session, current).await {
            Ok(items) => {
                let out = &chunks[i + 1..chunks.len().min(i + FETCH_WINDOW)];
                in_flight.sort_out(items, chunk, out)
            }
            Err(source) => {
                // The FETCHes still out are answered first, so the connection stays in
                // step; what was decided so far is still carried out (or reported failed).
                in_flight.drain(pass.session).await;
                pass.flush(&mut held, universe.as_mut()).await?;
                return Err(PassError::Fetch { mailbox, source });
            }
        };
        if let Some(following) = chunks.get(i + FETCH_WINDOW) {
            let sent = send_fetch(pass.session, &spec, following, universe.as_ref()).await;
            in_flight.0.push_back(sent);
        }
        // Unsolicited FETCH responses for other messages may be mixed in.
        let views = spec.views(items, chunk);
        let ids: Vec<(Uid, Option<String>)> = views
            .iter()
            .map(|(uid, v)| (*uid, v.message_id().map(str::to_owned)))
            .collect();
        let applied = match pass.sink.applied(ids).await {
            Ok(applied) => applied,
            Err(e) => {
                // Nothing is decided without knowing what was done before; the FETCHes in
                // flight are answered first, so the connection stays in step.
                in_flight.drain(pass.session).await;
                return Err(pass.sink.failed(e));
            }
        };
        pass.report.progress();
        for (uid, view) in &views {
            // A message `imapsort undo` put back is not new mail (RULES.md); sweeps treat it
            // like any message, the undone rules passed by. One an interrupted undo is still
            // moving back is left for the undo to settle.
            if opts.trigger == Some(Trigger::New)
                && applied
                    .get(uid)
                    .is_some_and(|a| a.contains(crate::state::RETURNED))
            {
                continue;
            }
            if view.message_id().is_some_and(|id| returning.contains(id)) {
                continue;
            }
            let ctx = EvalContext {
                account: Some(opts.account),
                mailbox: opts.mailbox,
                watch: opts.watch,
                trigger: opts.trigger,
                now: opts.now,
                trash: opts.trash,
                archive: opts.archive,
                delimiter,
                applied: applied.get(uid),
            };
            let mut ev = rules.evaluate(view, &ctx);
            if ev.matched.is_empty() {
                continue;
            }
            if let Some(done) = applied.get(uid) {
                // Copies an interrupted earlier run already made (crate::recover).
                ev.plan
                    .copy
                    .retain(|dest| !done.contains(&crate::state::copied_marker(dest)));
            }
            for w in &ev.warnings {
                tracing::warn!(
                    account = %opts.account,
                    mailbox = %opts.mailbox,
                    uid = uid.get(),
                    "{w}"
                );
            }
            held.unjournaled.push(MessageResult {
                uid: *uid,
                message_id: view.message_id().map(str::to_owned),
                from: view.from_address().map(str::to_owned),
                subject: view.subject().map(str::to_owned),
                gist: if opts.gists {
                    Gist::of(view)
                } else {
                    Gist::default()
                },
                rules: ev.matched.into_iter().map(|m| m.rule).collect(),
                plan: ev.plan,
                warnings: ev.warnings,
                done: false,
                error: None,
            });
        }
        // The journal's intents, written while the next chunks are fetched and evaluated
        // (the applied rules are read on a connection of their own, so they do not wait for
        // the write): a new write starts once the last one ended, so the writes keep pace
        // with the evaluation, and the batch's commands wait only for the last chunk's.
        // Up to JOURNAL_BATCH messages may wait for a slow write; then the pass waits too.
        let idle = held.writing.as_ref().is_none_or(|w| w.0.is_finished());
        if ((idle && !held.unjournaled.is_empty()) || held.unjournaled.len() >= JOURNAL_BATCH)
            && let Err(e) = held.journal_behind(opts, pass.sink).await
        {
            in_flight.drain(pass.session).await;
            return Err(e);
        }
        if opts.dry_run || held.acted_on() >= EXEC_BATCH {
            if !opts.dry_run {
                // No other command may go out while a FETCH is: take their answers first.
                in_flight.settle(pass.session).await;
            }
            pass.flush(&mut held, universe.as_mut()).await?;
        }
    }
    tracing::debug!(
        account = %opts.account,
        mailbox = %opts.mailbox,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sweep fetched and evaluated"
    );
    pass.flush(&mut held, universe.as_mut()).await?;
    tracing::debug!(
        account = %opts.account,
        mailbox = %opts.mailbox,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sweep done"
    );
    Ok(summary)
}

/// How many chunks' FETCHes are out at a time. More than two, so that the server is not idle
/// while imapsort reads and parses one answer before sending the next command; few, so that
/// what must be held when a batch is carried out mid-pass (the answers of the FETCHes still
/// out) stays small: `FETCH_WINDOW - 1` chunks of header blocks.
const FETCH_WINDOW: usize = 4;

/// The chunks' FETCHes sent and not yet taken, oldest first, and what came early for them.
#[derive(Default)]
struct InFlight(std::collections::VecDeque<Fetch>, Vec<FetchedItem>);

impl InFlight {
    /// The items of `chunk`: those that came early (with an earlier chunk's answer) and those
    /// of its own answer. Dovecot runs pipelined FETCHes at once and may send a later chunk's
    /// messages before an earlier chunk's tagged OK; those are kept for their chunk (`later`:
    /// the chunks whose FETCHes are still out) rather than dropped. Items of no chunk (unsolicited flag
    /// updates) are left to [`FetchSpec::views`], which ignores them.
    fn sort_out(
        &mut self,
        items: Vec<FetchedItem>,
        chunk: &UidSet,
        later: &[UidSet],
    ) -> Vec<FetchedItem> {
        let early = std::mem::take(&mut self.1);
        let mut mine = Vec::with_capacity(items.len());
        for item in early.into_iter().chain(items) {
            let uid = item.uid().and_then(Uid::new);
            match uid {
                Some(u) if !chunk.contains(u) && later.iter().any(|c| c.contains(u)) => {
                    self.1.push(item);
                }
                _ => mine.push(item),
            }
        }
        mine
    }

    /// Reads every answer still out and drops it (the pass is ending).
    async fn drain(&mut self, session: &mut Session) {
        for sent in self.0.drain(..) {
            let _ = answer(session, sent).await;
        }
    }

    /// Reads every answer still out and keeps it, so that other commands may go out.
    async fn settle(&mut self, session: &mut Session) {
        for slot in self.0.iter_mut() {
            if let Fetch::Sent(_) = slot {
                let sent = std::mem::replace(slot, Fetch::Answered(Ok(Vec::new())));
                *slot = Fetch::Answered(answer(session, sent).await);
            }
        }
    }
}

/// How many messages with changes may wait before their commands are sent: a pass of a
/// mailbox up to this size is carried out at its end, in one command per destination (and
/// line); beyond it, in batches of this many, so memory stays bounded (about 125 bytes per
/// waiting message, see [`waiting`]).
pub const EXEC_BATCH: usize = 250_000;

/// How many decided messages may wait for a journal write under way before the pass waits
/// for it (a write takes every decided message not yet journaled, in one transaction).
const JOURNAL_BATCH: usize = 5_000;

/// What a pass has decided and not yet carried out.
#[derive(Default)]
struct Held {
    /// Decided, but their intents not yet in the journal.
    unjournaled: Vec<MessageResult>,
    /// Their intents being written while the pass goes on (at most one write at a time), and
    /// how many messages it holds.
    writing: Option<(sink::JournalWrite, usize)>,
    /// Journaled, waiting for the batch's commands.
    waiting: Waiting,
    /// Some intent of the waiting messages was written: the state took a write for this
    /// batch (else a probe write goes first).
    journaled: bool,
}

impl Held {
    /// Messages decided that want changes, journaled or not.
    fn acted_on(&self) -> usize {
        self.waiting.acted_on() + self.unjournaled.len() + self.writing.as_ref().map_or(0, |w| w.1)
    }

    /// Waits for the journal write under way, if any; its messages then wait.
    async fn written(&mut self, sink: &mut Sink) -> Result<(), PassError> {
        if let Some((write, _)) = self.writing.take() {
            let (decided, wrote) = sink.end_journal(write).await.map_err(|e| sink.failed(e))?;
            self.journaled |= wrote;
            let waiting = &mut self.waiting;
            decided.into_iter().for_each(|r| waiting.push(r));
        }
        Ok(())
    }

    /// Starts journaling the unjournaled messages' intents, after the write before it
    /// ended, and returns while it runs: SQLite writes one batch of intents while the pass
    /// evaluates the next (a dry run writes nothing).
    async fn journal_behind(
        &mut self,
        opts: &PassOptions<'_>,
        sink: &mut Sink,
    ) -> Result<(), PassError> {
        self.written(sink).await?;
        let decided = std::mem::take(&mut self.unjournaled);
        if opts.dry_run || decided.is_empty() {
            let waiting = &mut self.waiting;
            decided.into_iter().for_each(|r| waiting.push(r));
            return Ok(());
        }
        let n = decided.len();
        let write = sink.begin_journal(decided).map_err(|e| sink.failed(e))?;
        self.writing = Some((write, n));
        Ok(())
    }

    /// Journals every decided message's intents and waits until they are durable: before
    /// the batch's commands.
    async fn journal(&mut self, opts: &PassOptions<'_>, sink: &mut Sink) -> Result<(), PassError> {
        self.journal_behind(opts, sink).await?;
        self.written(sink).await
    }
}

/// How often a long step (a batch's commands) reports progress while it runs.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Awaits `fut`, telling `report` of progress every [`PROGRESS_EVERY`] until it is done.
async fn with_progress<T, R: Report + ?Sized>(report: &mut R, fut: impl Future<Output = T>) -> T {
    tokio::pin!(fut);
    let start = tokio::time::Instant::now() + PROGRESS_EVERY;
    let mut tick = tokio::time::interval_at(start, PROGRESS_EVERY);
    loop {
        tokio::select! {
            r = &mut fut => return r,
            _ = tick.tick() => report.progress(),
        }
    }
}

/// What a pass works with while it carries out its batches.
struct Pass<'p, 'o, R: Report + ?Sized> {
    session: &'p mut Session,
    opts: &'p PassOptions<'o>,
    executor: &'p mut Executor,
    sink: &'p mut Sink,
    report: &'p mut R,
    summary: &'p mut Summary,
}

impl<R: Report + ?Sized> Pass<'_, '_, R> {
    /// Carries out the pending plans (unless dry-run), their intents durable first, and hands
    /// every result to the state and the report. A state write that fails ends the pass:
    /// before the commands, none are sent; after them, the results are still reported.
    async fn flush(
        &mut self,
        held: &mut Held,
        universe: Option<&mut Universe>,
    ) -> Result<(), PassError> {
        let opts = self.opts;
        held.journal(opts, self.sink).await?;
        let waiting = std::sync::Arc::new(std::mem::take(&mut held.waiting));
        let journaled = std::mem::take(&mut held.journaled);
        let mut outcomes: Option<HashMap<Uid, Outcome>> = None;
        // The results already written, while the batch's closing removal ran.
        let mut written_ahead: Result<bool, StateError> = Ok(false);
        if !opts.dry_run && waiting.acted_on() > 0 {
            let mut program = group(&waiting.plans(), self.executor.caps());
            program.atomic = waiting.without_message_id();
            // Destinations copied into exist and are fenced, durably, before any command
            // changes a message: after a crash, recovery looks for the copies above the
            // fence (crate::recover).
            // The executor's own lines (a destination created again, a step refused) carry
            // the account and mailbox through this span.
            let span =
                tracing::warn_span!("execute", account = %opts.account, mailbox = %opts.mailbox);
            let prepare = self.executor.prepare(self.session, &program);
            let fences = with_progress(&mut *self.report, prepare.instrument(span.clone())).await;
            if !fences.is_empty() {
                self.sink
                    .fence(fences)
                    .await
                    .map_err(|e| self.sink.failed(e))?;
            } else if !journaled {
                // Flags only, no intent written: the state must take a write before the
                // server is changed, or what is done could not be recorded.
                self.sink.probe().await.map_err(|e| self.sink.failed(e))?;
            }
            let started = std::time::Instant::now();
            // A batch's commands can take minutes on a big mailbox (each EXPUNGE line costs
            // seconds there): progress meanwhile, or the daemon's watchdog would take the
            // worker for a stuck one. Each command has its own timeout.
            // The results are written while the server runs the batch's last commands (the
            // shared removal of moved originals, or a closing UID MOVE), and kept if those
            // succeed (Executor::run_ahead): the write no longer follows the last command.
            let sink = &mut *self.sink;
            let mut ahead = None;
            let mut write_ahead = |expected: &crate::execute::Run| {
                ahead = sink.write_ahead(&waiting, expected);
            };
            let run = self
                .executor
                .run_ahead(self.session, &program, universe, &mut write_ahead);
            let (run, as_told) = with_progress(&mut *self.report, run.instrument(span)).await;
            if let Some(ahead) = ahead {
                written_ahead = self.sink.settle(ahead, as_told, &run.copied).await;
            }
            if !matches!(written_ahead, Ok(true)) {
                self.sink.copied(run.copied);
            }
            tracing::debug!(
                account = %opts.account,
                mailbox = %opts.mailbox,
                steps = program.steps.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "sweep executed"
            );
            outcomes = Some(run.outcomes.into_iter().map(|o| (o.uid, o)).collect());
        }
        let mut failed: Option<PassError> = None;
        let ahead = match written_ahead {
            Ok(kept) => kept,
            Err(e) => {
                failed = Some(self.sink.failed(e));
                false
            }
        };
        let recording = std::time::Instant::now();
        let results = waiting.count();
        for mut r in waiting.results() {
            if let Some(outcomes) = &mut outcomes {
                let uid = r.uid;
                apply_outcome(&mut r, outcomes.remove(&uid));
            }
            self.summary.matched += 1;
            if r.error.is_some() {
                self.summary.errors += 1;
            } else if r.leaves() && (r.done || opts.dry_run) {
                self.summary.moved += 1;
            }
            if failed.is_some() || ahead {
                // Written ahead; or the state took no more, and the rest is only reported.
                self.report.message(&r);
            } else if let Err(e) = self.sink.message(r, &mut *self.report).await {
                failed = Some(self.sink.failed(e));
            }
        }
        if failed.is_none()
            && let Err(e) = self.sink.flush(&mut *self.report).await
        {
            failed = Some(self.sink.failed(e));
        }
        tracing::debug!(
            account = %opts.account,
            mailbox = %opts.mailbox,
            results,
            ahead,
            elapsed_ms = recording.elapsed().as_millis() as u64,
            "sweep recorded"
        );
        if let Some(e) = failed {
            return Err(e);
        }
        if !self.session.is_usable() {
            return Err(PassError::Execute {
                mailbox: opts.mailbox.clone(),
                source: ImapError::ConnectionLost(Some("while the plans were carried out".into())),
            });
        }
        Ok(())
    }
}

/// Moves a message's outcome into its result; a message without one (the executor reports
/// only errors and warnings) ran every step.
fn apply_outcome(r: &mut MessageResult, outcome: Option<Outcome>) {
    match outcome {
        Some(o) => {
            r.done = o.done();
            r.error = o.error;
            r.warnings.extend(o.warnings);
        }
        None => r.done = !r.plan.is_empty(),
    }
}

/// Before a sweep's header search on Dovecot: fetches the header fields the pass will ask
/// for, of one message (`lowest`, the oldest in scope), twice, so that the search caches them.
///
/// Dovecot caches a header field once some client has fetched it (its caching decision goes
/// from "no" to "temp"; fetched again for a message older than a week, to "yes"), and while it
/// parses a message's header, for a search too, it adds every field so decided to its cache.
/// Without this, on a mailbox whose fields no client fetched yet, the search caches only what
/// it searched (From), and the verifying FETCH of the candidates that follows makes Dovecot
/// read each candidate's file a second time for Message-ID and Subject (85 ms of a 10,000-
/// message one-sender sweep, docs/BENCHMARKS.md). The second FETCH is what Dovecot itself
/// would see moments later, when the verifying FETCH reads old mail: it turns "temp" into
/// "yes" for mail older than a week, which "temp" does not cache. Dovecot drops an unused
/// decision after about a month. Two round trips, one after the other: pipelined, Dovecot
/// may run the three commands at once, and the search would parse before the decision.
/// What they return is not used; a `NO` (the message expunged meanwhile) changes nothing.
async fn prime_cache(session: &mut Session, lowest: Uid, section: &str) -> Result<(), ImapError> {
    let items = format!("({section})");
    for _ in 0..2 {
        match session.uid_fetch(&lowest.to_string(), &items).await {
            Ok(_) => {}
            Err(e) if e.is_connection_fatal() => return Err(e),
            Err(_) => {}
        }
    }
    Ok(())
}

/// `UID SEARCH` for each criteria line, UIDs below a `From` scope's start dropped (`n:*`
/// always matches the highest UID, even when it is below `n`).
async fn search_uids(
    session: &mut Session,
    criteria: &[String],
    scope: &Scope,
) -> Result<UidSet, ImapError> {
    let mut set = UidSet::new();
    for c in criteria {
        for u in session.uid_search(c).await? {
            let Some(uid) = Uid::new(u) else { continue };
            if let Scope::From(from) = scope
                && uid < *from
            {
                continue;
            }
            set.insert(uid);
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_long_step_reports_progress_every_few_seconds_and_a_short_one_none() {
        #[derive(Default)]
        struct Count(u32);
        impl Report for Count {
            fn progress(&mut self) {
                self.0 += 1;
            }
            fn message(&mut self, _: &MessageResult) {}
        }
        let mut count = Count::default();
        let long = tokio::time::sleep(PROGRESS_EVERY * 3 + PROGRESS_EVERY / 2);
        with_progress(&mut count, async move {
            long.await;
            7
        })
        .await;
        assert_eq!(count.0, 3);
        let mut count = Count::default();
        let short = with_progress(&mut count, async { 7 }).await;
        assert_eq!((short, count.0), (7, 0));
    }

    #[test]
    fn search_criteria_per_scope() {
        assert_eq!(criteria(&Scope::All, "ALL"), ["ALL"]);
        let from = Scope::From(Uid::new(42).unwrap());
        assert_eq!(criteria(&from, "DELETED"), ["UID 42:* DELETED"]);
        let set: UidSet = "1:3,9".parse().unwrap();
        assert_eq!(
            criteria(&Scope::Uids(set), "UNDELETED SEEN"),
            ["UID 1:3,9 UNDELETED SEEN"]
        );
    }

    #[test]
    fn moved_counts_only_messages_that_leave() {
        let mut r = MessageResult {
            uid: Uid::new(1).unwrap(),
            message_id: None,
            from: None,
            subject: None,
            gist: Gist::default(),
            rules: vec!["r".into()],
            plan: Plan::default(),
            warnings: vec![],
            done: false,
            error: None,
        };
        assert!(!r.leaves() && !r.acted_on());
        r.plan.add_flags.push("\\Seen".into());
        assert!(!r.leaves() && r.acted_on());
        r.plan.final_action = Some(crate::rules::FinalAction {
            action: FinalKind::Delete,
            mailbox: None,
        });
        assert!(r.leaves());
    }
}
