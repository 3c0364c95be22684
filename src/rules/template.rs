//! Mailbox templates: `Lists/{list_id}`, `Archive/{year}/{month}`, `{{` and `}}` for braces.

use std::collections::HashMap;

/// The built-in variables, as written in templates.
pub const VARIABLES: &[&str] = &[
    "year",
    "month",
    "day",
    "list_id",
    "from.address",
    "from.domain",
    "from.name",
    "mailbox",
    "account",
];

/// A template variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Var {
    Year,
    Month,
    Day,
    ListId,
    FromAddress,
    FromDomain,
    FromName,
    Mailbox,
    Account,
    /// A named capture group of one of the rule's regexes.
    Capture(Box<str>),
}

impl Var {
    fn builtin(name: &str) -> Option<Var> {
        Some(match name {
            "year" => Var::Year,
            "month" => Var::Month,
            "day" => Var::Day,
            "list_id" => Var::ListId,
            "from.address" => Var::FromAddress,
            "from.domain" => Var::FromDomain,
            "from.name" => Var::FromName,
            "mailbox" => Var::Mailbox,
            "account" => Var::Account,
            _ => return None,
        })
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Var::Year => "year",
            Var::Month => "month",
            Var::Day => "day",
            Var::ListId => "list_id",
            Var::FromAddress => "from.address",
            Var::FromDomain => "from.domain",
            Var::FromName => "from.name",
            Var::Mailbox => "mailbox",
            Var::Account => "account",
            Var::Capture(n) => n,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Var(Var),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    /// As written, for messages.
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parse left to right. `captures` are the named groups the rule's regexes define.
    pub(crate) fn parse(source: &str, captures: &[String]) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => {
                    return Err(format!(
                        "template {source:?}: unmatched '}}' at character {} (write '}}}}' for a brace)",
                        i + 1
                    ));
                }
                '{' => {
                    let rest = &source[i + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!(
                            "template {source:?}: '{{' at character {} is not closed (write '{{{{' for a brace)",
                            i + 1
                        ));
                    };
                    let name = &rest[..end];
                    let var = Var::builtin(name)
                        .or_else(|| {
                            captures
                                .iter()
                                .any(|c| c == name)
                                .then(|| Var::Capture(name.into()))
                        })
                        .ok_or_else(|| unknown(source, name, captures))?;
                    for _ in 0..=name.chars().count() {
                        chars.next();
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Var(var));
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        check_levels(source, &pieces)?;
        Ok(Template {
            source: source.to_owned(),
            pieces,
        })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn vars(&self) -> impl Iterator<Item = &Var> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v),
            Piece::Lit(_) => None,
        })
    }

    /// Expand; `Err(variable)` names the first variable without a value.
    pub(crate) fn expand(
        &self,
        lookup: &mut dyn FnMut(&Var) -> Option<String>,
        delimiter: Option<char>,
    ) -> Result<String, String> {
        let mut out = String::with_capacity(self.source.len() + 16);
        for piece in &self.pieces {
            match piece {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(v) => {
                    let value = lookup(v)
                        .filter(|s| !s.trim().is_empty())
                        .ok_or_else(|| v.name().to_owned())?;
                    let replaced = |c: char| {
                        matches!(c, '/' | '*' | '%') || Some(c) == delimiter || c.is_control()
                    };
                    // Most values need no replacement: copy them whole.
                    if *v == Var::Mailbox || !value.chars().any(replaced) {
                        out.push_str(&value);
                    } else {
                        out.extend(value.chars().map(|c| if replaced(c) { '_' } else { c }));
                    }
                }
            }
        }
        Ok(dot_levels_replaced(out))
    }
}

/// Refuses a template whose literal text makes a level that no value can fill: an empty one
/// (`a//b`, a `/` at either end) or `.` / `..`, which servers refuse or read as a path.
fn check_levels(source: &str, pieces: &[Piece]) -> Result<(), String> {
    // The current level's literal text, and whether a variable is part of it.
    let mut level = String::new();
    let mut has_var = false;
    let finish = |level: &mut String, has_var: &mut bool| {
        let bad = if *has_var {
            None
        } else if level.is_empty() {
            Some(format!(
                "template {source:?}: empty level (two '/' in a row, or a '/' at the start or end)"
            ))
        } else if level == "." || level == ".." {
            Some(format!(
                "template {source:?}: a mailbox level {level:?} is not a name (servers refuse it or read it as a path)"
            ))
        } else {
            None
        };
        level.clear();
        *has_var = false;
        bad.map_or(Ok(()), Err)
    };
    for piece in pieces {
        match piece {
            Piece::Var(_) => has_var = true,
            Piece::Lit(text) => {
                for c in text.chars() {
                    if c == '/' {
                        finish(&mut level, &mut has_var)?;
                    } else {
                        level.push(c);
                    }
                }
            }
        }
    }
    finish(&mut level, &mut has_var)
}

/// A level made only of dots (from values: `check_levels` refuses such literal levels) gets
/// `_` for each dot, so a List-Id of `..` cannot name the parent of a mailbox.
fn dot_levels_replaced(name: String) -> String {
    let dots_only = |level: &str| !level.is_empty() && level.bytes().all(|b| b == b'.');
    if !name.split('/').any(dots_only) {
        return name;
    }
    name.split('/')
        .map(|level| {
            if dots_only(level) {
                "_".repeat(level.len())
            } else {
                level.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn unknown(source: &str, name: &str, captures: &[String]) -> String {
    let mut known: Vec<&str> = VARIABLES.to_vec();
    known.extend(captures.iter().map(String::as_str));
    if name.is_empty() {
        format!(
            "template {source:?}: empty variable name '{{}}'; known: {}",
            known.join(", ")
        )
    } else {
        format!(
            "template {source:?}: unknown variable {{{name}}}; known: {}",
            known.join(", ")
        )
    }
}

/// Values of the variables for one message; captures filled per rule.
pub(crate) type Captures = HashMap<Box<str>, String>;

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(src: &str, caps: &[&str]) -> Result<String, String> {
        let caps: Vec<String> = caps.iter().map(|s| s.to_string()).collect();
        let t = Template::parse(src, &caps)?;
        t.expand(
            &mut |v| match v {
                Var::Year => Some("2026".into()),
                Var::ListId => Some("dev/x.example.org".into()),
                Var::Mailbox => Some("Work/Inbox".into()),
                Var::FromName => Some("a\tb".into()),
                Var::Capture(n) if &**n == "t" => Some("T.1".into()),
                _ => None,
            },
            Some('.'),
        )
    }

    #[test]
    fn templates_expand_left_to_right() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("Lists/{list_id}", Ok("Lists/dev_x_example_org")),
            ("{{{year}}}", Ok("{2026}")),
            ("{{year}}", Ok("{year}")),
            ("a}}b{{", Ok("a}b{")),
            ("{mailbox}/old", Ok("Work/Inbox/old")),
            ("P/{from.name}", Ok("P/a_b")),
            ("T/{t}", Ok("T/T_1")),
            ("{account}", Err("account")),
            ("plain", Ok("plain")),
        ];
        for (src, want) in cases {
            let got = expand(src, &["t"]);
            assert_eq!(
                got.as_ref().map(String::as_str).map_err(String::as_str),
                *want,
                "template {src:?}"
            );
        }
    }

    /// Values that a server would read as LIST wildcards or as `.` / `..` levels are made
    /// harmless; `{mailbox}` stays a mailbox name.
    #[test]
    fn values_cannot_become_wildcards_or_dot_levels() {
        let cases: &[(&str, &str, &str)] = &[
            ("Deals/{v}", "50% off *now*", "Deals/50_ off _now_"),
            ("Lists/{v}", "..", "Lists/__"),
            ("Lists/{v}", ".", "Lists/_"),
            ("Lists/{v}{v}", ".", "Lists/__"),
            ("Lists/.{v}", ".", "Lists/__"),
            ("Lists/{v}", ".hidden", "Lists/.hidden"),
            ("Lists/{v}", "a..b", "Lists/a..b"),
            ("{mailbox}/x", "", "Work/Inbox/x"),
        ];
        for (src, value, want) in cases {
            let t = Template::parse(src, &["v".to_string()]).unwrap();
            let got = t.expand(
                &mut |var| match var {
                    Var::Mailbox => Some("Work/Inbox".into()),
                    Var::Capture(_) => Some((*value).into()),
                    _ => None,
                },
                Some('/'),
            );
            assert_eq!(got.as_deref(), Ok(*want), "{src:?} with {value:?}");
        }
    }

    #[test]
    fn template_syntax_errors_are_reported() {
        let cases: &[(&str, &str)] = &[
            ("Lists/{nope}", "unknown variable {nope}"),
            ("{year", "is not closed"),
            ("year}", "unmatched '}'"),
            ("{}", "empty variable name"),
            ("{t}", "unknown variable {t}"),
            ("a//b", "empty level"),
            ("/a", "empty level"),
            ("a/{year}/", "empty level"),
            ("a/../b", "level \"..\""),
            ("./{year}", "level \".\""),
        ];
        for (src, want) in cases {
            let err = Template::parse(src, &[]).unwrap_err();
            assert!(err.contains(want), "{src:?}: {err}");
        }
    }
}
