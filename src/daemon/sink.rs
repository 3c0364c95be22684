//! The daemon's [`SweepSink`]: what a pass asks of the state database (rules already applied),
//! the journal (intents before risky commands, outcomes after), and the log (one line per
//! message acted on).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::Stats;
use super::metrics::{ErrorKind, Trigger};
use super::pass::Ctx;
use crate::imap::MailboxInfo;
use crate::imap::uidset::Uid;
use crate::record::{self, Intents, Place};
use crate::rules::{FinalKind, Plan};
use crate::state::StateError;
use crate::sweep::{MessageResult, SweepSink};

/// The pass's link to the state database, the journal and the logs.
pub(crate) struct Sink<'c, 'a> {
    ctx: &'c Ctx<'a>,
    /// The UIDVALIDITY our UIDs belong to.
    uid_validity: u32,
    /// "new" or "sweep", for the log line.
    trigger: &'static str,
    /// Intents written for the chunk being executed, by UID.
    intents: Intents,
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
    pub fn new(ctx: &'c Ctx<'a>, uid_validity: u32, trigger: &'static str) -> Self {
        Sink {
            ctx,
            uid_validity,
            trigger,
            intents: Intents::new(),
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
            let text = super::worker::chain(&e);
            tracing::error!(account = %self.ctx.account.name, mailbox = self.ctx.mailbox, error = %text, "state database write failed");
            self.ctx.link.error(ErrorKind::State, &text);
            self.state_error = Some(e);
        }
    }

    /// Write the buffered results: journal outcomes, applied pairs, and one log line each.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let at = Place {
            account: &self.ctx.account.name,
            mailbox: self.ctx.mailbox,
            uid_validity: self.uid_validity,
        };
        let intents = &self.intents;
        let r = self
            .ctx
            .store
            .blocking(|db| record::results(db, at, &pending, intents));
        self.note(r);
        // Intents of messages decided but not yet carried out stay for their results.
        self.intents.forget(pending.iter().map(|r| r.uid.get()));
        for r in &pending {
            self.log(r);
        }
    }

    fn log(&mut self, r: &MessageResult) {
        let uid = r.uid.get();
        let rule = r.rules.join(", ");
        self.ctx.link.result(r, self.metrics_trigger());
        if let Some(error) = &r.error {
            self.ctx.link.error(ErrorKind::Command, error);
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

    fn applied_to(&mut self, messages: &[(Uid, Option<&str>)]) -> HashMap<Uid, HashSet<String>> {
        // A chunk was fetched: progress, for the watchdog, however long the whole pass takes.
        self.ctx.hb.beat();
        let uids: Vec<Uid> = messages.iter().map(|(u, _)| *u).collect();
        if self.validity_changed || self.state_error.is_some() {
            return self.refuse_all(&uids);
        }
        // Only records made for the same Message-ID count: UIDVALIDITY can repeat across
        // servers (a test server started again, a restored backup).
        let raw: Vec<(u32, Option<&str>)> = messages.iter().map(|(u, id)| (u.get(), *id)).collect();
        let (account, mailbox, validity) =
            (&self.ctx.account.name, self.ctx.mailbox, self.uid_validity);
        match self
            .ctx
            .store
            .blocking(|db| db.applied_rules_to(account, mailbox, validity, &raw))
        {
            Ok(map) => map
                .into_iter()
                .filter_map(|(u, rules)| Uid::new(u).map(|u| (u, rules)))
                .collect(),
            Err(e) => {
                self.note(Err(e));
                self.refuse_all(&uids)
            }
        }
    }

    fn before_execute(&mut self, planned: &[MessageResult]) {
        // The previous chunk's results go to disk first.
        self.flush();
        let at = Place {
            account: &self.ctx.account.name,
            mailbox: self.ctx.mailbox,
            uid_validity: self.uid_validity,
        };
        match self
            .ctx
            .store
            .blocking(|db| record::intents(db, at, planned))
        {
            Ok(ids) => self.intents.extend(ids),
            Err(e) => self.note(Err(e)),
        }
    }

    fn message(&mut self, result: &MessageResult) {
        self.ctx.hb.beat();
        self.pending.push(result.clone());
        if self.pending.len() >= record::RESULTS_BATCH {
            self.flush();
        }
    }
}

impl Sink<'_, '_> {
    /// The pass's trigger, as the metrics name it.
    fn metrics_trigger(&self) -> Trigger {
        if self.trigger == "sweep" {
            Trigger::Sweep
        } else {
            Trigger::New
        }
    }

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
