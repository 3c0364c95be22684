//! What the daemon does to one mailbox when it acts on it, on top of [`crate::pass`]:
//!
//! ```text
//! act:  lock the mailbox (waiting, asynchronously, while a sweep holds it)
//!       [probe the state database when it failed before]
//!       open: SELECT + the mailbox's state row (first start, UIDVALIDITY change)
//!       recover: settle the intents an interrupted run left open
//!       new mail: `new` rules over UID <last+1>:*, then advance last_uid past what was fully
//!                 handled, never past a message that failed
//!       sweep (when due): `sweep` rules over the whole mailbox
//!       let go of the lock (the worker then IDLEs without holding it)
//! poll: STATUS first; act only when UIDNEXT moved
//! ```
//!
//! Exactly once: the pass writes an intent before every non-idempotent command and records
//! what every message got, evaluation is told which rules were already applied, and a state
//! database that cannot be written stops everything before the server is changed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::heartbeat::{Heartbeat, beating};
use super::metrics::{self, ErrorKind, Link};
use super::status::Stats;
use crate::config::Account;
use crate::execute::Executor;
use crate::imap::uidset::Uid;
use crate::imap::{ImapError, MailboxInfo, Session};
use crate::imap::{SpecialUse, resolve_special};
use crate::lock::{LockError, Locks};
use crate::pass::open::{OpenError, Started};
use crate::pass::record::Place;
use crate::pass::sink::Sink;
use crate::pass::target::server_caps;
use crate::pass::{MessageResult, PassError, PassOptions, Report, Scope, Summary};
use crate::recover::RecoverError;
use crate::rules::ast::Trigger;
use crate::rules::{Change, Plan, RuleSet};
use crate::state::{StateError, Store};
use crate::vocab::{MailboxName, UidValidity};

/// Why acting on a mailbox stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MailboxError {
    /// The server or the connection: reconnect (or, for a refused SELECT, try again later).
    #[error(transparent)]
    Imap(#[from] ImapError),
    /// The state database cannot be read or written: act on nothing, retry later.
    #[error("the state database {} is not writable", .file.display())]
    State {
        file: std::path::PathBuf,
        #[source]
        source: StateError,
    },
    /// The lock file cannot be made: as bad as an unwritable state.
    #[error(transparent)]
    Lock(LockError),
    #[error("cancelled")]
    Cancelled,
    /// The server sends no UIDVALIDITY for the mailbox: nothing can be remembered about it.
    #[error("the server sent no UIDVALIDITY for {0}, so no state can be kept for it")]
    NoUidValidity(MailboxName),
}

impl MailboxError {
    fn state(store: &Store, source: StateError) -> MailboxError {
        MailboxError::State {
            file: store.file(),
            source,
        }
    }
}

/// What acting on a mailbox needs to know.
pub(crate) struct Ctx<'a> {
    pub account: &'a Account,
    pub mailbox: &'a MailboxName,
    /// A snapshot of the rules, taken at the start of the batch.
    pub rules: &'a Arc<RuleSet>,
    pub store: &'a Store,
    pub locks: &'a Locks,
    pub stats: &'a Stats,
    pub token: &'a CancellationToken,
    /// After cancellation, a batch in flight gets this long to finish before it is abandoned.
    pub grace: Duration,
    pub hb: &'a Heartbeat,
    /// Metrics of the worker acting: messages processed, rule matches, actions, push latency.
    pub link: &'a Link,
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

/// What a worker remembers of a mailbox between the times it acts on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selected {
    pub uid_validity: UidValidity,
    /// Every UID up to this one is handled.
    pub last_uid: u32,
    /// Failed attempts per UID above `last_uid`, for [`GIVE_UP_AFTER`].
    pub attempts: HashMap<u32, u32>,
}

/// What to do while holding the mailbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Work {
    /// `new` rules over the mail that arrived.
    pub new_mail: bool,
    /// `sweep` rules over the whole mailbox.
    pub sweep: bool,
    /// Write to the state database before anything else (it failed last time): nothing is
    /// done on the server unless the write works.
    pub probe: bool,
}

/// What acting on a mailbox did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Acted {
    /// Messages whose plan failed (retried later with backoff).
    pub failed: usize,
    /// The new-mail pass saw messages: look again at once (mail may have arrived meanwhile).
    pub more: bool,
}

/// Acts on the mailbox under its lock (see the module doc). `sel` carries what the worker
/// knows of the mailbox from one time to the next.
pub(crate) async fn act(
    session: &mut Session,
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    sel: &mut Option<Selected>,
    work: Work,
) -> Result<Acted, MailboxError> {
    let account = &ctx.account.name;
    let waiting = |holder: &Option<crate::lock::Holder>| {
        let holder = holder
            .as_ref()
            .map_or_else(|| "another process".into(), |h| h.to_string());
        tracing::info!(account = %account, mailbox = %ctx.mailbox, %holder, "waiting for the mailbox: another process is working on it");
    };
    // A sweep may hold the mailbox for minutes: the wait beats, so the watchdog does not
    // take the waiting worker for a stuck one.
    let acquire = ctx.locks.acquire(account, ctx.mailbox, None, waiting);
    let lock = tokio::select! {
        _ = ctx.token.cancelled() => return Err(MailboxError::Cancelled),
        r = beating(ctx.hb, acquire) => r.map_err(MailboxError::Lock)?,
    };
    if work.probe {
        let (name, mailbox) = (account.clone(), ctx.mailbox.clone());
        ctx.store
            .call(move |db| db.touch(&name, &mailbox))
            .await
            .map_err(|e| MailboxError::state(ctx.store, e))?;
    }
    let opened = crate::pass::open::open(session, ctx.store, ctx.account, ctx.mailbox)
        .await
        .map_err(|e| match e {
            OpenError::Imap { source, .. } => MailboxError::Imap(source),
            OpenError::State(e) => MailboxError::state(ctx.store, e),
            OpenError::NoUidValidity(m) => MailboxError::NoUidValidity(m),
        })?;
    if let Some(Started::Renumbered(_)) = opened.started {
        Stats::bump(&ctx.stats.uidvalidity_resets);
    }
    let first_time = sel.is_none();
    let selected = match sel.take() {
        // Failed attempts count on (same numbering), so a message that keeps failing is
        // given up in the end.
        Some(mut s) if s.uid_validity == opened.uid_validity && opened.started.is_none() => {
            s.last_uid = opened.last_uid;
            s
        }
        _ => Selected {
            uid_validity: opened.uid_validity,
            last_uid: opened.last_uid,
            attempts: HashMap::new(),
        },
    };
    let s = sel.insert(selected);
    // Settling a large interrupted batch can take longer than the watchdog's allowance; each
    // of its commands has its own timeout, so beating meanwhile hides no hang.
    let recovery = crate::recover::recover(
        session,
        ctx.store,
        account,
        ctx.mailbox,
        s.uid_validity,
        ctx.rules,
    );
    beating(ctx.hb, recovery).await.map_err(|e| match e {
        RecoverError::Imap { source, .. } => MailboxError::Imap(source),
        RecoverError::State(e) => MailboxError::state(ctx.store, e),
    })?;
    if first_time {
        Stats::bump(&ctx.stats.mailboxes_selected);
    }
    let mut acted = Acted::default();
    let info = &opened.info;
    if work.new_mail {
        acted = new_mail(session, conn, ctx, s, info).await?;
    }
    if work.sweep {
        sweep(session, conn, ctx, s, info).await?;
    }
    drop(lock);
    Ok(acted)
}

/// Run a pass to completion, or, once cancelled, for at most `grace` more.
async fn with_grace<T>(
    token: &CancellationToken,
    grace: Duration,
    fut: impl Future<Output = T>,
) -> Result<T, MailboxError> {
    tokio::pin!(fut);
    tokio::select! {
        r = &mut fut => return Ok(r),
        _ = token.cancelled() => {}
    }
    tokio::time::timeout(grace, fut)
        .await
        .map_err(|_| MailboxError::Cancelled)
}

/// One pass of the rules of `trigger` over `scope`; its results are written and logged before
/// it returns, with the UIDs whose plans failed.
async fn run_pass(
    session: &mut Session,
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    uid_validity: UidValidity,
    trigger: Trigger,
    scope: Scope,
    selected: &MailboxInfo,
) -> Result<(Summary, BTreeSet<u32>), MailboxError> {
    let opts = PassOptions {
        account: &ctx.account.name,
        mailbox: ctx.mailbox,
        watch: &ctx.account.watch,
        trigger: Some(trigger),
        trash: &conn.trash,
        archive: &conn.archive,
        now: jiff::Timestamp::now(),
        scope,
        dry_run: false,
        selected: Some(selected),
        // The daemon's log lines name a message by UID and Message-ID.
        gists: false,
    };
    let place = Place {
        account: ctx.account.name.clone(),
        mailbox: ctx.mailbox.clone(),
        uid_validity,
    };
    let mut sink = Sink::new(Some(ctx.store.clone()), Some(place), false);
    let mut log = Log {
        ctx,
        trigger: match trigger {
            Trigger::New => metrics::Trigger::New,
            Trigger::Sweep => metrics::Trigger::Sweep,
        },
        failed: BTreeSet::new(),
    };
    let result = with_grace(
        ctx.token,
        ctx.grace,
        crate::pass::run(
            session,
            ctx.rules,
            &opts,
            &mut conn.executor,
            &mut sink,
            &mut log,
        ),
    )
    .await?;
    ctx.hb.beat();
    match result {
        Ok(summary) => {
            // Every message in scope, also those the server's SEARCH ruled out for the rules.
            ctx.link.processed(log.trigger, summary.examined);
            Ok((summary, log.failed))
        }
        Err(PassError::State { file, source }) => Err(MailboxError::State { file, source }),
        // Renumbered between our SELECT and the pass's: nothing advances; open it again.
        Err(PassError::ValidityChanged { .. }) => Err(MailboxError::Imap(
            ImapError::ConnectionLost(Some("UIDVALIDITY changed during a pass".into())),
        )),
        Err(
            PassError::Select { source, .. }
            | PassError::Search { source, .. }
            | PassError::Fetch { source, .. }
            | PassError::Execute { source, .. },
        ) => Err(MailboxError::Imap(source)),
    }
}

/// `new` rules over the mail that arrived since `last_uid`; advances `last_uid`.
async fn new_mail(
    session: &mut Session,
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    sel: &mut Selected,
    selected: &MailboxInfo,
) -> Result<Acted, MailboxError> {
    let Some(from) = Uid::new(sel.last_uid.saturating_add(1)) else {
        return Ok(Acted::default());
    };
    let (summary, failed_uids) = run_pass(
        session,
        conn,
        ctx,
        sel.uid_validity,
        Trigger::New,
        Scope::From(from),
        selected,
    )
    .await?;
    let mut failed = 0;
    let mut blocking = None;
    for &uid in &failed_uids {
        let n = sel.attempts.entry(uid).or_insert(0);
        *n += 1;
        if *n < GIVE_UP_AFTER {
            failed += 1;
            blocking = blocking.or(Some(uid));
        } else if *n == GIVE_UP_AFTER {
            tracing::error!(
                account = %ctx.account.name,
                mailbox = %ctx.mailbox,
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
            ctx.mailbox.clone(),
            sel.uid_validity,
        );
        let now = ctx
            .store
            .call(move |db| db.set_last_uid(&account, &mailbox, validity, advance_to))
            .await
            .map_err(|e| MailboxError::state(ctx.store, e))?;
        sel.last_uid = now.max(advance_to);
        let last = sel.last_uid;
        sel.attempts.retain(|uid, _| *uid > last);
    }
    Ok(Acted {
        failed,
        more: summary.examined > 0 && failed == 0,
    })
}

/// `sweep` rules over the whole mailbox.
async fn sweep(
    session: &mut Session,
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    sel: &Selected,
    selected: &MailboxInfo,
) -> Result<(), MailboxError> {
    let (summary, _) = run_pass(
        session,
        conn,
        ctx,
        sel.uid_validity,
        Trigger::Sweep,
        Scope::All,
        selected,
    )
    .await?;
    tracing::debug!(
        account = %ctx.account.name,
        mailbox = %ctx.mailbox,
        examined = summary.examined,
        matched = summary.matched,
        errors = summary.errors,
        "sweep done"
    );
    Ok(())
}

/// Poll one mailbox: STATUS, and act (new mail) when UIDNEXT says there is something.
pub(crate) async fn poll(
    session: &mut Session,
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    work: Work,
) -> Result<(), MailboxError> {
    let status = session.status(ctx.mailbox).await?;
    let (account, mailbox) = (ctx.account.name.clone(), ctx.mailbox.clone());
    let known = ctx
        .store
        .call(move |db| db.mailbox(&account, &mailbox))
        .await
        .map_err(|e| MailboxError::state(ctx.store, e))?;
    let quiet = match (known, status.uid_next, status.uid_validity) {
        (Some(k), Some(next), Some(v)) => k.uid_validity.get() == v && next <= k.last_uid + 1,
        _ => false,
    };
    if quiet && !work.probe {
        return Ok(());
    }
    let mut sel = None;
    loop {
        let work = Work {
            new_mail: true,
            ..work
        };
        if !act(session, conn, ctx, &mut sel, work).await?.more {
            return Ok(());
        }
    }
}

/// True when some sweep rule applies to this mailbox of this account.
pub(crate) fn has_sweep_rules(rules: &RuleSet, account: &Account, mailbox: &MailboxName) -> bool {
    (0..rules.len()).any(|i| {
        rules.triggers(i).contains(&Trigger::Sweep)
            && rules.applies_to(i, Some(&account.name), mailbox, &account.watch)
    })
}

/// Every mailbox some sweep rule of this account names (its watch list for rules without
/// `mailboxes`).
pub(crate) fn sweep_mailboxes(rules: &RuleSet, account: &Account) -> Vec<MailboxName> {
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

/// The mailboxes only sweep rules name: not watched (INBOX in any spelling is watched INBOX),
/// so the account's poller sweeps them.
pub(crate) fn sweep_only_mailboxes(rules: &RuleSet, account: &Account) -> Vec<MailboxName> {
    sweep_mailboxes(rules, account)
        .into_iter()
        .filter(|m| !account.watch.contains(m))
        .collect()
}

/// The daemon's [`Report`]: one log line per message acted on, the counters and metrics,
/// the heartbeat, and the UIDs whose plans failed.
struct Log<'c, 'a> {
    ctx: &'c Ctx<'a>,
    /// Which rules ran, for the log line and the metrics.
    trigger: metrics::Trigger,
    /// UIDs whose plan failed, ascending.
    failed: BTreeSet<u32>,
}

impl Report for Log<'_, '_> {
    fn progress(&mut self) {
        self.ctx.hb.beat();
    }

    fn message(&mut self, r: &MessageResult) {
        self.ctx.hb.beat();
        let (ctx, uid) = (self.ctx, r.uid.get());
        let rule = r.rules.join(", ");
        ctx.link.result(r, self.trigger);
        if let Some(error) = &r.error {
            ctx.link.error(ErrorKind::Command, error);
            self.failed.insert(uid);
            tracing::warn!(account = %ctx.account.name, mailbox = %ctx.mailbox, uid, rule = %rule, error = %error, "could not carry out the plan");
            return;
        }
        if r.plan.is_empty() {
            tracing::debug!(account = %ctx.account.name, mailbox = %ctx.mailbox, uid, rule = %rule, "matched; nothing left to do");
            return;
        }
        Stats::bump(&ctx.stats.messages_acted);
        let (action, destination) = summary(&r.plan);
        tracing::info!(
            account = %ctx.account.name,
            mailbox = %ctx.mailbox,
            uid,
            rule = %rule,
            action = %action,
            destination = %destination.unwrap_or(""),
            trigger = %self.trigger.label(),
            message_id = %r.message_id.as_deref().unwrap_or(""),
            "sorted"
        );
        for w in &r.warnings {
            tracing::warn!(account = %ctx.account.name, mailbox = %ctx.mailbox, uid, rule = %rule, "{w}");
        }
    }
}

/// The log line's `action` (the plan in words, the terminal action without its mailbox) and
/// `destination` (the terminal action's mailbox, else the first copy's).
fn summary(plan: &Plan) -> (String, Option<&str>) {
    let words: Vec<String> = plan
        .changes()
        .iter()
        .map(|c| match c {
            Change::To(verb, _) if *verb != "copy" => (*verb).to_owned(),
            c => c.words(false),
        })
        .collect();
    let destination = match &plan.final_action {
        Some(f) => f.mailbox.as_deref(),
        None => plan.copy.first().map(String::as_str),
    };
    (words.join("; "), destination)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 11, item 2): the poller compared names case-sensitively, so with
    /// `watch: [inbox]` a sweep rule on `INBOX` made the poller sweep INBOX beside the IDLE
    /// worker on it — two workers on one mailbox.
    #[test]
    fn inbox_in_any_spelling_is_watched_not_sweep_only() {
        let yaml = r#"
accounts:
  - { name: a, host: h, username: u, password: p, watch: [inbox] }
rules:
  - { name: old, when: { older_than: 30d }, then: trash, mailboxes: [INBOX, Archive] }
  - { name: older, when: { older_than: 90d }, then: trash }
"#;
        let config = crate::config::load_str(yaml, std::path::Path::new("/tmp/c.yaml")).unwrap();
        let account = config.account("a").unwrap();
        assert_eq!(
            sweep_only_mailboxes(&config.rules, account),
            [MailboxName::new("Archive")]
        );
        assert!(has_sweep_rules(
            &config.rules,
            account,
            &MailboxName::new("Inbox")
        ));
    }
}
