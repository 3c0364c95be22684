//! Carrying out a batch of plans: the [`Plan`]s of many messages merged into few commands.
//!
//! Two halves, so the decisions can be tested without a server:
//!
//! - [`group`] (pure) turns `(UID, Plan)` pairs and the server's capabilities into a
//!   [`Program`]: an ordered list of [`Step`]s, each one command over a UID set;
//! - [`run`] (thin, async) sends each step through an [`ImapTarget`] and reports, per message,
//!   what happened.
//!
//! Order per message is the plan's order: flags added, flags removed, labels, copies, then the
//! terminal action, so flags travel with a moved message. Messages with the same change share
//! one command (`UID STORE 1:40,52 +FLAGS.SILENT (\Seen)`).
//!
//! Terminal actions: `UID MOVE` when the server offers MOVE, for moves to one mailbox; moves to
//! several mailboxes in one program are copied per destination and then removed together by
//! one `UID STORE +FLAGS.SILENT (\Deleted)` and one `UID EXPUNGE` (with UIDPLUS, not on Gmail;
//! see `Executor::shares_expunge`), except messages without a Message-ID ([`Program::atomic`]).
//! Every destination a program copies into (copies, shared-expunge moves, moves without MOVE) is
//! prepared first ([`Executor::prepare`]): created if missing, and *fenced* — its UIDNEXT read
//! before the first `UID COPY`, so that after a crash `crate::recover` looks for the copies
//! only among what arrived since. The caller makes the fences durable before it runs the
//! program; a copy-based step to a destination without a fence is never sent. The COPYUID
//! answers (UIDPLUS) of every `UID COPY` and `UID MOVE` come back with the outcomes ([`Run`]),
//! naming each copy exactly. Without MOVE, `UID COPY`, then
//! `UID STORE +FLAGS.SILENT (\Deleted)` and `UID EXPUNGE` of exactly those UIDs (UIDPLUS). A
//! mailbox-wide `EXPUNGE` is never sent: it would remove what other clients marked. Without
//! UIDPLUS the message is left marked `\Deleted` with a warning. `delete` is the same without
//! the copy.
//!
//! Failures are per step: a step that fails marks its messages failed and skips their later
//! steps that depend on it (a message whose copy failed is not moved away, so nothing is lost
//! and a later pass can retry), while other messages and other destinations go on.
//! Labels on a server without X-GM-EXT-1 fail only that message's labels; its other actions
//! still run (the error is permanent, and waiting would never move the message).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;

use crate::imap::uidset::MAX_SET_CHARS;

use crate::imap::uidset::{CopyUid, Uid, UidSet};
use crate::rules::{FinalKind, Plan};

/// What the server offers that changes how a plan is carried out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCaps {
    /// RFC 6851 `MOVE`.
    pub move_: bool,
    /// RFC 4315 `UIDPLUS` (for `UID EXPUNGE`).
    pub uidplus: bool,
    /// Gmail's `X-GM-EXT-1` (for `X-GM-LABELS`).
    pub gmail: bool,
}

/// One command over a set of UIDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `UID STORE uids +FLAGS.SILENT (flags)` (`add`) or `-FLAGS.SILENT`.
    Flags {
        uids: UidSet,
        add: bool,
        flags: Vec<String>,
    },
    /// `UID STORE uids +X-GM-LABELS (labels)`.
    Labels { uids: UidSet, labels: Vec<String> },
    /// `UID STORE uids -X-GM-LABELS (labels)`: `imapsort undo` taking labels back.
    Unlabel { uids: UidSet, labels: Vec<String> },
    /// `UID COPY uids mailbox` (a `copy` action, not a move).
    Copy { uids: UidSet, mailbox: String },
    /// A terminal move (move, archive, trash) to `mailbox`.
    Move { uids: UidSet, mailbox: String },
    /// `delete`: `\Deleted` + `UID EXPUNGE`.
    Delete { uids: UidSet },
}

impl Step {
    pub fn uids(&self) -> &UidSet {
        match self {
            Step::Flags { uids, .. }
            | Step::Labels { uids, .. }
            | Step::Unlabel { uids, .. }
            | Step::Copy { uids, .. }
            | Step::Move { uids, .. }
            | Step::Delete { uids } => uids,
        }
    }

    /// Whether a failure of this step keeps the message where it is (skips its terminal step).
    fn blocks_terminal(&self) -> bool {
        !matches!(self, Step::Labels { .. } | Step::Unlabel { .. })
    }

    fn is_terminal(&self) -> bool {
        matches!(self, Step::Move { .. } | Step::Delete { .. })
    }

    /// A short description for logs and failure reasons.
    pub fn describe(&self) -> String {
        match self {
            Step::Flags {
                add: true, flags, ..
            } => format!("add flags {}", flags.join(" ")),
            Step::Flags {
                add: false, flags, ..
            } => format!("remove flags {}", flags.join(" ")),
            Step::Labels { labels, .. } => format!("add labels {}", labels.join(" ")),
            Step::Unlabel { labels, .. } => format!("remove labels {}", labels.join(" ")),
            Step::Copy { mailbox, .. } => format!("copy to {mailbox}"),
            Step::Move { mailbox, .. } => format!("move to {mailbox}"),
            Step::Delete { .. } => "delete".to_owned(),
        }
    }
}

/// A batch's commands, in the order they must run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    pub steps: Vec<Step>,
    /// Messages that fail before any command (labels without X-GM-EXT-1): UID and reason.
    pub refused: Vec<(Uid, String)>,
    /// Messages whose move must be one `UID MOVE` even when moves share an expunge (where the
    /// server has MOVE): without a Message-ID, what recognises an interrupted copy in the
    /// destination (`crate::recover`: size, arrival time, Date, From, To, Subject) is
    /// weaker, so these are not exposed to an interruption between copy and expunge at all.
    pub atomic: UidSet,
}

/// Merges the plans of a batch into commands. Plans that change nothing add no step.
pub fn group(plans: &[(Uid, &Plan)], caps: ServerCaps) -> Program {
    let mut add: BTreeMap<Vec<String>, UidSet> = BTreeMap::new();
    let mut remove: BTreeMap<Vec<String>, UidSet> = BTreeMap::new();
    let mut labels: BTreeMap<Vec<String>, UidSet> = BTreeMap::new();
    let mut copies: BTreeMap<&str, UidSet> = BTreeMap::new();
    let mut moves: BTreeMap<&str, UidSet> = BTreeMap::new();
    let mut deletes = UidSet::new();
    let mut refused = Vec::new();

    for &(uid, plan) in plans {
        if !plan.add_flags.is_empty() {
            add.entry(flag_set(&plan.add_flags))
                .or_default()
                .insert(uid);
        }
        if !plan.remove_flags.is_empty() {
            remove
                .entry(flag_set(&plan.remove_flags))
                .or_default()
                .insert(uid);
        }
        if !plan.add_labels.is_empty() {
            if caps.gmail {
                labels
                    .entry(flag_set(&plan.add_labels))
                    .or_default()
                    .insert(uid);
            } else {
                refused.push((
                    uid,
                    "label needs Gmail's X-GM-EXT-1, which the server does not offer".to_owned(),
                ));
            }
        }
        for mailbox in &plan.copy {
            copies.entry(mailbox.as_str()).or_default().insert(uid);
        }
        if let Some(f) = &plan.final_action {
            match (f.action, f.mailbox.as_deref()) {
                (FinalKind::Delete, _) => deletes.insert(uid),
                (_, Some(mailbox)) => moves.entry(mailbox).or_default().insert(uid),
                // A move without a destination cannot come from the engine; leave the
                // message where it is rather than guess.
                (_, None) => refused.push((uid, "move without a destination".to_owned())),
            }
        }
    }

    let mut steps = Vec::new();
    steps.extend(add.into_iter().map(|(flags, uids)| Step::Flags {
        uids,
        add: true,
        flags,
    }));
    steps.extend(remove.into_iter().map(|(flags, uids)| Step::Flags {
        uids,
        add: false,
        flags,
    }));
    steps.extend(
        labels
            .into_iter()
            .map(|(labels, uids)| Step::Labels { uids, labels }),
    );
    steps.extend(copies.into_iter().map(|(m, uids)| Step::Copy {
        uids,
        mailbox: m.to_owned(),
    }));
    steps.extend(moves.into_iter().map(|(m, uids)| Step::Move {
        uids,
        mailbox: m.to_owned(),
    }));
    if !deletes.is_empty() {
        steps.push(Step::Delete { uids: deletes });
    }
    Program {
        steps,
        refused,
        atomic: UidSet::new(),
    }
}

/// A set of flags, labels: sorted and without repeats, so equal sets share a command.
fn flag_set(flags: &[String]) -> Vec<String> {
    flags
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// What happened to one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub uid: Uid,
    /// `None`: every step ran. `Some(reason)`: at least one step failed (the first reason).
    pub error: Option<String>,
    /// Things the user should know although nothing failed (left `\Deleted` without UIDPLUS).
    pub warnings: Vec<String>,
}

impl Outcome {
    /// Every step ran.
    fn ran(uid: Uid) -> Outcome {
        Outcome {
            uid,
            error: None,
            warnings: Vec::new(),
        }
    }

    pub fn done(&self) -> bool {
        self.error.is_none()
    }
}

/// The commands [`run`] needs from an IMAP session (the selected mailbox is the source).
/// Mailbox names are UTF-8 with `/` as separator; the implementation translates them.
pub trait ImapTarget {
    /// The error of a command; its `Display` becomes the failure reason.
    type Error: std::fmt::Display;

    /// `UID STORE uids +FLAGS.SILENT (flags)` (`add`) or `-FLAGS.SILENT`; the status checked.
    fn store_flags(
        &mut self,
        uids: &UidSet,
        add: bool,
        flags: &[String],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// `UID STORE uids +X-GM-LABELS (labels)` (Gmail).
    fn add_labels(
        &mut self,
        uids: &UidSet,
        labels: &[String],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// `UID STORE uids -X-GM-LABELS (labels)` (Gmail).
    fn remove_labels(
        &mut self,
        uids: &UidSet,
        labels: &[String],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// `UID COPY uids mailbox`; the server's COPYUID, when it sends one.
    fn copy(
        &mut self,
        uids: &UidSet,
        mailbox: &str,
    ) -> impl Future<Output = Result<Option<CopyUid>, Self::Error>> + Send;
    /// `UID MOVE uids mailbox`; the server's COPYUID, when it sends one.
    fn mv(
        &mut self,
        uids: &UidSet,
        mailbox: &str,
    ) -> impl Future<Output = Result<Option<CopyUid>, Self::Error>> + Send;
    /// `UID EXPUNGE uids` (UIDPLUS).
    fn uid_expunge(
        &mut self,
        uids: &UidSet,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Creates the mailbox and its parents when missing, and subscribes it; whether it had
    /// to be created.
    fn ensure_mailbox(
        &mut self,
        mailbox: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
    /// `STATUS mailbox (UIDNEXT UIDVALIDITY)`: (UIDVALIDITY, UIDNEXT), as far as the server
    /// says.
    fn uid_next(
        &mut self,
        mailbox: &str,
    ) -> impl Future<Output = Result<(Option<u32>, Option<u32>), Self::Error>> + Send;

    /// The longest UID set (in characters) to put on one command line: the executor cuts
    /// every step's set into lines of at most this. The implementation copes with a server
    /// that refuses a line this long (see `Session::line_refused`).
    fn set_chars(&self) -> usize {
        MAX_SET_CHARS
    }

    /// Whether the connection is unusable after this error: later steps are not attempted.
    fn is_connection_lost(err: &Self::Error) -> bool;

    /// Whether a COPY or MOVE failed because the destination does not exist (`[TRYCREATE]`):
    /// another client deleted or renamed it since it was ensured.
    fn is_missing_mailbox(err: &Self::Error) -> bool;
}

/// Which messages exist in the selected mailbox, as far as a pass knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Universe {
    /// The messages that exist (a `UID SEARCH` result, less what this pass moved away).
    pub existing: UidSet,
    /// The UID range `existing` covers completely: a UID inside it and not in `existing` does
    /// not exist and never will (UIDs are not reused), so commands may include it.
    pub known: (Uid, Uid),
}

/// A destination as it was just before a program copied into it: every copy the program
/// makes there gets a UID of at least `uid_next` (while `uid_validity` stays).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub mailbox: String,
    /// `None` for a mailbox the program's preparation created (UIDs start at 1 then).
    pub uid_validity: Option<u32>,
    pub uid_next: u32,
}

/// The copies one `UID COPY` or `UID MOVE` made, as the server reported them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copied {
    pub mailbox: String,
    pub uids: CopyUid,
}

/// What running a program did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// Per message with an error or a warning (see [`Executor::run_within`]).
    pub outcomes: Vec<Outcome>,
    /// COPYUID of every copy and move command that answered with one.
    pub copied: Vec<Copied>,
}

/// Runs programs against one session; remembers which destinations already exist.
#[derive(Debug, Default)]
pub struct Executor {
    /// What the server offers (MOVE, UIDPLUS, X-GM-EXT-1).
    caps: ServerCaps,
    /// Destinations created or confirmed in this session, so each is ensured once.
    ensured: HashSet<String>,
    /// Destinations [`prepare`](Self::prepare) fenced for the next run; copy-based steps to
    /// any other are not sent.
    fenced: HashSet<String>,
}

impl Executor {
    pub fn new(caps: ServerCaps) -> Executor {
        Executor {
            caps,
            ensured: HashSet::new(),
            fenced: HashSet::new(),
        }
    }

    pub fn caps(&self) -> ServerCaps {
        self.caps
    }

    /// Runs every step of `program`; returns one outcome per message it names, by UID.
    pub async fn run<T: ImapTarget>(&mut self, target: &mut T, program: &Program) -> Vec<Outcome> {
        let mut all: BTreeMap<Uid, Outcome> = BTreeMap::new();
        let named = program
            .steps
            .iter()
            .flat_map(|s| s.uids().iter())
            .chain(program.refused.iter().map(|(uid, _)| *uid));
        for uid in named {
            all.entry(uid).or_insert_with(|| Outcome::ran(uid));
        }
        self.prepare(target, program).await;
        for o in self.run_within(target, program, None).await.outcomes {
            all.insert(o.uid, o);
        }
        all.into_values().collect()
    }

    /// The destinations `program` copies into: copies, and moves that go as `UID COPY` plus
    /// an expunge (no MOVE, or moves that share one expunge).
    pub fn copy_destinations(&self, program: &Program) -> BTreeSet<String> {
        let copied_moves = !self.caps.move_ || self.shares_expunge(program);
        program
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Copy { mailbox, .. } => Some(mailbox.clone()),
                Step::Move { mailbox, .. } if copied_moves => Some(mailbox.clone()),
                _ => None,
            })
            .collect()
    }

    /// The fence of one destination: ensured first unless `known` (this session ensured it
    /// before), then UIDNEXT 1 if it was just created, else its UIDNEXT from STATUS.
    async fn fence<T: ImapTarget>(
        &mut self,
        target: &mut T,
        mailbox: &str,
        known: bool,
    ) -> Result<Fence, T::Error> {
        let created = if known {
            false
        } else {
            let created = target.ensure_mailbox(mailbox).await?;
            self.ensured.insert(mailbox.to_owned());
            created
        };
        if created {
            return Ok(Fence {
                mailbox: mailbox.to_owned(),
                uid_validity: None,
                uid_next: 1,
            });
        }
        let (uid_validity, uid_next) = target.uid_next(mailbox).await?;
        Ok(Fence {
            mailbox: mailbox.to_owned(),
            uid_validity,
            uid_next: uid_next.unwrap_or(1),
        })
    }

    /// Before [`run_within`](Self::run_within): makes sure every destination `program`
    /// copies into exists, and fences it (STATUS, or UIDNEXT 1 for one it just created).
    /// Returns the fences; the caller makes them durable before the run. A destination this
    /// session ensured before whose STATUS says it is missing (another client deleted it) is
    /// made again, once. A destination that cannot be made or read gets no fence, and its
    /// copy-based steps fail unsent.
    pub async fn prepare<T: ImapTarget>(
        &mut self,
        target: &mut T,
        program: &Program,
    ) -> Vec<Fence> {
        self.fenced.clear();
        let mut fences = Vec::new();
        for mailbox in self.copy_destinations(program) {
            let known = self.ensured.contains(&mailbox);
            let fence = match self.fence(target, &mailbox, known).await {
                Err(e) if known && T::is_missing_mailbox(&e) => {
                    // Ensured earlier in this session, deleted or renamed by another client
                    // since: forgotten and made again, once.
                    self.ensured.remove(&mailbox);
                    tracing::info!(mailbox = %mailbox, error = %e, "destination missing; creating it again");
                    self.fence(target, &mailbox, false).await
                }
                other => other,
            };
            match fence {
                Ok(fence) => {
                    self.fenced.insert(fence.mailbox.clone());
                    fences.push(fence);
                }
                Err(e) => {
                    tracing::debug!(mailbox = %mailbox, error = %e, "cannot prepare the destination");
                }
            }
        }
        fences
    }

    /// Like [`run`](Self::run), knowing which messages exist in the selected mailbox: UID
    /// sets are then merged across messages known to be gone (fewer commands), and messages
    /// that leave the mailbox are taken out of `universe`. Returns outcomes only for messages
    /// with an error or a warning (by UID): every other message the program names ran every
    /// step. (A sweep of 100,000 messages would otherwise build 100,000 of them.)
    pub async fn run_within<T: ImapTarget>(
        &mut self,
        target: &mut T,
        program: &Program,
        universe: Option<&mut Universe>,
    ) -> Run {
        self.run_ahead(target, program, universe, &mut |_| {})
            .await
            .0
    }

    /// Like [`run_within`](Self::run_within), and before the run's last commands tells
    /// `ahead` what the run will return if they succeed, so the caller may write the results
    /// while the server works. The last commands are the shared removal of moved originals
    /// (`UID STORE +FLAGS.SILENT (\Deleted)` and `UID EXPUNGE`, in a batch that moves to
    /// several mailboxes), or else a program's last step when it is a move (a one-sender
    /// sweep's single `UID MOVE`). On success those change no message's outcome; a move adds
    /// its COPYUID answers after the ones `ahead` was shown (the caller takes them from the
    /// returned run). The `bool` returned says whether `ahead` was called and the run did end
    /// as it was told (every one of those commands succeeded, no outcome changed).
    pub async fn run_ahead<T: ImapTarget>(
        &mut self,
        target: &mut T,
        program: &Program,
        mut universe: Option<&mut Universe>,
        ahead: &mut (dyn FnMut(&Run) + Send),
    ) -> (Run, bool) {
        let mut book = Book {
            outcomes: BTreeMap::new(),
            blocked: UidSet::new(),
            lost: None,
            copied: Vec::new(),
        };
        for (uid, reason) in &program.refused {
            tracing::warn!(uid = uid.get(), "{reason}");
            book.fail_one(*uid, reason.clone(), false);
        }
        let shared_expunge = self.shares_expunge(program);
        // Originals copied by moves that wait for the shared \Deleted + UID EXPUNGE.
        let mut copied = UidSet::new();
        let mut as_told = false;
        for (i, step) in program.steps.iter().enumerate() {
            let mut uids = step.uids().clone();
            if step.is_terminal() {
                uids = uids.iter().filter(|u| !book.blocked.contains(*u)).collect();
            }
            if uids.is_empty() {
                continue;
            }
            if let Some(reason) = &book.lost {
                let reason = format!("{}: not attempted: {reason}", step.describe());
                book.fail(&uids, reason, true);
                continue;
            }
            if shared_expunge && matches!(step, Step::Move { .. }) {
                let (atomic, shared): (UidSet, UidSet) =
                    uids.iter().partition(|u| program.atomic.contains(*u));
                if !atomic.is_empty() {
                    self.run_step(target, step, &atomic, &mut book, universe.as_deref_mut())
                        .await;
                }
                if !shared.is_empty() {
                    self.copy_half(
                        target,
                        step,
                        &shared,
                        &mut book,
                        universe.as_deref(),
                        &mut copied,
                    )
                    .await;
                }
            } else if !shared_expunge
                && i + 1 == program.steps.len()
                && matches!(step, Step::Move { .. })
            {
                // The last step, a move: told before it, as it would end if every line is OK.
                ahead(&book.so_far());
                let before = book.outcomes.clone();
                self.run_step(target, step, &uids, &mut book, universe.as_deref_mut())
                    .await;
                as_told = book.outcomes == before;
            } else {
                self.run_step(target, step, &uids, &mut book, universe.as_deref_mut())
                    .await;
            }
        }
        if !copied.is_empty() && book.lost.is_none() {
            ahead(&book.so_far());
            as_told = true;
        }
        if !copied.is_empty() {
            let what = "move";
            let wire = match &universe {
                Some(u) => copied.widen(&u.existing, u.known),
                None => copied.clone(),
            };
            for line in wire.chunks(target.set_chars(), u64::MAX) {
                let members: UidSet = copied.iter().filter(|u| line.contains(*u)).collect();
                if let Some(reason) = &book.lost {
                    let reason = format!("{what}: copied, but not removed: {reason}");
                    book.fail(&members, reason, true);
                    continue;
                }
                let gone = self
                    .remove_copied(target, &line, &members, &mut book, what)
                    .await;
                as_told &= gone;
                if gone && let Some(u) = universe.as_deref_mut() {
                    u.existing.remove_all(&members);
                }
            }
        }
        self.fenced.clear();
        let run = Run {
            outcomes: book.outcomes.into_values().collect(),
            copied: book.copied,
        };
        (run, as_told && book.lost.is_none())
    }

    /// A copy-based step to a destination [`prepare`](Self::prepare) did not fence is not
    /// sent: after a crash there would be nothing to find its copies by. Returns whether it
    /// may go.
    fn fenced_or_fail(&self, mailbox: &str, what: &str, uids: &UidSet, book: &mut Book) -> bool {
        if self.fenced.contains(mailbox) {
            return true;
        }
        let reason = format!("{what}: not attempted: the destination could not be prepared");
        tracing::warn!(uids = %uids, "{reason}");
        book.fail(uids, reason, true);
        false
    }

    /// Whether this program's moves go as `UID COPY` per destination followed by one shared
    /// `UID STORE +FLAGS.SILENT (\Deleted)` and `UID EXPUNGE`, rather than one `UID MOVE` per
    /// destination: when moves go to two or more mailboxes and the server has UIDPLUS (not on
    /// Gmail, where labels make COPY and EXPUNGE mean something else).
    ///
    /// Why: a server pays for every change to the source mailbox about in proportion to its
    /// size (Dovecot resynchronises and rewrites its index on each MOVE), so a sweep of 100,000
    /// messages over 28 destinations spent 66 s in 286 MOVEs; copies leave the source alone,
    /// and the one expunge is paid once (docs/BENCHMARKS.md). The messages end up exactly where
    /// MOVE would put them; meanwhile another client may briefly see them in both places, as
    /// with servers that lack MOVE.
    fn shares_expunge(&self, program: &Program) -> bool {
        let moves = program
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Move { .. }))
            .count();
        self.caps.uidplus && !self.caps.gmail && moves >= 2
    }

    /// The copy half of a move whose removal is shared: ensure the destination, `UID COPY`;
    /// what was copied joins `copied`.
    async fn copy_half<T: ImapTarget>(
        &mut self,
        target: &mut T,
        step: &Step,
        uids: &UidSet,
        book: &mut Book,
        universe: Option<&Universe>,
        copied: &mut UidSet,
    ) {
        let Step::Move { mailbox, .. } = step else {
            return;
        };
        let what = step.describe();
        if !self.fenced_or_fail(mailbox, &what, uids, book) {
            return;
        }
        if !self.ensured.contains(mailbox) {
            match target.ensure_mailbox(mailbox).await {
                Ok(_) => {
                    self.ensured.insert(mailbox.clone());
                }
                Err(e) => {
                    let reason = format!("{what}: creating the mailbox failed: {e}");
                    book.failed_command::<T>(uids, reason, &e, true);
                    return;
                }
            }
        }
        let wire = match universe {
            Some(u) => uids.widen(&u.existing, u.known),
            None => uids.clone(),
        };
        for line in wire.chunks(target.set_chars(), u64::MAX) {
            let members: UidSet = uids.iter().filter(|u| line.contains(*u)).collect();
            if let Some(reason) = &book.lost {
                let reason = format!("{what}: not attempted: {reason}");
                book.fail(&members, reason, true);
                continue;
            }
            match self.send_to_mailbox(target, false, &line, mailbox).await {
                Ok(uids) => {
                    book.record_copies(mailbox, uids);
                    members.iter().for_each(|u| copied.insert(u));
                }
                Err(e) => book.failed_command::<T>(&members, format!("{what}: {e}"), &e, true),
            }
        }
    }

    async fn run_step<T: ImapTarget>(
        &mut self,
        target: &mut T,
        step: &Step,
        uids: &UidSet,
        book: &mut Book,
        mut universe: Option<&mut Universe>,
    ) {
        let copy_based = match step {
            Step::Copy { mailbox, .. } => Some(mailbox),
            Step::Move { mailbox, .. } if !self.caps.move_ => Some(mailbox),
            _ => None,
        };
        if let Some(mailbox) = copy_based
            && !self.fenced_or_fail(mailbox, &step.describe(), uids, book)
        {
            return;
        }
        if let Step::Copy { mailbox, .. } | Step::Move { mailbox, .. } = step
            && !self.ensured.contains(mailbox)
        {
            match target.ensure_mailbox(mailbox).await {
                Ok(_) => {
                    self.ensured.insert(mailbox.clone());
                }
                Err(e) => {
                    let reason = format!("{}: creating the mailbox failed: {e}", step.describe());
                    book.failed_command::<T>(uids, reason, &e, step.blocks_terminal());
                    return;
                }
            }
        }
        // The set as sent: merged across UIDs known to be gone, so fewer, shorter commands
        // touch exactly the same messages.
        let wire = match &universe {
            Some(u) => uids.widen(&u.existing, u.known),
            None => uids.clone(),
        };
        for line in wire.chunks(target.set_chars(), u64::MAX) {
            let members: UidSet = uids.iter().filter(|u| line.contains(*u)).collect();
            if let Some(reason) = &book.lost {
                let reason = format!("{}: not attempted: {reason}", step.describe());
                book.fail(&members, reason, true);
                continue;
            }
            let gone = self.run_chunk(target, step, &line, &members, book).await;
            if gone && let Some(u) = universe.as_deref_mut() {
                u.existing.remove_all(&members);
            }
        }
    }

    /// One command line (`wire`) for the messages `members`. Returns whether they left the
    /// mailbox.
    async fn run_chunk<T: ImapTarget>(
        &mut self,
        target: &mut T,
        step: &Step,
        wire: &UidSet,
        members: &UidSet,
        book: &mut Book,
    ) -> bool {
        let what = step.describe();
        let deleted = [String::from("\\Deleted")];
        let result = match step {
            Step::Flags { add, flags, .. } => target.store_flags(wire, *add, flags).await,
            Step::Labels { labels, .. } => target.add_labels(wire, labels).await,
            Step::Unlabel { labels, .. } => target.remove_labels(wire, labels).await,
            Step::Copy { mailbox, .. } => {
                match self.send_to_mailbox(target, false, wire, mailbox).await {
                    Ok(uids) => {
                        book.record_copies(mailbox, uids);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Step::Move { mailbox, .. } if self.caps.move_ => {
                match self.send_to_mailbox(target, true, wire, mailbox).await {
                    Ok(uids) => {
                        book.record_copies(mailbox, uids);
                        return true;
                    }
                    Err(e) => Err(e),
                }
            }
            Step::Move { mailbox, .. } => {
                match self.send_to_mailbox(target, false, wire, mailbox).await {
                    // The copy exists now: from here on a failure leaves a duplicate, not a loss.
                    Ok(uids) => {
                        book.record_copies(mailbox, uids);
                        return self.remove_copied(target, wire, members, book, &what).await;
                    }
                    Err(e) => Err(e),
                }
            }
            Step::Delete { .. } => match target.store_flags(wire, true, &deleted).await {
                Ok(()) => return self.expunge(target, wire, members, book, &what).await,
                Err(e) => Err(e),
            },
        };
        if let Err(e) = result {
            book.failed_command::<T>(members, format!("{what}: {e}"), &e, step.blocks_terminal());
        }
        false
    }

    /// `UID MOVE` (`mv`) or `UID COPY` of `wire` to `mailbox`. When the server says the
    /// mailbox does not exist although this session ensured it (another client deleted or
    /// renamed it since), it is forgotten, created again (parents too, subscribed) and the
    /// command is sent once more; a second failure is the answer.
    async fn send_to_mailbox<T: ImapTarget>(
        &mut self,
        target: &mut T,
        mv: bool,
        wire: &UidSet,
        mailbox: &str,
    ) -> Result<Option<CopyUid>, T::Error> {
        let first = if mv {
            target.mv(wire, mailbox).await
        } else {
            target.copy(wire, mailbox).await
        };
        match first {
            Err(e) if T::is_missing_mailbox(&e) => {
                self.ensured.remove(mailbox);
                tracing::info!(mailbox = %mailbox, error = %e, "destination missing; creating it again");
                target.ensure_mailbox(mailbox).await?;
                self.ensured.insert(mailbox.to_owned());
                if mv {
                    target.mv(wire, mailbox).await
                } else {
                    target.copy(wire, mailbox).await
                }
            }
            other => other,
        }
    }

    /// After the copy half of a move without MOVE: mark the originals and expunge them.
    async fn remove_copied<T: ImapTarget>(
        &mut self,
        target: &mut T,
        wire: &UidSet,
        members: &UidSet,
        book: &mut Book,
        what: &str,
    ) -> bool {
        let deleted = [String::from("\\Deleted")];
        match target.store_flags(wire, true, &deleted).await {
            Ok(()) => self.expunge(target, wire, members, book, what).await,
            Err(e) => {
                let reason =
                    format!("{what}: copied, but marking the original \\Deleted failed: {e}");
                book.failed_command::<T>(members, reason, &e, true);
                false
            }
        }
    }

    /// `UID EXPUNGE` of exactly the messages marked for this step. Returns whether they are gone.
    async fn expunge<T: ImapTarget>(
        &mut self,
        target: &mut T,
        wire: &UidSet,
        members: &UidSet,
        book: &mut Book,
        what: &str,
    ) -> bool {
        if !self.caps.uidplus {
            let warning = format!(
                "{what}: left marked \\Deleted; the server lacks UIDPLUS and imapsort never sends \
                 a mailbox-wide EXPUNGE"
            );
            tracing::warn!(uids = %members, "{warning}");
            book.warn(members, &warning);
            return false;
        }
        match target.uid_expunge(wire).await {
            Ok(()) => true,
            Err(e) => {
                let reason = format!("{what}: marked \\Deleted, but UID EXPUNGE failed: {e}");
                book.failed_command::<T>(members, reason, &e, true);
                false
            }
        }
    }
}

/// The running record of a program: per-message outcomes and what may no longer run.
struct Book {
    /// Messages with an error or a warning; the others ran every step.
    outcomes: BTreeMap<Uid, Outcome>,
    /// Messages whose terminal step must not run (an earlier step failed).
    blocked: UidSet,
    /// Set once the connection is gone: the reason, so later steps are not attempted.
    lost: Option<String>,
    /// COPYUID answers, per command.
    copied: Vec<Copied>,
}

impl Book {
    /// The run as it stands: what the caller of `run_ahead` is told.
    fn so_far(&self) -> Run {
        Run {
            outcomes: self.outcomes.values().cloned().collect(),
            copied: self.copied.clone(),
        }
    }

    fn record_copies(&mut self, mailbox: &str, uids: Option<CopyUid>) {
        if let Some(uids) = uids {
            self.copied.push(Copied {
                mailbox: mailbox.to_owned(),
                uids,
            });
        }
    }

    fn fail_one(&mut self, uid: Uid, reason: String, block: bool) {
        let o = self
            .outcomes
            .entry(uid)
            .or_insert_with(|| Outcome::ran(uid));
        if o.error.is_none() {
            o.error = Some(reason);
        }
        if block {
            self.blocked.insert(uid);
        }
    }

    fn fail(&mut self, uids: &UidSet, reason: String, block: bool) {
        for uid in uids.iter() {
            self.fail_one(uid, reason.clone(), block);
        }
    }

    fn failed_command<T: ImapTarget>(
        &mut self,
        uids: &UidSet,
        reason: String,
        err: &T::Error,
        block: bool,
    ) {
        tracing::warn!(uids = %uids, "{reason}");
        if T::is_connection_lost(err) && self.lost.is_none() {
            self.lost = Some(err.to_string());
        }
        self.fail(uids, reason, block);
    }

    fn warn(&mut self, uids: &UidSet, warning: &str) {
        for uid in uids.iter() {
            let o = self
                .outcomes
                .entry(uid)
                .or_insert_with(|| Outcome::ran(uid));
            o.warnings.push(warning.to_owned());
        }
    }
}

#[cfg(test)]
#[path = "execute_tests.rs"]
mod tests;
