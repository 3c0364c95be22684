//! What a person recognises a message by: who sent it and what it is about. Text output
//! (`sweep`, `test`) shows this instead of the Message-ID, which stays in JSON and the state.

use std::fmt;

use super::view::{AddressSlot, MessageView};

/// The longest sender shown, in characters.
const SENDER_WIDTH: usize = 30;
/// The longest subject shown, in characters.
const SUBJECT_WIDTH: usize = 50;

/// A message's sender and subject as one line of text output shows them, each already cut to
/// fit: `Alice Example "Your invoice for March"`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gist {
    /// The first From's display name, else its address; empty when there is neither.
    pub sender: String,
    /// The first Subject, decoded; `None` when the message has none (an empty one is `""`).
    pub subject: Option<String>,
}

impl Gist {
    pub fn of(view: &MessageView) -> Gist {
        let from = view.address_list(AddressSlot::From).addrs.first();
        let sender = from
            .and_then(|a| a.name.as_ref().map(|n| n.text()))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .or_else(|| from.map(|a| &*a.address))
            .unwrap_or_default();
        let subject = view
            .subjects()
            .next()
            .map(|s| cut(s.map(|s| s.text()).unwrap_or_default(), SUBJECT_WIDTH));
        Gist {
            sender: cut(sender, SENDER_WIDTH),
            subject,
        }
    }
}

impl fmt::Display for Gist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sender.is_empty() {
            f.write_str("(no sender)")?;
        } else {
            f.write_str(&self.sender)?;
        }
        match &self.subject {
            Some(s) => write!(f, " \"{s}\""),
            None => f.write_str(" (no subject)"),
        }
    }
}

/// `text` on one line (control characters and runs of white space become one space) and at
/// most `max` characters, the last of them `…` when it was cut.
fn cut(text: &str, max: usize) -> String {
    let mut out = String::new();
    let words = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty());
    for word in words {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > max * 4 {
            break; // already more than fits, in any encoding: the rest is never shown
        }
    }
    if out.chars().count() <= max {
        return out;
    }
    let mut cut: String = out.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::MessageFacts;

    fn gist(header: &str) -> Gist {
        Gist::of(&MessageView::parse(
            header.as_bytes(),
            MessageFacts::default(),
        ))
    }

    #[test]
    fn the_name_is_shown_else_the_address() {
        let g = gist("From: Alice Example <alice@example.com>\r\nSubject: Invoice 42\r\n\r\n");
        assert_eq!(g.to_string(), "Alice Example \"Invoice 42\"");
        let g = gist("From: <bob@example.com>\r\nSubject: hi\r\n\r\n");
        assert_eq!(g.to_string(), "bob@example.com \"hi\"");
        let g = gist("From: \"  \" <bob@example.com>\r\n\r\n");
        assert_eq!(g.to_string(), "bob@example.com (no subject)");
        let g = gist("To: x@example.com\r\nSubject:\r\n\r\n");
        assert_eq!(g.to_string(), "(no sender) \"\"");
    }

    #[test]
    fn encoded_words_are_decoded_and_long_text_cut() {
        let g = gist(
            "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <j@example.de>\r\n\
             Subject: =?UTF-8?B?w5xiZXJ3ZWlzdW5n?= for the whole of the year two thousand and\r\n \
             twenty-six, with a folded line\r\n\r\n",
        );
        assert_eq!(g.sender, "Jürgen Müller");
        let subject = g.subject.unwrap();
        assert_eq!(subject.chars().count(), SUBJECT_WIDTH, "{subject}");
        assert!(
            subject.starts_with("Überweisung for the whole"),
            "{subject}"
        );
        assert!(subject.ends_with('…'), "{subject}");
    }

    #[test]
    fn cut_keeps_short_text_and_marks_where_it_cut() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("abcde", 5), "abcde");
        assert_eq!(cut("abcdef", 5), "abcd…");
        assert_eq!(cut("  a \t b\r\n c  ", 10), "a b c");
        assert_eq!(cut("ab cd ef", 5), "ab c…");
        assert_eq!(cut("", 5), "");
        assert_eq!(cut("äöüßéèê", 4), "äöü…");
    }

    /// The gist is known however few headers the rules need: Subject is always fetched.
    #[test]
    fn subject_and_from_are_always_fetched() {
        let config = crate::config::load_str(
            "rules:\n  - name: r\n    when: { seen: true }\n    then: trash\n",
            std::path::Path::new("c.yaml"),
        )
        .unwrap();
        let headers = config.rules.needs().headers.expect("a finite set");
        assert!(headers.contains("Subject"), "{headers:?}");
        assert!(headers.contains("From"), "{headers:?}");
    }
}
