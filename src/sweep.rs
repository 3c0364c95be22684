//! One pass of the rules over one mailbox: select, search, fetch in chunks, evaluate, execute.
//!
//! Used by `imapsort sweep` (all rules, trigger `None`) and by the daemon (periodic sweeps with
//! trigger `Sweep`; catch-up of new mail with trigger `New` over `UID <last+1>:*`).
//!
//! ```text
//! SELECT mailbox
//! UID SEARCH [UID <scope>] UNDELETED <push-down>   candidates (a superset; see imap::search)
//! per chunk of 500 candidates:
//!   UID FETCH <chunk> (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (...)])
//!     (the next chunk's FETCH is sent before this one is evaluated: pipelined)
//!   RuleSet::evaluate each message (what the sink says was already applied adds nothing)
//!   every 5,000 decided messages: their intents to the journal (sink.before_execute)
//! at the end of the pass (or every EXEC_BATCH changed messages), unless dry-run:
//!   carry out the plans (grouped commands, see crate::execute)
//!   hand every message's result to the sink
//! ```
//!
//! At most two chunks of messages are held at a time (one evaluated, the next arriving), so
//! memory stays flat however big the mailbox.
//! Messages marked `\Deleted` are left alone: another client is about to expunge them, and a
//! move without UIDPLUS leaves its originals marked so (sweeping them again would copy twice).

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

use crate::execute::{Executor, ImapTarget, Outcome, ServerCaps, Universe, group};
use crate::imap::fetch::{FETCH_CHUNK, FetchSpec};
use crate::imap::search;
use crate::imap::uidset::{MAX_SET_CHARS, Uid, UidSet};
use crate::imap::{ImapError, MailboxInfo, Session};
use crate::rules::ast::Trigger;
use crate::rules::{EvalContext, FinalKind, Plan, RuleSet};

#[path = "sweep/waiting.rs"]
mod waiting;
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
pub struct SweepOptions<'a> {
    /// The account's name (rules naming accounts, logs, results).
    pub account: &'a str,
    /// The mailbox to sweep (UTF-8, `/`-separated).
    pub mailbox: &'a str,
    /// The account's watch list: the default `mailboxes` of a rule.
    pub watch: &'a [String],
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
}

/// What happened to one message that some rule matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageResult {
    pub uid: Uid,
    /// As written, angle brackets included.
    pub message_id: Option<String>,
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
pub struct SweepSummary {
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

impl SweepSummary {
    pub fn add(&mut self, other: &SweepSummary) {
        self.examined += other.examined;
        self.matched += other.matched;
        self.moved += other.moved;
        self.errors += other.errors;
        self.highest_uid = self.highest_uid.max(other.highest_uid);
    }
}

/// What a pass asks of its caller: the state database in the daemon, output in the CLI.
pub trait SweepSink {
    /// Called once after SELECT (the daemon checks UIDVALIDITY here).
    fn selected(&mut self, _info: &MailboxInfo) {}

    /// The rules already applied to each of `uids` (absent: none). Those rules still match
    /// and still end evaluation, but add no actions.
    fn applied(&mut self, _uids: &[Uid]) -> HashMap<Uid, HashSet<String>> {
        HashMap::new()
    }

    /// Like [`applied`](Self::applied), given each message's Message-ID too, so a sink can
    /// check that what it recorded is about the same message. Defaults to `applied`.
    fn applied_to(&mut self, messages: &[(Uid, Option<&str>)]) -> HashMap<Uid, HashSet<String>> {
        let uids: Vec<Uid> = messages.iter().map(|(uid, _)| *uid).collect();
        self.applied(&uids)
    }

    /// Before their commands run (not in a dry run): the journal's intents for newly decided
    /// plans, a few thousand at a time (several calls may precede one batch's commands).
    fn before_execute(&mut self, _planned: &[MessageResult]) {}

    /// Every matched message of a chunk, after its commands ran.
    fn message(&mut self, result: &MessageResult);
}

/// Why a pass stopped. Results handed to the sink before the error stand.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("cannot select mailbox {mailbox}")]
    Select {
        mailbox: String,
        #[source]
        source: ImapError,
    },
    #[error("searching mailbox {mailbox} failed")]
    Search {
        mailbox: String,
        #[source]
        source: ImapError,
    },
    #[error("fetching from mailbox {mailbox} failed")]
    Fetch {
        mailbox: String,
        #[source]
        source: ImapError,
    },
}

impl SweepError {
    /// The IMAP error underneath.
    pub fn imap(&self) -> &ImapError {
        match self {
            SweepError::Select { source, .. }
            | SweepError::Search { source, .. }
            | SweepError::Fetch { source, .. } => source,
        }
    }
}

/// The `when` of every rule that could run in this pass (account, mailbox, trigger).
fn applicable_conditions<'r>(
    rules: &'r RuleSet,
    opts: &SweepOptions<'_>,
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

/// Runs one pass. Every matched message goes to `sink.message`, chunk by chunk. Generic over
/// the sink (not `dyn`) so that a `Send` sink keeps the pass `Send`, as the daemon's spawned
/// workers need.
pub async fn sweep_mailbox<S: SweepSink + ?Sized>(
    session: &mut Session,
    rules: &RuleSet,
    opts: &SweepOptions<'_>,
    executor: &mut Executor,
    sink: &mut S,
) -> Result<SweepSummary, SweepError> {
    let mailbox = opts.mailbox.to_owned();
    let started = std::time::Instant::now();
    let info = session
        .select(opts.mailbox)
        .await
        .map_err(|source| SweepError::Select {
            mailbox: mailbox.clone(),
            source,
        })?;
    sink.selected(&info);
    let mut summary = SweepSummary::default();

    let conditions = applicable_conditions(rules, opts);
    let query = search::superset(conditions.iter().copied(), opts.now);
    let search_err = |source| SweepError::Search {
        mailbox: mailbox.clone(),
        source,
    };

    // Everything in scope: counted as examined, and its highest UID reported.
    let (in_scope, mut universe) = in_scope(session, &opts.scope).await.map_err(search_err)?;
    summary.examined = in_scope.len();
    summary.highest_uid = in_scope.ranges().last().map(|(_, hi)| hi);
    let candidates = if query.is_nothing() {
        UidSet::new()
    } else if query.is_all() {
        in_scope
    } else {
        let keys = format!("UNDELETED {query}");
        search_uids(session, &criteria(&opts.scope, &keys), &opts.scope)
            .await
            .map_err(search_err)?
    };
    tracing::debug!(
        account = opts.account,
        mailbox = opts.mailbox,
        query = %query,
        examined = summary.examined,
        candidates = candidates.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sweep search"
    );
    if candidates.is_empty() {
        return Ok(summary);
    }

    let spec = FetchSpec::new(&rules.needs());
    let delimiter = session.delimiter().await.ok().flatten();
    // Plans wait until the pass ends (or EXEC_BATCH messages want changes), so each
    // destination gets one command for many messages rather than one per fetch chunk.
    let mut held = Held::default();
    let chunks = candidates.chunks(usize::MAX, FETCH_CHUNK);
    let mut next = match chunks.first() {
        Some(first) => Some(send_fetch(session, &spec, first, universe.as_ref()).await),
        None => None,
    };
    for (i, chunk) in chunks.iter().enumerate() {
        let Some(current) = next.take() else { break };
        let items = match answer(session, current).await {
            Ok(items) => items,
            Err(source) => {
                // What was decided so far is still carried out (or reported as failed).
                let u = universe.as_mut();
                flush(session, opts, executor, sink, &mut held, &mut summary, u).await;
                return Err(SweepError::Fetch { mailbox, source });
            }
        };
        // The next chunk's FETCH goes out now, so the server reads those messages while this
        // chunk is evaluated (on loopback the two take about as long as each other).
        if let Some(following) = chunks.get(i + 1) {
            next = Some(send_fetch(session, &spec, following, universe.as_ref()).await);
        }
        // Unsolicited FETCH responses for other messages may be mixed in.
        let views = spec.views(items, chunk);
        let ids: Vec<(Uid, Option<&str>)> = views
            .iter()
            .map(|(uid, v)| (*uid, v.message_id()))
            .collect();
        let applied = sink.applied_to(&ids);
        for (uid, view) in &views {
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
                // Copies an interrupted earlier run already made (crate::reconcile).
                ev.plan
                    .copy
                    .retain(|dest| !done.contains(&crate::state::copied_marker(dest)));
            }
            for w in &ev.warnings {
                tracing::warn!(
                    account = opts.account,
                    mailbox = opts.mailbox,
                    uid = uid.get(),
                    "{w}"
                );
            }
            held.unjournaled.push(MessageResult {
                uid: *uid,
                message_id: view.message_id().map(str::to_owned),
                rules: ev.matched.into_iter().map(|m| m.rule).collect(),
                plan: ev.plan,
                warnings: ev.warnings,
                done: false,
                error: None,
            });
        }
        // The journal's intents, a few thousand at a time while the next FETCH is out: this
        // overlaps the server's work instead of delaying the batch's commands, without a
        // transaction (an fsync) per chunk.
        if held.unjournaled.len() >= JOURNAL_BATCH {
            held.journal(opts, sink);
        }
        if opts.dry_run || held.waiting.acted_on() + held.unjournaled.len() >= EXEC_BATCH {
            if !opts.dry_run
                && let Some(sent) = next.take()
            {
                // No other command may go out while a FETCH is: take its answer first.
                next = Some(Fetch::Answered(answer(session, sent).await));
            }
            let u = universe.as_mut();
            flush(session, opts, executor, sink, &mut held, &mut summary, u).await;
        }
    }
    tracing::debug!(
        account = opts.account,
        mailbox = opts.mailbox,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sweep fetched and evaluated"
    );
    let u = universe.as_mut();
    flush(session, opts, executor, sink, &mut held, &mut summary, u).await;
    tracing::debug!(
        account = opts.account,
        mailbox = opts.mailbox,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sweep done"
    );
    Ok(summary)
}

/// A chunk's `UID FETCH`: sent and not yet answered, or answered.
enum Fetch {
    /// The tags of its command lines, in the order sent.
    Sent(Vec<String>),
    /// What came back (or why nothing did).
    Answered(Result<Vec<crate::imap::FetchedItem>, ImapError>),
}

/// Sends the `UID FETCH` of `chunk`, in as few command lines as the universe allows, without
/// waiting for the answer.
async fn send_fetch(
    session: &mut Session,
    spec: &FetchSpec,
    chunk: &UidSet,
    universe: Option<&Universe>,
) -> Fetch {
    let wire = match universe {
        Some(u) => chunk.widen(&u.existing, u.known),
        None => chunk.clone(),
    };
    let mut tags = Vec::new();
    for line in wire.chunks(MAX_SET_CHARS, u64::MAX) {
        match session
            .start_uid_fetch(&line.to_string(), spec.items())
            .await
        {
            Ok(tag) => tags.push(tag),
            // A failed write breaks the connection: the lines sent before need no answer.
            Err(e) => return Fetch::Answered(Err(e)),
        }
    }
    Fetch::Sent(tags)
}

/// The answer to a fetch: every line's, read in order even after one line's `NO`, so the
/// connection stays in step.
async fn answer(
    session: &mut Session,
    fetch: Fetch,
) -> Result<Vec<crate::imap::FetchedItem>, ImapError> {
    let tags = match fetch {
        Fetch::Answered(result) => return result,
        Fetch::Sent(tags) => tags,
    };
    let mut items = Vec::new();
    let mut failed = None;
    for tag in tags {
        match session.finish_uid_fetch(&tag).await {
            Ok(more) => items.extend(more),
            Err(e) if e.is_connection_fatal() => return Err(e),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    failed.map_or(Ok(items), Err)
}

/// How many messages with changes may wait before their commands are sent: a pass of a
/// mailbox up to this size is carried out at its end, in one command per destination (and
/// line); beyond it, in batches of this many, so memory stays bounded (about 125 bytes per
/// waiting message, see [`waiting`]).
pub const EXEC_BATCH: usize = 250_000;

/// How many decided messages wait before their intents are journaled (one transaction).
const JOURNAL_BATCH: usize = 5_000;

/// What a pass has decided and not yet carried out.
#[derive(Default)]
struct Held {
    /// Decided, but their intents not yet in the journal.
    unjournaled: Vec<MessageResult>,
    /// Journaled, waiting for the batch's commands.
    waiting: Waiting,
}

impl Held {
    /// Journals the intents of the unjournaled messages (unless a dry run); they then wait.
    fn journal<S: SweepSink + ?Sized>(&mut self, opts: &SweepOptions<'_>, sink: &mut S) {
        if !opts.dry_run && !self.unjournaled.is_empty() {
            sink.before_execute(&self.unjournaled);
        }
        let waiting = &mut self.waiting;
        self.unjournaled.drain(..).for_each(|r| waiting.push(r));
    }
}

/// Carries out the pending plans (unless dry-run), their intents journaled first, and hands
/// every result to the sink.
async fn flush<S: SweepSink + ?Sized>(
    session: &mut Session,
    opts: &SweepOptions<'_>,
    executor: &mut Executor,
    sink: &mut S,
    held: &mut Held,
    summary: &mut SweepSummary,
    universe: Option<&mut Universe>,
) {
    held.journal(opts, sink);
    let waiting = std::mem::take(&mut held.waiting);
    let mut outcomes: Option<HashMap<Uid, Outcome>> = None;
    if !opts.dry_run && waiting.acted_on() > 0 {
        let mut program = group(&waiting.plans(), executor.caps());
        program.atomic = waiting.without_message_id();
        let started = std::time::Instant::now();
        let run = executor.run_within(session, &program, universe).await;
        tracing::debug!(
            account = opts.account,
            mailbox = opts.mailbox,
            steps = program.steps.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "sweep executed"
        );
        outcomes = Some(run.into_iter().map(|o| (o.uid, o)).collect());
    }
    for mut r in waiting.into_results() {
        if let Some(outcomes) = &mut outcomes {
            let uid = r.uid;
            apply_outcome(&mut r, outcomes.remove(&uid));
        }
        summary.matched += 1;
        if r.error.is_some() {
            summary.errors += 1;
        } else if r.leaves() && (r.done || opts.dry_run) {
            summary.moved += 1;
        }
        sink.message(&r);
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

/// Capabilities that change how plans are carried out.
pub fn server_caps(session: &Session) -> ServerCaps {
    ServerCaps {
        move_: session.has_capability("MOVE"),
        uidplus: session.has_capability("UIDPLUS"),
        gmail: session.is_gmail(),
    }
}

/// A flag or keyword that can go into a STORE list: `\Word` or an atom.
fn valid_flag(flag: &str) -> bool {
    let word = flag.strip_prefix('\\').unwrap_or(flag);
    !word.is_empty()
        && word.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

impl ImapTarget for Session {
    type Error = ImapError;

    async fn store_flags(
        &mut self,
        uids: &UidSet,
        add: bool,
        flags: &[String],
    ) -> Result<(), ImapError> {
        if !flags.iter().all(|f| valid_flag(f)) {
            return Err(ImapError::InvalidArgument("flag"));
        }
        let sign = if add { '+' } else { '-' };
        let query = format!("{sign}FLAGS.SILENT ({})", flags.join(" "));
        self.uid_store(&uids.to_string(), &query).await
    }

    async fn add_labels(&mut self, uids: &UidSet, labels: &[String]) -> Result<(), ImapError> {
        self.uid_add_gmail_labels(&uids.to_string(), labels).await
    }

    async fn copy(&mut self, uids: &UidSet, mailbox: &str) -> Result<(), ImapError> {
        self.uid_copy(&uids.to_string(), mailbox).await
    }

    async fn mv(&mut self, uids: &UidSet, mailbox: &str) -> Result<(), ImapError> {
        self.uid_move(&uids.to_string(), mailbox).await
    }

    async fn uid_expunge(&mut self, uids: &UidSet) -> Result<(), ImapError> {
        Session::uid_expunge(self, &uids.to_string()).await
    }

    async fn ensure_mailbox(&mut self, mailbox: &str) -> Result<(), ImapError> {
        Session::ensure_mailbox(self, mailbox).await.map(|_| ())
    }

    fn is_connection_lost(err: &ImapError) -> bool {
        err.is_connection_fatal()
    }

    fn is_missing_mailbox(err: &ImapError) -> bool {
        err.is_missing_mailbox()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn flags_that_would_break_the_command_are_refused() {
        for (flag, ok) in [
            ("\\Seen", true),
            ("$Invoice", true),
            ("work", true),
            ("two words", false),
            ("a)b", false),
            ("\\", false),
            ("", false),
            ("x\r\ny", false),
        ] {
            assert_eq!(valid_flag(flag), ok, "{flag:?}");
        }
    }

    #[test]
    fn moved_counts_only_messages_that_leave() {
        let mut r = MessageResult {
            uid: Uid::new(1).unwrap(),
            message_id: None,
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
