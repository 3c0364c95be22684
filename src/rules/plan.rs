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
