//! What `imapsort run --log-format json` says on stderr, one JSON object per line, read into
//! what the demo tells: a message acted on, another log line, or text that is not JSON at all
//! (a panic, an error printed before logging started).

use serde_json::Value;

/// One line of the daemon's stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The one `info` line per message acted on (message `sorted`).
    Sorted(Sorted),
    /// Any other log line.
    Log(LogLine),
    /// Not a JSON log line: shown as it is.
    Text(String),
}

/// A message acted on, from the fields of the `sorted` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sorted {
    /// The rules that acted, comma-separated when several did.
    pub rule: String,
    /// What was done (`move`, `flag \Seen; move`, `flag $Invoice; copy Accounting/2026`).
    pub action: String,
    /// The mailbox the message went to (the final one, else the first copy's), or empty.
    pub destination: String,
    /// `new` or `sweep`.
    pub trigger: String,
    /// With angle brackets, as the demo generated it; empty when the message had none.
    pub message_id: String,
}

/// A log line other than `sorted`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The message and its fields, `key=value`.
    pub text: String,
}

impl LogLine {
    /// Warnings and errors are shown even without `-v`: they explain what went wrong.
    pub fn is_trouble(&self) -> bool {
        matches!(self.level.as_str(), "WARN" | "ERROR")
    }
}

/// Fields every line carries, left out of [`LogLine::text`].
const HOUSEKEEPING: &[&str] = &["timestamp", "level", "message", "target", "span", "spans"];

pub fn parse(line: &str) -> Event {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) else {
        return Event::Text(line.to_string());
    };
    let text = |key: &str| match fields.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let message = text("message");
    if message == "sorted" {
        return Event::Sorted(Sorted {
            rule: text("rule"),
            action: text("action"),
            destination: text("destination"),
            trigger: text("trigger"),
            message_id: text("message_id"),
        });
    }
    let mut out = message;
    for (key, value) in &fields {
        if HOUSEKEEPING.contains(&key.as_str()) {
            continue;
        }
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!(" {key}={value}"));
    }
    Event::Log(LogLine {
        level: text("level"),
        text: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sorted_line_gives_the_fields_the_story_needs() {
        let line = r#"{"timestamp":"2026-12-03T12:40:47.058314Z","level":"INFO","message":"sorted","account":"personal","mailbox":"INBOX","uid":304,"rule":"invoices","action":"flag $Invoice; copy Accounting/2026","destination":"Accounting/2026","trigger":"new","message_id":"<demo.304.52203576@imapsort.example>","target":"imapsort::daemon::sink"}"#;
        assert_eq!(
            parse(line),
            Event::Sorted(Sorted {
                rule: "invoices".into(),
                action: "flag $Invoice; copy Accounting/2026".into(),
                destination: "Accounting/2026".into(),
                trigger: "new".into(),
                message_id: "<demo.304.52203576@imapsort.example>".into(),
            })
        );
    }

    #[test]
    fn other_lines_keep_their_fields_and_level() {
        let line = r#"{"timestamp":"t","level":"WARN","message":"cannot connect","account":"personal","retry_in":"2s","target":"imapsort::daemon::worker"}"#;
        let Event::Log(log) = parse(line) else {
            panic!("not a log line");
        };
        assert!(log.is_trouble());
        assert_eq!(log.text, "cannot connect account=personal retry_in=2s");
    }

    #[test]
    fn text_that_is_not_json_is_passed_through() {
        assert_eq!(
            parse("imapsort: cannot read config.yaml"),
            Event::Text("imapsort: cannot read config.yaml".into())
        );
    }
}
