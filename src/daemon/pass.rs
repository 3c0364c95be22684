//! The daemon's passes over one mailbox, on top of [`crate::sweep::sweep_mailbox`]:
//!
//! - [`select`]: SELECT and reconcile with the state database: first start (`first_start`),
//!   UIDVALIDITY change (reset), journal intents a crash left unfinished;
//! - [`new_mail`]: `new` rules over `UID <last+1>:*`, then advance `last_uid` past what was
//!   fully handled, never past a message that failed;
//! - [`sweep`]: `sweep` rules over the whole mailbox;
//! - [`poll`]: STATUS first, and a new-mail pass only when UIDNEXT moved.
//!
//! Exactly once: the journal gets an intent before every non-idempotent command (copy and the
//! terminal action), the (rule, message) pairs of every message fully handled are recorded,
//! and evaluation is told which rules were already applied to a message, so a retry after a
//! crash or a lost connection adds nothing a rule already did.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Stats;
use super::heartbeat::Heartbeat;
use super::store::Store;
use crate::config::{Account, FirstStart};
use crate::execute::Executor;
use crate::imap::mailbox::{SpecialUse, resolve_special};
use crate::imap::uidset::Uid;
use crate::imap::{ImapError, MailboxInfo, Session};
use crate::rules::ast::Trigger;
use crate::rules::{FinalKind, Plan, RuleSet};
use crate::state::{Action, Applied, JournalId, NewJournalEntry, Outcome, StateError};
use crate::sweep::{MessageResult, Scope, SweepOptions, SweepSink, server_caps, sweep_mailbox};

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PassError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error("state database")]
    State(#[from] StateError),
    #[error("cancelled")]
    Cancelled,
}

/// What a pass needs to know.
pub(crate) struct Ctx<'a> {
    pub account: &'a Account,
    pub mailbox: &'a str,
    /// A snapshot of the rules, taken at the start of the batch.
    pub rules: &'a Arc<RuleSet>,
    pub store: &'a Store,
    pub stats: &'a Stats,
    pub token: &'a CancellationToken,
    /// After cancellation, a batch in flight gets this long to finish before it is abandoned.
    pub grace: Duration,
    pub hb: &'a Heartbeat,
}

/// One connection's per-session knowledge: the executor (which destinations exist) and the
/// resolved trash and archive mailboxes.
pub(crate) struct Conn {
    pub executor: Executor,
    pub trash: String,
    pub archive: String,
}

impl Conn {
    pub async fn new(session: &mut Session, account: &Account) -> Result<Conn, ImapError> {
        let entries = if account.trash.is_some() && account.archive.is_some() {
            Vec::new()
        } else {
            session.list().await?
        };
        Ok(Conn {
            executor: Executor::new(server_caps(session)),
            trash: resolve_special(
                account.trash.as_deref(),
                &entries,
                SpecialUse::Trash,
                "Trash",
            ),
            archive: resolve_special(
                account.archive.as_deref(),
                &entries,
                SpecialUse::Archive,
                "Archive",
            ),
        })
    }
}

/// A selected mailbox, reconciled with the state database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Selected {
    pub uid_validity: u32,
    /// Every UID up to this one is handled.
    pub last_uid: u32,
}

/// What a new-mail pass did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NewOutcome {
    /// Messages whose plan failed (retried later with backoff).
    pub failed: usize,
    /// The pass saw messages: look again at once (mail may have arrived meanwhile).
    pub more: bool,
}

/// SELECT the mailbox and reconcile: first start, UIDVALIDITY change, unfinished intents.
pub(crate) async fn select(session: &mut Session, ctx: &Ctx<'_>) -> Result<Selected, PassError> {
    let info = session.select(ctx.mailbox).await?;
    let uid_validity = info.uid_validity.unwrap_or(0);
    let (account, mailbox) = (ctx.account.name.clone(), ctx.mailbox.to_string());
    let known = ctx
        .store
        .call(move |db| db.mailbox(&account, &mailbox))
        .await?;
    let last_uid = match known {
        Some(s) if s.uid_validity == uid_validity => s.last_uid,
        other => {
            let start = starting_uid(session, ctx.account.first_start, &info).await?;
            if let Some(old) = other {
                tracing::warn!(
                    account = %ctx.account.name,
                    mailbox = ctx.mailbox,
                    old = old.uid_validity,
                    new = uid_validity,
                    "UIDVALIDITY changed: the server renumbered the mailbox; its state is reset"
                );
                Stats::bump(&ctx.stats.uidvalidity_resets);
            } else {
                tracing::info!(
                    account = %ctx.account.name,
                    mailbox = ctx.mailbox,
                    first_start = ?ctx.account.first_start,
                    last_uid = start,
                    "first start of this mailbox"
                );
            }
            let (account, mailbox) = (ctx.account.name.clone(), ctx.mailbox.to_string());
            ctx.store
                .call(move |db| db.reset_mailbox_at(&account, &mailbox, uid_validity, start))
                .await?;
            start
        }
    };
    let sel = Selected {
        uid_validity,
        last_uid,
    };
    reconcile(session, ctx, &sel).await?;
    Ok(sel)
}

/// The last handled UID to start from: everything now in the mailbox (`new`) or nothing (`all`).
async fn starting_uid(
    session: &mut Session,
    first: FirstStart,
    info: &MailboxInfo,
) -> Result<u32, ImapError> {
    if first == FirstStart::All {
        return Ok(0);
    }
    if let Some(next) = info.uid_next {
        return Ok(next.saturating_sub(1));
    }
    // No UIDNEXT: the highest UID present (`UID *`), or 0 in an empty mailbox.
    if info.exists == 0 {
        return Ok(0);
    }
    Ok(session
        .uid_search("UID *")
        .await?
        .into_iter()
        .max()
        .unwrap_or(0))
}

/// A journal intent's outcome, and the (UID, comma-separated rules, Message-ID) to record as
/// applied because of it.
type Settled = (JournalId, Outcome, Option<(u32, String, Option<String>)>);

/// Settle journal intents a crash or a lost connection left open for this mailbox: a message
/// no longer here was moved; a copy found in its destination (by Message-ID) was made, and its
/// rules are recorded as applied so the retry does not copy again.
async fn reconcile(session: &mut Session, ctx: &Ctx<'_>, sel: &Selected) -> Result<(), PassError> {
    let account = ctx.account.name.clone();
    let intents = ctx
        .store
        .call(move |db| db.unfinished_intents(&account))
        .await?;
    let mine: Vec<_> = intents
        .into_iter()
        .filter(|e| e.mailbox == ctx.mailbox)
        .collect();
    if mine.is_empty() {
        return Ok(());
    }
    let mut settled: Vec<Settled> = Vec::new();
    let mut copies = Vec::new();
    for e in mine {
        if e.uid_validity != Some(sel.uid_validity) {
            settled.push((e.id, Outcome::Unknown, None));
            continue;
        }
        let present = !session
            .uid_search(&format!("UID {}", e.uid))
            .await?
            .into_iter()
            .filter(|u| *u == e.uid)
            .collect::<Vec<_>>()
            .is_empty();
        match e.action {
            Action::Copy => copies.push(e),
            _ if present => settled.push((
                e.id,
                Outcome::Failed(
                    "interrupted before it ran; the message will be handled again".into(),
                ),
                None,
            )),
            _ => settled.push((e.id, Outcome::Done, None)),
        }
    }
    if !copies.is_empty() {
        for e in &copies {
            let found = match (&e.message_id, &e.destination) {
                (Some(id), Some(dest)) => copy_exists(session, dest, id).await?,
                _ => false,
            };
            if found {
                let copy_only = copy_only_rules(ctx.rules, &e.rule);
                let applied = (!copy_only.is_empty())
                    .then(|| (e.uid, copy_only.join(","), e.message_id.clone()));
                settled.push((e.id, Outcome::Done, applied));
            } else {
                settled.push((e.id, Outcome::Unknown, None));
            }
        }
        session.select(ctx.mailbox).await?;
    }
    let n = settled.len();
    let (account, mailbox, validity) = (
        ctx.account.name.clone(),
        ctx.mailbox.to_string(),
        sel.uid_validity,
    );
    ctx.store
        .call(move |db| {
            let tx = db.batch()?;
            for (id, outcome, applied) in &settled {
                tx.journal_outcome(*id, outcome)?;
                if let Some((uid, rules, message_id)) = applied {
                    let pairs: Vec<Applied<'_>> = rules
                        .split(',')
                        .map(|rule| Applied {
                            uid: *uid,
                            rule,
                            message_id: message_id.as_deref(),
                        })
                        .collect();
                    tx.record_applied(&account, &mailbox, validity, &pairs)?;
                }
            }
            tx.commit()
        })
        .await?;
    tracing::info!(account = %ctx.account.name, mailbox = ctx.mailbox, intents = n, "settled actions a restart interrupted");
    Ok(())
}

/// Of the comma-separated rules of a journal row, those whose actions are all repeatable or
/// copies (no terminal action): marking them applied after a copy that did happen keeps the
/// retry from copying again without keeping another rule's move from running.
fn copy_only_rules(rules: &RuleSet, names: &str) -> Vec<String> {
    names
        .split(',')
        .filter(|name| {
            rules.rules().any(|r| {
                r.name == *name
                    && r.then
                        .iter()
                        .any(|a| matches!(a.kind, crate::rules::ast::ActionKind::Copy(_)))
                    && !r.then.iter().any(|a| a.kind.is_terminal())
            })
        })
        .map(str::to_string)
        .collect()
}

/// Whether a message with this Message-ID is in `mailbox` (EXAMINE, so nothing changes).
async fn copy_exists(
    session: &mut Session,
    mailbox: &str,
    message_id: &str,
) -> Result<bool, ImapError> {
    match session.examine(mailbox).await {
        Ok(_) => {}
        Err(e) if !e.is_connection_fatal() => return Ok(false),
        Err(e) => return Err(e),
    }
    let Some(q) = crate::imap::auth::quote(message_id) else {
        return Ok(false);
    };
    Ok(!session
        .uid_search(&format!("HEADER Message-ID {q}"))
        .await?
        .is_empty())
}

/// Run a pass to completion, or, once cancelled, for at most `grace` more.
async fn with_grace<T>(
    token: &CancellationToken,
    grace: Duration,
    fut: impl Future<Output = T>,
) -> Result<T, PassError> {
    tokio::pin!(fut);
    tokio::select! {
        r = &mut fut => return Ok(r),
        _ = token.cancelled() => {}
    }
    tokio::time::timeout(grace, fut)
        .await
        .map_err(|_| PassError::Cancelled)
}

/// `new` rules over the mail that arrived since `last_uid`; advances `last_uid`.
pub(crate) async fn new_mail(
    session: &mut Session,
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    sel: &mut Selected,
) -> Result<NewOutcome, PassError> {
    let Some(from) = Uid::new(sel.last_uid.saturating_add(1)) else {
        return Ok(NewOutcome::default());
    };
    let opts = SweepOptions {
        account: &ctx.account.name,
        mailbox: ctx.mailbox,
        watch: &ctx.account.watch,
        trigger: Some(Trigger::New),
        trash: &conn.trash,
        archive: &conn.archive,
        now: jiff::Timestamp::now(),
        scope: Scope::From(from),
        dry_run: false,
    };
    let mut sink = Sink::new(ctx, sel.uid_validity, "new");
    let result = with_grace(
        ctx.token,
        ctx.grace,
        sweep_mailbox(session, ctx.rules, &opts, &mut conn.executor, &mut sink),
    )
    .await;
    sink.flush();
    ctx.hb.beat();
    if let Some(e) = sink.state_error.take() {
        return Err(PassError::State(e));
    }
    if sink.validity_changed {
        // Renumbered between our SELECT and the pass's: nothing advances; reselect.
        return Err(PassError::Imap(ImapError::ConnectionLost(Some(
            "UIDVALIDITY changed during a pass".into(),
        ))));
    }
    let summary = result?.map_err(|e| match e {
        crate::sweep::SweepError::Select { source, .. }
        | crate::sweep::SweepError::Search { source, .. }
        | crate::sweep::SweepError::Fetch { source, .. } => PassError::Imap(source),
    })?;
    let failed = sink.failed.len();
    let advance_to = match sink.failed.iter().next() {
        Some(first_failed) => first_failed.saturating_sub(1),
        None => summary.highest_uid.map_or(sel.last_uid, |u| u.get()),
    };
    if advance_to > sel.last_uid {
        let (account, mailbox, validity) = (
            ctx.account.name.clone(),
            ctx.mailbox.to_string(),
            sel.uid_validity,
        );
        let now = ctx
            .store
            .call(move |db| db.set_last_uid(&account, &mailbox, validity, advance_to))
            .await?;
        sel.last_uid = now.max(advance_to);
    }
    Ok(NewOutcome {
        failed,
        more: summary.examined > 0 && failed == 0,
    })
}

/// `sweep` rules over the whole mailbox (selects it; the caller reselects as it needs).
pub(crate) async fn sweep(
    session: &mut Session,
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    sel: &Selected,
) -> Result<(), PassError> {
    let opts = SweepOptions {
        account: &ctx.account.name,
        mailbox: ctx.mailbox,
        watch: &ctx.account.watch,
        trigger: Some(Trigger::Sweep),
        trash: &conn.trash,
        archive: &conn.archive,
        now: jiff::Timestamp::now(),
        scope: Scope::All,
        dry_run: false,
    };
    let mut sink = Sink::new(ctx, sel.uid_validity, "sweep");
    let result = with_grace(
        ctx.token,
        ctx.grace,
        sweep_mailbox(session, ctx.rules, &opts, &mut conn.executor, &mut sink),
    )
    .await;
    sink.flush();
    ctx.hb.beat();
    if let Some(e) = sink.state_error.take() {
        return Err(PassError::State(e));
    }
    let summary = result?.map_err(|e| match e {
        crate::sweep::SweepError::Select { source, .. }
        | crate::sweep::SweepError::Search { source, .. }
        | crate::sweep::SweepError::Fetch { source, .. } => PassError::Imap(source),
    })?;
    tracing::debug!(
        account = %ctx.account.name,
        mailbox = ctx.mailbox,
        examined = summary.examined,
        matched = summary.matched,
        errors = summary.errors,
        "sweep done"
    );
    Ok(())
}

/// Poll one mailbox: STATUS, and a new-mail pass when UIDNEXT says there is something.
pub(crate) async fn poll(
    session: &mut Session,
    conn: &mut Conn,
    ctx: &Ctx<'_>,
) -> Result<(), PassError> {
    let status = session.status(ctx.mailbox).await?;
    let (account, mailbox) = (ctx.account.name.clone(), ctx.mailbox.to_string());
    let known = ctx
        .store
        .call(move |db| db.mailbox(&account, &mailbox))
        .await?;
    let quiet = match (known, status.uid_next, status.uid_validity) {
        (Some(k), Some(next), Some(v)) => k.uid_validity == v && next <= k.last_uid + 1,
        _ => false,
    };
    if quiet {
        return Ok(());
    }
    let mut sel = select(session, ctx).await?;
    loop {
        let out = new_mail(session, conn, ctx, &mut sel).await?;
        if !out.more {
            return Ok(());
        }
        sel = select(session, ctx).await?;
    }
}

/// True when some sweep rule applies to this mailbox of this account.
pub(crate) fn has_sweep_rules(rules: &RuleSet, account: &Account, mailbox: &str) -> bool {
    (0..rules.len()).any(|i| {
        rules.triggers(i).contains(&Trigger::Sweep)
            && rules.applies_to(i, Some(&account.name), mailbox, &account.watch)
    })
}

/// Every mailbox some sweep rule of this account names (its watch list for rules without
/// `mailboxes`).
pub(crate) fn sweep_mailboxes(rules: &RuleSet, account: &Account) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (i, rule) in rules.rules().enumerate() {
        if !rules.triggers(i).contains(&Trigger::Sweep) {
            continue;
        }
        if let Some(accounts) = &rule.accounts
            && !accounts.iter().any(|a| a == &account.name)
        {
            continue;
        }
        for m in rule.mailboxes.as_deref().unwrap_or(&account.watch) {
            out.insert(m.clone());
        }
    }
    out.into_iter().collect()
}

/// The pass's link to the state database, the journal and the logs.
struct Sink<'c, 'a> {
    ctx: &'c Ctx<'a>,
    /// The UIDVALIDITY our UIDs belong to.
    uid_validity: u32,
    /// "new" or "sweep", for the log line.
    trigger: &'static str,
    /// Intents written for the chunk being executed, by UID.
    intents: HashMap<u32, Vec<JournalId>>,
    /// Results of the chunk, written in one transaction at the next chunk or the end.
    pending: Vec<MessageResult>,
    /// UIDs whose plan failed, ascending.
    pub failed: BTreeSet<u32>,
    /// The first state database error; the pass's results are then not trusted.
    pub state_error: Option<StateError>,
    /// The pass's own SELECT saw another UIDVALIDITY.
    pub validity_changed: bool,
}

impl<'c, 'a> Sink<'c, 'a> {
    fn new(ctx: &'c Ctx<'a>, uid_validity: u32, trigger: &'static str) -> Self {
        Sink {
            ctx,
            uid_validity,
            trigger,
            intents: HashMap::new(),
            pending: Vec::new(),
            failed: BTreeSet::new(),
            state_error: None,
            validity_changed: false,
        }
    }

    fn note(&mut self, r: Result<(), StateError>) {
        if let Err(e) = r
            && self.state_error.is_none()
        {
            tracing::error!(account = %self.ctx.account.name, mailbox = self.ctx.mailbox, error = %super::worker::chain(&e), "state database write failed");
            self.state_error = Some(e);
        }
    }

    /// Write the buffered results: journal outcomes, applied pairs, and one log line each.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let intents = std::mem::take(&mut self.intents);
        let (account, mailbox, validity) =
            (&self.ctx.account.name, self.ctx.mailbox, self.uid_validity);
        let r = self.ctx.store.blocking(|db| {
            let tx = db.batch()?;
            for r in &pending {
                let uid = r.uid.get();
                let rule = r.rules.join(",");
                let ids = intents.get(&uid).map(Vec::as_slice).unwrap_or(&[]);
                if r.done || r.plan.is_empty() {
                    tx.journal_outcomes(ids, &Outcome::Done)?;
                    for (action, dest) in idempotent_actions(&r.plan) {
                        let entry = journal_entry(
                            account,
                            mailbox,
                            validity,
                            r,
                            &rule,
                            action,
                            Some(&dest),
                        );
                        tx.journal_record(&entry, &Outcome::Done)?;
                    }
                    let pairs: Vec<Applied<'_>> = r
                        .rules
                        .iter()
                        .map(|rule| Applied {
                            uid,
                            rule,
                            message_id: r.message_id.as_deref(),
                        })
                        .collect();
                    tx.record_applied(account, mailbox, validity, &pairs)?;
                }
                // A plan that failed part-way leaves its intents open: a copy may have been
                // made before a later step failed, and only the reconciliation at the next
                // SELECT (Message-ID looked up in the destination) can tell. Marking them
                // failed here made the retry copy again.
            }
            tx.commit()
        });
        self.note(r);
        for r in &pending {
            self.log(r);
        }
    }

    fn log(&mut self, r: &MessageResult) {
        let uid = r.uid.get();
        let rule = r.rules.join(", ");
        if let Some(error) = &r.error {
            self.failed.insert(uid);
            tracing::warn!(account = %self.ctx.account.name, mailbox = self.ctx.mailbox, uid, rule, error = %error, "could not carry out the plan");
            return;
        }
        if r.plan.is_empty() {
            tracing::debug!(account = %self.ctx.account.name, mailbox = self.ctx.mailbox, uid, rule, "matched; nothing left to do");
            return;
        }
        Stats::bump(&self.ctx.stats.messages_acted);
        let (action, destination) = summary(&r.plan);
        tracing::info!(
            account = %self.ctx.account.name,
            mailbox = self.ctx.mailbox,
            uid,
            rule,
            action,
            destination = destination.unwrap_or(""),
            trigger = self.trigger,
            message_id = r.message_id.as_deref().unwrap_or(""),
            "sorted"
        );
        for w in &r.warnings {
            tracing::warn!(account = %self.ctx.account.name, mailbox = self.ctx.mailbox, uid, rule, "{w}");
        }
    }
}

impl SweepSink for Sink<'_, '_> {
    fn selected(&mut self, info: &MailboxInfo) {
        if info.uid_validity.unwrap_or(0) != self.uid_validity {
            self.validity_changed = true;
        }
    }

    fn applied(&mut self, uids: &[Uid]) -> HashMap<Uid, HashSet<String>> {
        // A chunk was fetched: progress, for the watchdog, however long the whole pass takes.
        self.ctx.hb.beat();
        if self.validity_changed || self.state_error.is_some() {
            return self.refuse_all(uids);
        }
        let raw: Vec<u32> = uids.iter().map(|u| u.get()).collect();
        let (account, mailbox, validity) =
            (&self.ctx.account.name, self.ctx.mailbox, self.uid_validity);
        match self
            .ctx
            .store
            .blocking(|db| db.applied_rules(account, mailbox, validity, &raw))
        {
            Ok(map) => map
                .into_iter()
                .filter_map(|(u, rules)| Uid::new(u).map(|u| (u, rules)))
                .collect(),
            Err(e) => {
                self.note(Err(e));
                self.refuse_all(uids)
            }
        }
    }

    fn before_execute(&mut self, planned: &[MessageResult]) {
        // The previous chunk's results go to disk first.
        self.flush();
        let (account, mailbox, validity) =
            (&self.ctx.account.name, self.ctx.mailbox, self.uid_validity);
        let mut entries = Vec::new();
        for r in planned {
            let rule = r.rules.join(",");
            for (action, dest) in risky_actions(&r.plan) {
                entries.push((r.uid.get(), rule.clone(), action, dest, r));
            }
        }
        if entries.is_empty() {
            return;
        }
        let rows: Vec<NewJournalEntry<'_>> = entries
            .iter()
            .map(|(_, rule, action, dest, r)| {
                journal_entry(
                    account,
                    mailbox,
                    validity,
                    r,
                    rule,
                    *action,
                    dest.as_deref(),
                )
            })
            .collect();
        match self.ctx.store.blocking(|db| db.journal_intents(&rows)) {
            Ok(ids) => {
                for ((uid, ..), id) in entries.iter().zip(ids) {
                    self.intents.entry(*uid).or_default().push(id);
                }
            }
            Err(e) => self.note(Err(e)),
        }
    }

    fn message(&mut self, result: &MessageResult) {
        self.ctx.hb.beat();
        self.pending.push(result.clone());
    }
}

impl Sink<'_, '_> {
    /// Make evaluation add nothing: every rule counts as applied (used when the state
    /// database cannot say; the messages are then retried, not acted on twice).
    fn refuse_all(&mut self, uids: &[Uid]) -> HashMap<Uid, HashSet<String>> {
        let all: HashSet<String> = self.ctx.rules.rules().map(|r| r.name.clone()).collect();
        for u in uids {
            self.failed.insert(u.get());
        }
        uids.iter().map(|u| (*u, all.clone())).collect()
    }
}

fn journal_entry<'e>(
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

/// Copies and the terminal action: journaled as intents before they run.
fn risky_actions(plan: &Plan) -> Vec<(Action, Option<String>)> {
    let mut out: Vec<(Action, Option<String>)> = plan
        .copy
        .iter()
        .map(|m| (Action::Copy, Some(m.clone())))
        .collect();
    if let Some(f) = &plan.final_action {
        let action = match f.action {
            FinalKind::Move => Action::Move,
            FinalKind::Archive => Action::Archive,
            FinalKind::Trash => Action::Trash,
            FinalKind::Delete => Action::Delete,
        };
        out.push((action, f.mailbox.clone()));
    }
    out
}

/// Flag and label changes: repeating them is harmless, so they are journaled once done.
fn idempotent_actions(plan: &Plan) -> Vec<(Action, String)> {
    let mut out = Vec::new();
    if !plan.add_flags.is_empty() {
        out.push((Action::Flag, plan.add_flags.join(" ")));
    }
    if !plan.remove_flags.is_empty() {
        out.push((Action::Unflag, plan.remove_flags.join(" ")));
    }
    if !plan.add_labels.is_empty() {
        out.push((Action::Label, plan.add_labels.join(" ")));
    }
    out
}

/// The log line's `action` and `destination`: the terminal action if any, else the first
/// kind of change.
fn summary(plan: &Plan) -> (String, Option<&str>) {
    let mut parts = Vec::new();
    if !plan.add_flags.is_empty() {
        parts.push(format!("flag {}", plan.add_flags.join(" ")));
    }
    if !plan.remove_flags.is_empty() {
        parts.push(format!("unflag {}", plan.remove_flags.join(" ")));
    }
    if !plan.add_labels.is_empty() {
        parts.push(format!("label {}", plan.add_labels.join(" ")));
    }
    for c in &plan.copy {
        parts.push(format!("copy {c}"));
    }
    let mut destination = plan.copy.first().map(String::as_str);
    if let Some(f) = &plan.final_action {
        let kind = match f.action {
            FinalKind::Move => "move",
            FinalKind::Archive => "archive",
            FinalKind::Trash => "trash",
            FinalKind::Delete => "delete",
        };
        parts.push(kind.to_string());
        destination = f.mailbox.as_deref();
    }
    (parts.join("; "), destination)
}
