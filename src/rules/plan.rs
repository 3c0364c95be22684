//! What evaluation decides for one message: the [`Plan`].

use serde::{Deserialize, Serialize};

/// The changes the rules want for one message, carried out in field order: flags, labels,
/// copies, then the final (terminal) action. Lists hold only real changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Plan {
    pub add_flags: Vec<String>,
    pub remove_flags: Vec<String>,
    pub add_labels: Vec<String>,
    /// Destination mailboxes (UTF-8, `/`-separated), in rule order, without repeats.
    pub copy: Vec<String>,
    /// `None`: the message stays where it is.
    #[serde(rename = "final")]
    pub final_action: Option<FinalAction>,
}

impl Plan {
    /// True when carrying out the plan would change nothing.
    pub fn is_empty(&self) -> bool {
        self.add_flags.is_empty()
            && self.remove_flags.is_empty()
            && self.add_labels.is_empty()
            && self.copy.is_empty()
            && self.final_action.is_none()
    }

    /// The changes in the order they are carried out, as text output names them.
    pub fn changes(&self) -> Vec<Change<'_>> {
        let mut out = Vec::new();
        for (verb, names) in [
            ("flag", &self.add_flags),
            ("unflag", &self.remove_flags),
            ("label", &self.add_labels),
        ] {
            if !names.is_empty() {
                out.push(Change::Names(verb, names));
            }
        }
        out.extend(self.copy.iter().map(|c| Change::To("copy", c)));
        if let Some(f) = &self.final_action {
            out.push(match &f.mailbox {
                Some(m) => Change::To(f.action.verb(), m),
                None => Change::Alone(f.action.verb()),
            });
        }
        out
    }
}

/// One change of a [`Plan`] in words: what `sweep`, `log` and the daemon's log lines print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change<'a> {
    /// `flag`, `unflag` or `label`, and the flags or labels.
    Names(&'static str, &'a [String]),
    /// `copy`, `move`, `archive` or `trash`, and the mailbox.
    To(&'static str, &'a str),
    /// `delete`.
    Alone(&'static str),
}

impl Change<'_> {
    pub fn verb(&self) -> &'static str {
        match self {
            Change::Names(v, _) | Change::To(v, _) | Change::Alone(v) => v,
        }
    }

    /// `flag $Urgent \Seen`, `delete`, and `move -> Lists/x` with `arrow`, else `move Lists/x`.
    pub fn words(&self, arrow: bool) -> String {
        match self {
            Change::Names(v, names) => format!("{v} {}", names.join(" ")),
            Change::To(v, m) if arrow => format!("{v} -> {m}"),
            Change::To(v, m) => format!("{v} {m}"),
            Change::Alone(v) => (*v).to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FinalAction {
    pub action: FinalKind,
    /// The destination (UTF-8, `/`-separated); `None` for `delete`.
    pub mailbox: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalKind {
    Move,
    Archive,
    Trash,
    Delete,
}

impl FinalKind {
    /// The action's name as the rules write it (and the JSON output).
    pub fn verb(self) -> &'static str {
        match self {
            FinalKind::Move => "move",
            FinalKind::Archive => "archive",
            FinalKind::Trash => "trash",
            FinalKind::Delete => "delete",
        }
    }
}
