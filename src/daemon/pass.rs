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

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Stats;
use super::heartbeat::Heartbeat;
use super::store::Store;
use crate::config::{Account, FirstStart};
use crate::execute::Executor;
use crate::imap::uidset::Uid;
use crate::imap::{ImapError, MailboxInfo, Session};
use crate::imap::{SpecialUse, resolve_special};
use crate::rules::RuleSet;
use crate::rules::ast::Trigger;
use crate::state::StateError;
use crate::sweep::{Scope, SweepOptions, SweepSummary, server_caps, sweep_mailbox};

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
    /// Metrics and health of the worker running the pass.
    pub link: &'a super::metrics::Link,
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

/// A message whose plan failed this many times in a row (on one connection) is given up:
/// `last_uid` moves past it and it stays where it is. Retrying cannot fix a permanent refusal
/// (a `label` on a server without Gmail's extension, a destination the server will not create).
pub(crate) const GIVE_UP_AFTER: u32 = 5;

/// A selected mailbox, reconciled with the state database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selected {
    pub uid_validity: u32,
    /// Every UID up to this one is handled.
    pub last_uid: u32,
    /// Failed attempts per UID above `last_uid`, for [`GIVE_UP_AFTER`].
    pub attempts: HashMap<u32, u32>,
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
        attempts: HashMap::new(),
    };
    super::reconcile::reconcile(session, ctx, &sel).await?;
    Stats::bump(&ctx.stats.mailboxes_selected);
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

/// What one pass left: its summary (or the IMAP error that ended it), the UIDs whose plans
/// failed, and whether the pass saw the mailbox renumbered.
struct PassResult {
    summary: Result<SweepSummary, PassError>,
    failed: BTreeSet<u32>,
    validity_changed: bool,
}

/// One pass of the rules of `trigger` over `scope`, with the daemon's sink; its results are
/// written (and the heartbeat beaten) before it returns. A state database error ends it.
async fn run_pass(
    session: &mut Session,
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    uid_validity: u32,
    trigger: Trigger,
    scope: Scope,
) -> Result<PassResult, PassError> {
    let opts = SweepOptions {
        account: &ctx.account.name,
        mailbox: ctx.mailbox,
        watch: &ctx.account.watch,
        trigger: Some(trigger),
        trash: &conn.trash,
        archive: &conn.archive,
        now: jiff::Timestamp::now(),
        scope,
        dry_run: false,
    };
    let label = match trigger {
        Trigger::New => "new",
        Trigger::Sweep => "sweep",
    };
    let mut sink = super::sink::Sink::new(ctx, uid_validity, label);
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
    let summary = result.and_then(|r| {
        r.map_err(|e| match e {
            crate::sweep::SweepError::Select { source, .. }
            | crate::sweep::SweepError::Search { source, .. }
            | crate::sweep::SweepError::Fetch { source, .. } => PassError::Imap(source),
        })
    });
    if let Ok(s) = &summary {
        // Every message in scope, also those the server's SEARCH ruled out for the rules.
        let trigger = match trigger {
            Trigger::New => super::metrics::Trigger::New,
            Trigger::Sweep => super::metrics::Trigger::Sweep,
        };
        ctx.link.processed(trigger, s.examined);
    }
    Ok(PassResult {
        summary,
        failed: std::mem::take(&mut sink.failed),
        validity_changed: sink.validity_changed,
    })
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
    let pass = run_pass(
        session,
        conn,
        ctx,
        sel.uid_validity,
        Trigger::New,
        Scope::From(from),
    )
    .await?;
    if pass.validity_changed {
        // Renumbered between our SELECT and the pass's: nothing advances; reselect.
        return Err(PassError::Imap(ImapError::ConnectionLost(Some(
            "UIDVALIDITY changed during a pass".into(),
        ))));
    }
    let summary = pass.summary?;
    let mut failed = 0;
    let mut blocking = None;
    for &uid in &pass.failed {
        let n = sel.attempts.entry(uid).or_insert(0);
        *n += 1;
        if *n < GIVE_UP_AFTER {
            failed += 1;
            blocking = blocking.or(Some(uid));
        } else if *n == GIVE_UP_AFTER {
            tracing::error!(
                account = %ctx.account.name,
                mailbox = ctx.mailbox,
                uid,
                attempts = *n,
                "giving up on this message: its plan keeps failing; it stays where it is"
            );
        }
    }
    let advance_to = match blocking {
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
        let last = sel.last_uid;
        sel.attempts.retain(|uid, _| *uid > last);
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
    let summary = run_pass(
        session,
        conn,
        ctx,
        sel.uid_validity,
        Trigger::Sweep,
        Scope::All,
    )
    .await?
    .summary?;
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
