//! How the demo tells what happened: one aligned line per message acted on (time, sender,
//! subject, rule, where it went), cut to the terminal's width, and a summary at the end.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

/// Column widths for one terminal width. The subject takes what the others leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `HH:MM:SS`, or `HH:MM` on narrow terminals.
    time: usize,
    sender: usize,
    subject: usize,
    rule: usize,
    /// What the last column is cut to: the longest usual outcome
    /// (`copy -> Accounting/2026, +$Invoice`) fits on wide terminals.
    outcome: usize,
}

/// Between two columns.
pub const GAP: usize = 2;
/// Below this the subject says too little; the last column gives way first.
const MIN_SUBJECT: usize = 16;

impl Layout {
    /// Widths for a terminal `width` columns wide, with rule names up to `longest_rule`.
    pub fn new(width: usize, longest_rule: usize) -> Layout {
        // Narrow terminals give each column a little less; wide ones let the subject grow.
        let (time, sender, rule_cap, outcome) = match width {
            0..=99 => (5, 12, 13, 23),
            100..=139 => (8, 13, 21, 34),
            _ => (8, 16, 24, 36),
        };
        let rule = longest_rule.clamp(4, rule_cap);
        let others = time + sender + rule + 4 * GAP;
        let outcome = outcome
            .min(width.saturating_sub(others + MIN_SUBJECT))
            .max(12);
        let subject = width.saturating_sub(others + outcome).max(MIN_SUBJECT);
        Layout {
            time,
            sender,
            subject,
            rule,
            outcome,
        }
    }

    /// The column titles, aligned like the lines.
    pub fn header(&self) -> String {
        self.line("TIME", "FROM", "SUBJECT", "RULE", "WHERE IT WENT")
    }

    /// One message acted on; `time` is `HH:MM:SS` (its seconds dropped on narrow terminals).
    pub fn line(
        &self,
        time: &str,
        sender: &str,
        subject: &str,
        rule: &str,
        outcome: &str,
    ) -> String {
        self.cells(time, sender, subject, rule, outcome)
            .join(&" ".repeat(GAP))
    }

    /// The five cells of [`line`](Self::line), cut and padded, to be styled one by one and
    /// joined with [`GAP`] spaces.
    pub fn cells(
        &self,
        time: &str,
        sender: &str,
        subject: &str,
        rule: &str,
        outcome: &str,
    ) -> [String; 5] {
        let time: String = time.chars().take(self.time).collect();
        [
            pad(&time, self.time),
            pad(&fit(sender, self.sender), self.sender),
            pad(&fit(subject, self.subject), self.subject),
            pad(&fit(rule, self.rule), self.rule),
            shorten(outcome, self.outcome),
        ]
    }
}

/// `text` cut to `width` characters, with `…` marking the cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// An outcome made to fit `width`: its first item (where the message went) is kept and its
/// mailbox path shortened in the middle (`-> Notif…/github.com`); later items (copies, flags)
/// are left out when there is no room for them.
pub fn shorten(outcome: &str, width: usize) -> String {
    if outcome.chars().count() <= width {
        return outcome.to_string();
    }
    let first = outcome.split(", ").next().unwrap_or(outcome);
    if first.chars().count() <= width {
        return first.to_string();
    }
    let Some((lead, path)) = first.rsplit_once("-> ") else {
        return fit(first, width);
    };
    let Some((parents, last)) = path.rsplit_once('/') else {
        return fit(first, width);
    };
    let lead = format!("{lead}-> ");
    let fixed = lead.chars().count() + "…/".chars().count() + last.chars().count();
    if fixed > width {
        return fit(first, width);
    }
    let kept: String = parents.chars().take(width - fixed).collect();
    format!("{lead}{kept}…/{last}")
}

/// `text` padded with spaces to `width` characters.
fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(n)))
}

/// Where a message went and what was done to it, from the `action` and `destination` of the
/// daemon's `sorted` line: `-> Lists/rust-users`, `flagged`, `copy -> Accounting/2026, +$Invoice`.
pub fn outcome(action: &str, destination: &str) -> String {
    let mut moved = None;
    let mut copies = Vec::new();
    let mut marks = Vec::new();
    for part in action.split("; ").filter(|p| !p.is_empty()) {
        let (verb, rest) = part.split_once(' ').unwrap_or((part, ""));
        match verb {
            "move" | "archive" | "trash" => moved = Some(format!("-> {destination}")),
            "delete" => moved = Some("deleted".to_string()),
            "copy" => copies.push(format!("copy -> {rest}")),
            "flag" => marks.extend(rest.split(' ').map(|f| match f {
                "\\Seen" => "read".to_string(),
                "\\Flagged" => "flagged".to_string(),
                "\\Answered" => "answered".to_string(),
                other => format!("+{other}"),
            })),
            "unflag" => marks.extend(rest.split(' ').map(|f| match f {
                "\\Seen" => "unread".to_string(),
                "\\Flagged" => "unflagged".to_string(),
                other => format!("-{other}"),
            })),
            "label" => marks.extend(rest.split(' ').map(|l| format!("label {l}"))),
            _ => marks.push(part.to_string()),
        }
    }
    moved
        .into_iter()
        .chain(copies)
        .chain(marks)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the summary counts.
#[derive(Debug, Default)]
pub struct Tally {
    /// Messages delivered by the demo (seeded and later).
    pub delivered: usize,
    /// Distinct messages (by Message-ID) some rule acted on.
    acted_on: HashSet<String>,
    /// Actions per rule.
    per_rule: BTreeMap<String, usize>,
    /// Messages moved or copied into each mailbox.
    per_mailbox: BTreeMap<String, usize>,
}

impl Tally {
    pub fn record(&mut self, rule: &str, action: &str, destination: &str, message_id: &str) {
        self.acted_on.insert(message_id.to_string());
        for r in rule.split(", ") {
            *self.per_rule.entry(r.to_string()).or_default() += 1;
        }
        for part in action.split("; ") {
            let (verb, rest) = part.split_once(' ').unwrap_or((part, ""));
            let into = match verb {
                "move" | "archive" | "trash" if !destination.is_empty() => destination,
                "copy" => rest,
                _ => continue,
            };
            *self.per_mailbox.entry(into.to_string()).or_default() += 1;
        }
    }

    /// The summary printed at the end: counts, then actions per rule and messages per
    /// mailbox, side by side when `width` allows.
    pub fn summary(&self, ran: Duration, width: usize) -> String {
        let mut s = String::new();
        let (minutes, seconds) = (ran.as_secs() / 60, ran.as_secs() % 60);
        let acted = self.acted_on.len();
        let _ = writeln!(
            s,
            "In {minutes}m {seconds:02}s the demo delivered {} messages.\n\
             imapsort's rules acted on {acted} of them; {} stayed in the INBOX untouched.",
            self.delivered,
            self.delivered.saturating_sub(acted),
        );
        let right = table("into mailbox", &self.per_mailbox);
        let right_width = right.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        // Side by side, long rule names cut, when that leaves them a useful width.
        let room = width.saturating_sub(right_width + 4).max(24);
        let left: Vec<String> = table("by rule", &self.per_rule)
            .iter()
            .map(|l| fit(l, room))
            .collect();
        let left_width = left.iter().map(|l| l.chars().count()).max().unwrap_or(0) + 4;
        if left.is_empty() && right.is_empty() {
            return s;
        }
        s.push('\n');
        if left_width + right_width <= width {
            for i in 0..left.len().max(right.len()) {
                let l = left.get(i).map_or("", String::as_str);
                let r = right.get(i).map_or("", String::as_str);
                let line = format!("{}{r}", pad(l, left_width));
                let _ = writeln!(s, "{}", line.trim_end());
            }
        } else {
            let left = table("by rule", &self.per_rule);
            let blank = (!left.is_empty() && !right.is_empty()).then(String::new);
            for line in left.iter().chain(blank.iter()).chain(&right) {
                let _ = writeln!(s, "{line}");
            }
        }
        s
    }
}

/// `title`, then one `count  name` row per entry, the largest first; nothing without rows.
fn table(title: &str, rows: &BTreeMap<String, usize>) -> Vec<String> {
    if rows.is_empty() {
        return Vec::new();
    }
    let mut rows: Vec<(&String, &usize)> = rows.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut out = vec![format!("  {title}")];
    out.extend(
        rows.into_iter()
            .map(|(name, n)| format!("  {n:>5}  {name}")),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_as_where_the_message_went() {
        assert_eq!(outcome("move", "Lists/rust-users"), "-> Lists/rust-users");
        assert_eq!(outcome("flag \\Flagged", ""), "flagged");
        assert_eq!(
            outcome("flag $Invoice; copy Accounting/2026", "Accounting/2026"),
            "copy -> Accounting/2026, +$Invoice"
        );
        assert_eq!(
            outcome("flag \\Seen; move", "Notifications/github.com"),
            "-> Notifications/github.com, read"
        );
        assert_eq!(outcome("trash", "Trash"), "-> Trash");
        assert_eq!(outcome("delete", ""), "deleted");
    }

    #[test]
    fn long_outcomes_keep_where_the_message_went() {
        assert_eq!(shorten("-> Newsletters", 22), "-> Newsletters");
        assert_eq!(
            shorten("-> Notifications/github.com", 22),
            "-> Notific…/github.com"
        );
        assert_eq!(
            shorten("copy -> Accounting/2026, +$Invoice", 22),
            "copy -> Accounti…/2026"
        );
        assert_eq!(
            shorten("copy -> Accounting/2026, +$Invoice", 30),
            "copy -> Accounting/2026"
        );
        assert_eq!(shorten("+$Invoice, +$Paid, +$Late", 12), "+$Invoice");
        assert_eq!(shorten("label Very-long-label-name", 12), "label Very-…");
        for w in [12, 16, 22, 30] {
            let s = shorten("-> Notifications/monitor.example, read", w);
            assert!(s.chars().count() <= w, "{w}: {s}");
        }
    }

    #[test]
    fn cut_text_ends_with_an_ellipsis_and_fits() {
        assert_eq!(fit("Borrow checker", 20), "Borrow checker");
        assert_eq!(fit("Borrow checker and async", 10), "Borrow ch…");
        assert_eq!(fit("ab cd", 4), "ab…");
        assert_eq!(fit("Ärger über Spaß", 6).chars().count(), 6);
    }

    #[test]
    fn lines_fit_80_and_120_columns_and_align() {
        for width in [80, 100, 120, 200] {
            let layout = Layout::new(width, 36);
            let long = "x".repeat(300);
            let line = layout.line("12:00:00", &long, &long, &long, &long);
            assert_eq!(line.chars().count(), width, "{width}: {line}");
            let short = layout.line("12:00:00", "Bob", "Hi", "boss", "flagged");
            let header = layout.header();
            let col = |s: &str, word: &str| s.find(word).unwrap();
            assert_eq!(col(&header, "SUBJECT"), col(&short, "Hi"), "{width}");
            assert_eq!(col(&header, "RULE"), col(&short, "boss"), "{width}");
            assert_eq!(col(&header, "WHERE"), col(&short, "flagged"), "{width}");
        }
        // At 120 columns the usual outcomes are whole, and so is a plain subject.
        let layout = Layout::new(120, 36);
        let line = layout.line(
            "12:00:00",
            "Billing",
            "Your invoice #2888 for November",
            "invoices",
            "copy -> Accounting/2026, +$Invoice",
        );
        assert!(
            line.ends_with("copy -> Accounting/2026, +$Invoice"),
            "{line}"
        );
        assert!(line.contains("for November"), "{line}");
        // At 80, seconds go, the subject keeps a useful width, a move's destination fits.
        let layout = Layout::new(80, 36);
        let line = layout.line(
            "12:00:00",
            "Alice Martin",
            "[rust-users] Borrow checker and async closures",
            "mailing lists",
            "-> Lists/rust-users",
        );
        assert!(line.starts_with("12:00  Alice"), "{line}");
        assert!(line.contains("[rust-users] Bor"), "{line}");
        assert!(line.ends_with("-> Lists/rust-users"), "{line}");
    }

    #[test]
    fn the_summary_counts_messages_rules_and_mailboxes() {
        let mut t = Tally {
            delivered: 5,
            ..Tally::default()
        };
        t.record("mailing lists", "move", "Lists/a", "<1@x>");
        t.record("mailing lists", "move", "Lists/a", "<2@x>");
        t.record(
            "invoices",
            "flag $Invoice; copy Accounting/2026",
            "Accounting/2026",
            "<3@x>",
        );
        t.record("boss", "flag \\Flagged", "", "<4@x>");
        let s = t.summary(Duration::from_secs(75), 80);
        assert!(
            s.starts_with("In 1m 15s the demo delivered 5 messages.\n"),
            "{s}"
        );
        assert!(
            s.contains("acted on 4 of them; 1 stayed in the INBOX"),
            "{s}"
        );
        // Side by side at 80 columns: each row holds a rule count and a mailbox count.
        assert!(s.contains("  by rule "), "{s}");
        assert!(s.contains("into mailbox"), "{s}");
        let row = s.lines().find(|l| l.contains("mailing lists")).unwrap();
        assert!(row.starts_with("      2  mailing lists"), "{row}");
        assert!(row.trim_end().ends_with("2  Lists/a"), "{row}");
        assert!(s.contains("      1  Accounting/2026"), "{s}");
        assert!(s.lines().all(|l| l.chars().count() <= 80), "{s}");
        // Long rule names are cut to keep the tables side by side at 80 columns.
        t.record(
            "archive read mail older than 30 days",
            "archive",
            "Archive/2026",
            "<5@x>",
        );
        t.record("x", "move", "Notifications/calendar.example", "<6@x>");
        let s = t.summary(Duration::from_secs(75), 80);
        assert!(s.contains("  archive read mail older tha…  "), "{s}");
        assert!(s.lines().all(|l| l.chars().count() <= 80), "{s}");
        // Too narrow for two tables: one under the other.
        let narrow = t.summary(Duration::from_secs(75), 40);
        assert!(
            narrow.lines().any(|l| l.trim() == "into mailbox"),
            "{narrow}"
        );
    }
}
