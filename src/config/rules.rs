//! The `rules:` section: each rule's keys and its actions, turned into [`ast::Rule`]s.

use super::conditions::{self, flag_name};
use super::diag::Diags;
use super::node::{Node, Value};
use super::read::{self, MapKind};
use crate::rules::ast::{Action, ActionKind, ConditionKind, Rule, Span, Trigger};

const RULE_KEYS: &[&str] = &[
    "name",
    "when",
    "then",
    "accounts",
    "mailboxes",
    "on",
    "stop",
];
const ACTIONS: &[&str] = &[
    "move",
    "copy",
    "archive",
    "trash",
    "delete",
    "flag",
    "unflag",
    "mark_read",
    "mark_unread",
    "label",
    "stop",
];
const BARE_ACTIONS: &[&str] = &[
    "archive",
    "trash",
    "delete",
    "mark_read",
    "mark_unread",
    "stop",
];
const TRIGGERS: &[(&str, Trigger)] = &[("new", Trigger::New), ("sweep", Trigger::Sweep)];

/// Read `rules:` (absent or `null`: none). Returns the rules that had no error; `accounts`
/// holds every account name the file defines (also those of accounts with errors).
pub(crate) fn rules(d: &mut Diags, node: Option<&Node>, accounts: &[String]) -> Vec<Rule> {
    let Some(node) = node.filter(|n| n.value != Value::Null) else {
        return Vec::new();
    };
    let Value::Seq(items) = &node.value else {
        d.error(
            node.span,
            format!(
                "rules: expected a list of rules, found {}",
                read::found(node)
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut names: Vec<(String, Span)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        d.set_rule(None);
        let before = d.error_count();
        if let Some(rule) = rule(d, item, index, accounts, &mut names)
            && d.error_count() == before
        {
            out.push(rule);
        }
    }
    d.set_rule(None);
    out
}

fn rule(
    d: &mut Diags,
    node: &Node,
    index: usize,
    accounts: &[String],
    names: &mut Vec<(String, Span)>,
) -> Option<Rule> {
    if !matches!(node.value, Value::Map(_)) {
        d.error(
            node.span,
            format!(
                "rule #{}: expected a map with name, when and then, found {}",
                index + 1,
                read::found(node)
            ),
        );
        return None;
    }
    // The name first, so every other message can say which rule it is about.
    let name = rule_name(d, node, index, names);
    d.set_rule(name.clone());
    let f = read::fields(
        d,
        node,
        "rule",
        &MapKind {
            noun: "key",
            context: " in a rule",
            allowed: RULE_KEYS,
            quiet: &[],
        },
    )?;
    if f.get("name").is_none() {
        d.error(
            f.span,
            format!(
                "rule #{}: missing key \"name\": every rule needs a unique name",
                index + 1
            ),
        );
    }
    let when = f
        .require(d, "when", "a condition, or true to match every message")
        .and_then(|n| conditions::condition(d, n, "when"));
    let then = f
        .require(d, "then", "an action or a list of actions")
        .and_then(|n| then(d, n));
    let rule_accounts = f
        .get("accounts")
        .and_then(|n| rule_accounts(d, n, accounts));
    let mailboxes = f
        .get("mailboxes")
        .and_then(|n| read::strings(d, n, "mailboxes"));
    let on = f.get("on").and_then(|n| on(d, n));
    let stop = match f.get("stop") {
        Some(n) => read::boolean(d, n, "stop"),
        None => Some(false),
    };
    let when = when?;
    if let (Some(on), Some(n)) = (&on, f.get("on"))
        && on.as_slice() == [Trigger::New]
        && has_older_than(&when.kind)
    {
        d.warning(
            n.span,
            "on: new with older_than: a new message is never old, so this rule will hardly ever match; use on: sweep",
        );
    }
    Some(Rule {
        name: name?,
        span: node.span,
        when,
        then: then?,
        accounts: if f.get("accounts").is_some() {
            Some(rule_accounts?)
        } else {
            None
        },
        mailboxes: if f.get("mailboxes").is_some() {
            Some(mailboxes?)
        } else {
            None
        },
        on: if f.get("on").is_some() {
            Some(on?)
        } else {
            None
        },
        stop: stop?,
    })
}

/// The rule's name, checked (string, not empty, unique). Reported without a rule context.
fn rule_name(
    d: &mut Diags,
    node: &Node,
    index: usize,
    names: &mut Vec<(String, Span)>,
) -> Option<String> {
    let Value::Map(entries) = &node.value else {
        return None;
    };
    let (_, n) = entries.iter().find(|(k, _)| k.as_str() == Some("name"))?;
    let name = read::text(d, n, &format!("rule #{}: name", index + 1))?;
    if let Some((_, first)) = names.iter().find(|(x, _)| *x == name) {
        d.set_rule(Some(name.clone()));
        d.error(
            n.span,
            format!(
                "duplicate rule name {name:?} (first at line {})",
                first.line
            ),
        );
        d.set_rule(None);
    } else {
        names.push((name.clone(), n.span));
    }
    Some(name)
}

fn rule_accounts(d: &mut Diags, node: &Node, known: &[String]) -> Option<Vec<String>> {
    let list = read::text_list(d, node, "accounts")?;
    let mut ok = true;
    for (name, span) in &list {
        if !known.contains(name) {
            ok = false;
            let hint = if known.is_empty() {
                "no accounts are defined".to_owned()
            } else {
                format!("defined accounts: {}", known.join(", "))
            };
            let names: Vec<&str> = known.iter().map(String::as_str).collect();
            let typo = read::did_you_mean(name, &names);
            d.error(
                *span,
                format!("accounts: unknown account {name:?}{typo}; {hint}"),
            );
        }
    }
    ok.then(|| list.into_iter().map(|(s, _)| s).collect())
}

fn on(d: &mut Diags, node: &Node) -> Option<Vec<Trigger>> {
    match &node.value {
        Value::Seq(items) if items.is_empty() => {
            d.error(node.span, "on: the list is empty; give new, sweep or both");
            None
        }
        Value::Seq(items) => {
            let before = d.error_count();
            let mut out: Vec<Trigger> = Vec::new();
            for item in items {
                if let Some(t) = read::choice(d, item, "on", TRIGGERS)
                    && !out.contains(&t)
                {
                    out.push(t);
                }
            }
            (d.error_count() == before).then_some(out)
        }
        _ => read::choice(d, node, "on", TRIGGERS).map(|t| vec![t]),
    }
}

fn has_older_than(kind: &ConditionKind) -> bool {
    match kind {
        ConditionKind::OlderThan(_) => true,
        ConditionKind::All(list) | ConditionKind::Any(list) => {
            list.iter().any(|c| has_older_than(&c.kind))
        }
        _ => false,
    }
}

/// `then:` — one action or a non-empty list; at most one terminal action.
fn then(d: &mut Diags, node: &Node) -> Option<Vec<Action>> {
    let before = d.error_count();
    let actions: Vec<Action> = match &node.value {
        Value::Seq(items) if items.is_empty() => {
            d.error(
                node.span,
                "then: the list is empty; give at least one action",
            );
            return None;
        }
        Value::Seq(items) => items.iter().filter_map(|i| action(d, i)).collect(),
        Value::Null => {
            d.error(node.span, "then: give at least one action");
            return None;
        }
        _ => action(d, node).into_iter().collect(),
    };
    if d.error_count() != before {
        return None;
    }
    let mut terminal: Option<&Action> = None;
    for a in &actions {
        if !a.kind.is_terminal() {
            continue;
        }
        match terminal {
            Some(first) => {
                d.error(
                    a.span,
                    format!(
                        "a rule can have only one of move, archive, trash, delete; this {} comes after {} (line {})",
                        action_word(&a.kind),
                        action_word(&first.kind),
                        first.span.line
                    ),
                );
                return None;
            }
            None => terminal = Some(a),
        }
    }
    for a in &actions {
        if a.kind == ActionKind::Delete {
            d.warning(
                a.span,
                "delete removes the message permanently (it is expunged, not moved to the trash)",
            );
        }
    }
    Some(actions)
}

fn action_word(kind: &ActionKind) -> &'static str {
    match kind {
        ActionKind::Move(_) => "move",
        ActionKind::Copy(_) => "copy",
        ActionKind::Archive(_) => "archive",
        ActionKind::Trash => "trash",
        ActionKind::Delete => "delete",
        ActionKind::Flag(_) => "flag",
        ActionKind::Unflag(_) => "unflag",
        ActionKind::MarkRead => "mark_read",
        ActionKind::MarkUnread => "mark_unread",
        ActionKind::Label(_) => "label",
        ActionKind::Stop => "stop",
    }
}

fn bare(word: &str) -> Option<ActionKind> {
    Some(match word {
        "archive" => ActionKind::Archive(None),
        "trash" => ActionKind::Trash,
        "delete" => ActionKind::Delete,
        "mark_read" => ActionKind::MarkRead,
        "mark_unread" => ActionKind::MarkUnread,
        "stop" => ActionKind::Stop,
        _ => return None,
    })
}

/// One action: a bare word (`trash`) or a map with exactly one key (`move: X`).
fn action(d: &mut Diags, node: &Node) -> Option<Action> {
    match &node.value {
        Value::Str(word) => {
            if let Some(kind) = bare(word) {
                return Some(Action {
                    span: node.span,
                    kind,
                });
            }
            if ACTIONS.contains(&word.as_str()) {
                d.error(
                    node.span,
                    format!(
                        "{word} needs a value, as in {{ {word}: {} }}",
                        example(word)
                    ),
                );
            } else {
                d.error(
                    node.span,
                    format!(
                        "unknown action {word:?}{}; plain actions: {}; with a value: move, copy, archive, flag, unflag, label",
                        read::did_you_mean(word, ACTIONS),
                        BARE_ACTIONS.join(", ")
                    ),
                );
            }
            None
        }
        Value::Map(entries) => {
            if entries.is_empty() {
                d.error(
                    node.span,
                    "the action is empty; give one, as in { move: Lists }",
                );
                return None;
            }
            let f = read::fields(
                d,
                node,
                "action",
                &MapKind {
                    noun: "action",
                    context: "",
                    allowed: ACTIONS,
                    quiet: &[],
                },
            )?;
            if entries.len() > 1 {
                let keys: Vec<String> = entries
                    .iter()
                    .filter_map(|(k, _)| k.scalar_text())
                    .collect();
                d.error(
                    node.span,
                    format!(
                        "an action map holds exactly one action, found {}; write a list, as in then: [{{ move: Lists }}, {{ flag: work }}]",
                        keys.join(" and ")
                    ),
                );
                return None;
            }
            let (key, key_node, value) = *f.entries.first()?;
            let kind = action_value(d, key, value)?;
            Some(Action {
                span: key_node.span,
                kind,
            })
        }
        _ => {
            d.error(
                node.span,
                format!(
                    "expected an action ({{ move: MAILBOX }}, trash, ...), found {}",
                    read::found(node)
                ),
            );
            None
        }
    }
}

fn example(word: &str) -> &'static str {
    match word {
        "move" | "copy" => "Lists",
        "label" => "Receipts",
        _ => "\\Flagged",
    }
}

fn action_value(d: &mut Diags, key: &str, value: &Node) -> Option<ActionKind> {
    Some(match key {
        "move" => ActionKind::Move(read::text(d, value, key)?),
        "copy" => ActionKind::Copy(read::text(d, value, key)?),
        "archive" if value.value == Value::Null => ActionKind::Archive(None),
        "archive" => ActionKind::Archive(Some(read::text(d, value, key)?)),
        "flag" => ActionKind::Flag(flags(d, value, key)?),
        "unflag" => ActionKind::Unflag(flags(d, value, key)?),
        "label" => ActionKind::Label(read::strings(d, value, key)?),
        _ => {
            // trash, delete, mark_read, mark_unread, stop: no value (or `true`).
            if !matches!(value.value, Value::Null | Value::Bool(true)) {
                d.error(
                    value.span,
                    format!("{key} takes no value; write it as a plain word: then: [{key}]"),
                );
                return None;
            }
            bare(key)?
        }
    })
}

fn flags(d: &mut Diags, node: &Node, key: &str) -> Option<Vec<String>> {
    let list = read::text_list(d, node, key)?;
    let before = d.error_count();
    let out: Vec<String> = list
        .into_iter()
        .filter_map(|(s, span)| match flag_name(&s) {
            Ok(f) => Some(f),
            Err(e) => {
                d.error(span, format!("{key}: {e}"));
                None
            }
        })
        .collect();
    (d.error_count() == before).then_some(out)
}
