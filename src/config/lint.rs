//! Warnings about rules that are valid but likely wrong: moves that send mail back and forth.
//!
//! A rule's mailboxes are its `mailboxes:` or, by default, the `watch` list of each account it
//! applies to (`[INBOX]` when the file has no accounts). Its destinations are its `move`, `copy`,
//! `archive` (the account's `archive`, else "Archive") and `trash` (the account's `trash`, else
//! "Trash"). Templates are compared by what they can produce: `{mailbox}` is the mailbox the
//! rule runs in, any other variable one or more characters without `/`; a template made of
//! variables only (`{list_id}`) could be anything and is not compared.

use std::collections::HashSet;

use super::diag::{Diags, Severity};
use super::types::Account;
use crate::rules::ast::{ActionKind, Rule, Span};

/// The mailbox-related facts of one account.
struct Ctx<'a> {
    /// `None` for the implicit context of a file without accounts.
    name: Option<&'a str>,
    watch: Vec<&'a str>,
    trash: &'a str,
    archive: &'a str,
}

/// A destination of a rule, with the action that names it.
struct Dest<'a> {
    template: &'a str,
    action: &'static str,
    span: Span,
}

/// Warn about a rule that moves or copies mail into a mailbox it applies to itself, and about
/// two rules that send mail back and forth between two mailboxes.
pub(crate) fn move_loops(d: &mut Diags, rules: &[Rule], accounts: &[Account]) {
    let contexts: Vec<Ctx<'_>> = if accounts.is_empty() {
        vec![Ctx {
            name: None,
            watch: vec!["INBOX"],
            trash: "Trash",
            archive: "Archive",
        }]
    } else {
        accounts
            .iter()
            .map(|a| Ctx {
                name: Some(&a.name),
                watch: a.watch.iter().map(|m| m.as_str()).collect(),
                trash: a.trash.as_deref().unwrap_or("Trash"),
                archive: a.archive.as_deref().unwrap_or("Archive"),
            })
            .collect()
    };
    let mut self_reported: HashSet<(usize, Span)> = HashSet::new();
    let mut pair_reported: HashSet<(usize, usize)> = HashSet::new();
    for ctx in &contexts {
        let applying: Vec<(usize, Vec<&str>, Vec<Dest<'_>>)> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| match (&r.accounts, ctx.name) {
                (None, _) => true,
                (Some(list), Some(name)) => list.iter().any(|a| a == name),
                (Some(_), None) => false,
            })
            .map(|(i, r)| {
                let sources = match &r.mailboxes {
                    Some(m) => m.iter().map(|m| m.as_str()).collect(),
                    None => ctx.watch.clone(),
                };
                (i, sources, destinations(r, ctx))
            })
            .collect();
        for (i, sources, dests) in &applying {
            for dest in dests {
                let Some(x) = sources.iter().find(|x| may_produce(dest.template, x, x)) else {
                    continue;
                };
                if self_reported.insert((*i, dest.span)) {
                    d.push_for_rule(
                        Severity::Warning,
                        dest.span,
                        &rules[*i].name,
                        format!(
                            "{} to \"{x}\", a mailbox this rule applies to: every message it puts there would be handled by it again",
                            dest.action
                        ),
                    );
                }
            }
        }
        for (a, (i, src_i, dst_i)) in applying.iter().enumerate() {
            for (j, src_j, dst_j) in &applying[a + 1..] {
                if pair_reported.contains(&(*i, *j)) {
                    continue;
                }
                if let Some((x, y, dest)) = bounce(src_i, dst_i, src_j, dst_j) {
                    pair_reported.insert((*i, *j));
                    d.push_for_rule(
                        Severity::Warning,
                        dest.span,
                        &rules[*i].name,
                        format!(
                            "moves mail from \"{x}\" to \"{y}\", and rule {:?} (line {}) moves it from \"{y}\" back to \"{x}\": a message matching both would go back and forth forever",
                            rules[*j].name, rules[*j].span.line
                        ),
                    );
                }
            }
        }
    }
}

/// X in A's mailboxes, Y (not X) in B's, A sends X's mail to Y and B sends Y's mail to X.
fn bounce<'a, 'b>(
    src_a: &[&'b str],
    dst_a: &'a [Dest<'a>],
    src_b: &[&'b str],
    dst_b: &[Dest<'_>],
) -> Option<(&'b str, &'b str, &'a Dest<'a>)> {
    for x in src_a {
        for y in src_b {
            if same_mailbox(x, y) {
                continue;
            }
            let Some(there) = dst_a.iter().find(|dest| may_produce(dest.template, y, x)) else {
                continue;
            };
            if dst_b.iter().any(|dest| may_produce(dest.template, x, y)) {
                return Some((x, y, there));
            }
        }
    }
    None
}

fn destinations<'a>(rule: &'a Rule, ctx: &Ctx<'a>) -> Vec<Dest<'a>> {
    rule.then
        .iter()
        .filter_map(|a| {
            let (template, action) = match &a.kind {
                ActionKind::Move(t) => (t.as_str(), "move"),
                ActionKind::Copy(t) => (t.as_str(), "copy"),
                ActionKind::Archive(Some(t)) => (t.as_str(), "archive"),
                ActionKind::Archive(None) => (ctx.archive, "archive"),
                ActionKind::Trash => (ctx.trash, "trash"),
                _ => return None,
            };
            Some(Dest {
                template,
                action,
                span: a.span,
            })
        })
        .collect()
}

/// INBOX is case-insensitive (RFC 3501); other names are compared as written.
fn same_mailbox(a: &str, b: &str) -> bool {
    a == b || (a.eq_ignore_ascii_case("INBOX") && b.eq_ignore_ascii_case("INBOX"))
}

/// One piece of a template.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(char),
    /// A variable other than `{mailbox}`: one or more characters without `/`.
    Var,
}

/// Whether `template`, expanded for a message in `current`, could name `target`.
fn may_produce(template: &str, target: &str, current: &str) -> bool {
    let Some(pieces) = pieces(template, current) else {
        return false;
    };
    if !pieces.iter().any(|p| matches!(p, Piece::Text(_))) {
        return false;
    }
    if target.eq_ignore_ascii_case("INBOX") {
        let text: Option<String> = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(c) => Some(*c),
                Piece::Var => None,
            })
            .collect();
        return text.is_some_and(|t| t.eq_ignore_ascii_case("INBOX"));
    }
    let target: Vec<char> = target.chars().collect();
    matches(&pieces, &target)
}

/// Split a template; `{mailbox}` is replaced by `current`. `None` if it is malformed (the
/// rules engine reports that).
fn pieces(template: &str, current: &str) -> Option<Vec<Piece>> {
    let mut out = Vec::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push(Piece::Text('{'));
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push(Piece::Text('}'));
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next()? {
                        '}' => break,
                        ch => name.push(ch),
                    }
                }
                if name == "mailbox" {
                    out.extend(current.chars().map(Piece::Text));
                } else {
                    out.push(Piece::Var);
                }
            }
            '}' => return None,
            other => out.push(Piece::Text(other)),
        }
    }
    Some(out)
}

fn matches(pieces: &[Piece], target: &[char]) -> bool {
    match pieces.split_first() {
        None => target.is_empty(),
        Some((Piece::Text(c), rest)) => target.first() == Some(c) && matches(rest, &target[1..]),
        Some((Piece::Var, rest)) => (1..=target.len())
            .take_while(|&n| target[n - 1] != '/')
            .any(|n| matches(rest, &target[n..])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_produce() {
        let cases = [
            ("INBOX", "INBOX", "X", true),
            ("inbox", "INBOX", "X", true),
            ("INBOX", "inbox", "X", true),
            ("Lists", "Lists", "INBOX", true),
            ("Lists", "Lists/a", "INBOX", false),
            ("Lists/{list_id}", "Lists/dev", "INBOX", true),
            ("Lists/{list_id}", "Lists/dev/x", "INBOX", false),
            ("Lists/{list_id}", "Lists/", "INBOX", false),
            ("{list_id}", "Lists", "INBOX", false),
            ("{mailbox}", "INBOX", "INBOX", true),
            ("{mailbox}", "Other", "INBOX", false),
            ("Archive/{mailbox}", "Archive/INBOX", "INBOX", true),
            ("{year}/{month}", "2026/01", "INBOX", true),
            ("{{x}}", "{x}", "INBOX", true),
            ("{unclosed", "{unclosed", "INBOX", false),
            ("a}b", "a}b", "INBOX", false),
        ];
        for (template, target, current, want) in cases {
            assert_eq!(
                may_produce(template, target, current),
                want,
                "{template} -> {target} from {current}"
            );
        }
    }
}
