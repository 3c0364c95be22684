//! The pass's pipelined `UID FETCH`: later chunks' commands go out before the current chunk
//! is evaluated, so the server reads while imapsort evaluates; every line's answer is read in
//! order, so the connection stays in step.

use crate::execute::Universe;
use crate::imap::fetch::FetchSpec;
use crate::imap::uidset::{MAX_SET_CHARS, UidSet};
use crate::imap::{FetchedItem, ImapError, Session};

/// A chunk's `UID FETCH`: sent and not yet answered, or answered.
pub(super) enum Fetch {
    /// The tags of its command lines, in the order sent.
    Sent(Vec<String>),
    /// What came back (or why nothing did).
    Answered(Result<Vec<FetchedItem>, ImapError>),
}

/// Sends the `UID FETCH` of `chunk`, in as few command lines as the universe allows, without
/// waiting for the answer.
pub(super) async fn send_fetch(
    session: &mut Session,
    spec: &FetchSpec,
    chunk: &UidSet,
    universe: Option<&Universe>,
) -> Fetch {
    let wire = match universe {
        Some(u) => chunk.widen(&u.existing, u.known),
        None => chunk.clone(),
    };
    let mut tags = Vec::new();
    for line in wire.chunks(MAX_SET_CHARS, u64::MAX) {
        match session
            .start_uid_fetch(&line.to_string(), spec.items())
            .await
        {
            Ok(tag) => tags.push(tag),
            // A failed write breaks the connection: the lines sent before need no answer.
            Err(e) => return Fetch::Answered(Err(e)),
        }
    }
    Fetch::Sent(tags)
}

/// The answer to a fetch: every line's, read in order even after one line's `NO`, so the
/// connection stays in step.
pub(super) async fn answer(
    session: &mut Session,
    fetch: Fetch,
) -> Result<Vec<FetchedItem>, ImapError> {
    let tags = match fetch {
        Fetch::Answered(result) => return result,
        Fetch::Sent(tags) => tags,
    };
    let mut items = Vec::new();
    let mut failed = None;
    for tag in tags {
        match session.finish_uid_fetch(&tag).await {
            Ok(more) => items.extend(more),
            Err(e) if e.is_connection_fatal() => return Err(e),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    failed.map_or(Ok(items), Err)
}
