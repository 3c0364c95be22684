//! Evaluation: rules in order -> matched rules, one [`Plan`], warnings.

use super::plan::{FinalAction, FinalKind, Plan};
use super::subject_set::Memo;
use super::template::{Captures, Template, Var};
use super::view::{AddressSlot, MessageView};
use super::{CompiledAction, CompiledRule, EvalContext, Evaluation, FlagName, Match, RuleSet};

/// Flag changes in the order rules asked for them; a later change of the same flag wins.
#[derive(Default)]
struct FlagOps<'r> {
    /// (lower-cased flag, spelling as written, add?), borrowed from the compiled rules.
    ops: Vec<(&'r str, &'r str, bool)>,
}

impl<'r> FlagOps<'r> {
    fn set(&mut self, flag: &'r FlagName, add: bool) {
        match self.ops.iter_mut().find(|(l, _, _)| **l == *flag.lower) {
            Some(op) => {
                op.1 = &flag.spelling;
                op.2 = add;
            }
            None => self.ops.push((&flag.lower, &flag.spelling, add)),
        }
    }

    /// Only real changes: add what the message lacks, remove what it has.
    fn finish(self, view: &MessageView, plan: &mut Plan) {
        for (lower, spelling, add) in self.ops {
            let has = view.flags_lower.iter().any(|f| **f == *lower);
            match (add, has) {
                (true, false) => plan.add_flags.push(spelling.to_owned()),
                (false, true) => plan.remove_flags.push(spelling.to_owned()),
                _ => {}
            }
        }
    }
}

impl RuleSet {
    /// Evaluate the rules against one message. Pure: the same inputs give the same result.
    pub fn evaluate(&self, view: &MessageView, ctx: &EvalContext<'_>) -> Evaluation {
        self.evaluate_with(view, ctx, true)
    }

    /// [`evaluate`](Self::evaluate) trying every rule in full, without the index: what the
    /// index must never change.
    #[cfg(test)]
    pub(crate) fn evaluate_plain(&self, view: &MessageView, ctx: &EvalContext<'_>) -> Evaluation {
        self.evaluate_with(view, ctx, false)
    }

    fn evaluate_with(
        &self,
        view: &MessageView,
        ctx: &EvalContext<'_>,
        indexed: bool,
    ) -> Evaluation {
        let now = ctx.now.as_nanosecond();
        let mut ev = Evaluation::default();
        let mut flags = FlagOps::default();
        if view.from_count() > 1 {
            ev.warnings.push(format!(
                "the message has {} From headers (a forgery trick): every from condition is false",
                view.from_count()
            ));
        }
        let in_watch = ctx.watch.contains(ctx.mailbox);
        let candidates = self.index.candidates(view, indexed);
        let memo = Memo::new(self.subject_sets.as_ref().filter(|_| indexed));
        // Rules whose work on this message was undone: as if they did not exist.
        let undone: Vec<&str> = ctx
            .applied
            .into_iter()
            .flatten()
            .filter_map(|a| a.strip_prefix(super::UNDONE_PREFIX))
            .collect();
        for i in candidates {
            let (rule, compiled) = (&self.rules[i], &self.compiled[i]);
            if !undone.is_empty() && undone.contains(&rule.name.as_str()) {
                continue;
            }
            if let Some(t) = ctx.trigger
                && !compiled.triggers.contains(&t)
            {
                continue;
            }
            if let Some(accounts) = &rule.accounts
                && !ctx.account.is_some_and(|a| accounts.iter().any(|x| x == a))
            {
                continue;
            }
            let mailbox_ok = match &rule.mailboxes {
                Some(list) => list.contains(ctx.mailbox),
                None => in_watch,
            };
            if !mailbox_ok || !compiled.when.eval_in(view, now, &memo) {
                continue;
            }
            let mut because = String::new();
            compiled.when.explain(view, now, &mut because);
            ev.matched.push(Match {
                rule: rule.name.clone(),
                because,
            });
            let applied = ctx.applied.is_some_and(|a| a.contains(&rule.name));
            if !applied {
                apply(&rule.name, compiled, view, ctx, &mut ev, &mut flags);
            }
            if compiled.ends {
                break;
            }
        }
        flags.finish(view, &mut ev.plan);
        ev
    }
}

/// Add one matched rule's actions to the plan.
fn apply<'r>(
    name: &str,
    rule: &'r CompiledRule,
    view: &MessageView,
    ctx: &EvalContext<'_>,
    ev: &mut Evaluation,
    flags: &mut FlagOps<'r>,
) {
    let mut captures = Captures::new();
    if rule.uses_captures {
        let mut refs = Vec::new();
        rule.when.regexes(&mut refs);
        for r in refs {
            r.capture(view, &mut captures);
        }
    }
    let mut lookup = |var: &Var| variable(var, view, ctx, &captures);
    let mut terminal_seen = false;
    for action in &rule.actions {
        let (kind, template) = match action {
            CompiledAction::Flag(fs) => {
                fs.iter().for_each(|f| flags.set(f, true));
                continue;
            }
            CompiledAction::Unflag(fs) => {
                fs.iter().for_each(|f| flags.set(f, false));
                continue;
            }
            CompiledAction::Label(ls) => {
                for l in ls {
                    if !ev.plan.add_labels.contains(l) {
                        ev.plan.add_labels.push(l.clone());
                    }
                }
                continue;
            }
            CompiledAction::Stop => continue,
            CompiledAction::Copy(t) => {
                match t.expand(&mut lookup, ctx.delimiter) {
                    Ok(mb) if ctx.mailbox.is(&mb) => ev.warnings.push(format!(
                        "rule {name:?}: copy to {mb:?} skipped: the message is already there"
                    )),
                    Ok(mb) => {
                        if !ev.plan.copy.contains(&mb) {
                            ev.plan.copy.push(mb);
                        }
                    }
                    Err(var) => ev.warnings.push(skipped(name, "copy", t, &var, "")),
                }
                continue;
            }
            CompiledAction::Move(t) => (FinalKind::Move, Some(t)),
            CompiledAction::Archive(t) => (FinalKind::Archive, t.as_ref()),
            CompiledAction::Trash => (FinalKind::Trash, None),
            CompiledAction::Delete => (FinalKind::Delete, None),
        };
        if terminal_seen {
            ev.warnings.push(format!(
                "rule {name:?}: {} ignored: the rule already has a terminal action",
                kind_word(kind)
            ));
            continue;
        }
        terminal_seen = true;
        let mailbox = match (kind, template) {
            (FinalKind::Delete, _) => None,
            (FinalKind::Trash, _) => Some(ctx.trash.to_owned()),
            (FinalKind::Archive, None) => Some(ctx.archive.to_owned()),
            (_, Some(t)) => match t.expand(&mut lookup, ctx.delimiter) {
                Ok(mb) => Some(mb),
                Err(var) => {
                    ev.warnings.push(skipped(
                        name,
                        kind_word(kind),
                        t,
                        &var,
                        "; the message stays where it is",
                    ));
                    continue;
                }
            },
            (FinalKind::Move, None) => None,
        };
        if let Some(mb) = &mailbox
            && ctx.mailbox.is(mb)
        {
            ev.warnings.push(format!(
                "rule {name:?}: {} to {mb:?} skipped: the message is already there",
                kind_word(kind)
            ));
            continue;
        }
        ev.plan.final_action = Some(FinalAction {
            action: kind,
            mailbox,
        });
    }
}

fn kind_word(kind: FinalKind) -> &'static str {
    match kind {
        FinalKind::Move => "move",
        FinalKind::Archive => "archive",
        FinalKind::Trash => "trash",
        FinalKind::Delete => "delete",
    }
}

fn skipped(rule: &str, action: &str, t: &Template, var: &str, tail: &str) -> String {
    format!(
        "rule {rule:?}: {action} to {:?} skipped: {{{var}}} has no value for this message{tail}",
        t.source()
    )
}

/// The value of a template variable for this message, if it has one.
fn variable(
    var: &Var,
    view: &MessageView,
    ctx: &EvalContext<'_>,
    captures: &Captures,
) -> Option<String> {
    let from = || {
        let list = view.address_list(AddressSlot::From);
        if list.count == 1 {
            list.addrs.first()
        } else {
            None
        }
    };
    match var {
        Var::Year => view.received.as_ref().map(|z| format!("{:04}", z.year())),
        Var::Month => view.received.as_ref().map(|z| format!("{:02}", z.month())),
        Var::Day => view.received.as_ref().map(|z| format!("{:02}", z.day())),
        Var::ListId => view.list_ids.first().map(|l| l.text().to_owned()),
        Var::FromAddress => from().map(|a| a.address.to_string()),
        Var::FromDomain => from()
            .map(|a| a.domain().to_owned())
            .filter(|d| !d.is_empty()),
        Var::FromName => from().and_then(|a| a.name.as_ref().map(|n| n.text().to_owned())),
        Var::Mailbox => Some(ctx.mailbox.to_string()),
        Var::Account => ctx.account.map(str::to_owned),
        Var::Capture(n) => captures.get(n).cloned(),
    }
}
