//! What a command's responses say: reading up to its tagged status ([`wait_tagged`]), the
//! response code of a status ([`response_code`]) and the capabilities announced
//! ([`capability_names`]). Used by `connect` on the bare transport before a session exists, and
//! by `session` and `idle` after.

use async_imap::imap_proto::{Capability, Response, ResponseCode, Status};

use super::ImapError;
use super::transport::{OwnedResponse, Transport};

/// The most untagged responses one command may collect: far above a FETCH chunk (500), the
/// EXPUNGE responses of one MOVE, or a LIST of every mailbox on a big server.
const MAX_UNTAGGED: usize = 1_000_000;
/// The most bytes one command may collect (500 partial bodies of 256 KiB are 125 MiB).
const MAX_COMMAND_BYTES: u64 = 256 << 20;

/// Read until the tagged response of `tag`; error on NO/BAD/EOF; return the untagged ones.
pub(crate) async fn wait_tagged(
    t: &mut Transport,
    tag: &str,
    command: &str,
) -> Result<Vec<Response<'static>>, ImapError> {
    wait_tagged_with(t, tag, command, |_| true).await
}

/// As [`wait_tagged`], each untagged response shown to `seen` as it arrives and returned only
/// if `seen` says to keep it.
pub(crate) async fn wait_tagged_with(
    t: &mut Transport,
    tag: &str,
    command: &str,
    mut seen: impl FnMut(&Response<'static>) -> bool,
) -> Result<Vec<Response<'static>>, ImapError> {
    let mut untagged = Vec::new();
    let base = t.consumed();
    loop {
        if untagged.len() > MAX_UNTAGGED || t.consumed() - base > MAX_COMMAND_BYTES {
            // A server streaming untagged data without ever completing the command would
            // otherwise grow this list until memory runs out.
            return Err(ImapError::Protocol(format!(
                "{command}: more than {MAX_UNTAGGED} responses or {} MiB without completion",
                MAX_COMMAND_BYTES >> 20
            )));
        }
        let resp = t.read().await?;
        match resp {
            Response::Done {
                tag: ref done_tag,
                ref status,
                ref outcome,
            } if done_tag.0 == tag => {
                let text = outcome.information.as_deref().unwrap_or("").to_string();
                let code = response_code(outcome.code.as_ref(), outcome.information.as_deref());
                return match *status {
                    Status::Ok => {
                        untagged.push(resp);
                        Ok(untagged)
                    }
                    Status::No => Err(ImapError::No {
                        command: command.to_string(),
                        text,
                        code,
                    }),
                    _ => Err(ImapError::Bad {
                        command: command.to_string(),
                        text,
                    }),
                };
            }
            Response::Continue(_) => {
                return Err(ImapError::Protocol(format!(
                    "unexpected continuation during {command}"
                )));
            }
            other => {
                if seen(&other) {
                    untagged.push(other);
                }
            }
        }
    }
}

/// The upper-cased response code of a tagged/untagged status, including codes imap-proto does
/// not know (`[ALREADYEXISTS]`, `[OVERQUOTA]` stay at the start of the text).
pub(crate) fn response_code(code: Option<&ResponseCode<'_>>, text: Option<&str>) -> Option<String> {
    if let Some(code) = code {
        let name = match code {
            ResponseCode::Alert => "ALERT",
            ResponseCode::BadCharset(_) => "BADCHARSET",
            ResponseCode::Capabilities(_) => "CAPABILITY",
            ResponseCode::HighestModSeq(_) => "HIGHESTMODSEQ",
            ResponseCode::Parse => "PARSE",
            ResponseCode::PermanentFlags(_) => "PERMANENTFLAGS",
            ResponseCode::ReadOnly => "READ-ONLY",
            ResponseCode::ReadWrite => "READ-WRITE",
            ResponseCode::TryCreate => "TRYCREATE",
            ResponseCode::UidNext(_) => "UIDNEXT",
            ResponseCode::UidValidity(_) => "UIDVALIDITY",
            ResponseCode::Unseen(_) => "UNSEEN",
            ResponseCode::AppendUid(..) => "APPENDUID",
            ResponseCode::CopyUid(..) => "COPYUID",
            ResponseCode::UidNotSticky => "UIDNOTSTICKY",
            _ => "METADATA",
        };
        return Some(name.to_string());
    }
    let text = text?.trim_start();
    let inner = text.strip_prefix('[')?;
    let end = inner.find([']', ' '])?;
    Some(inner[..end].to_ascii_uppercase())
}

/// Names of the capabilities in CAPABILITY responses and `[CAPABILITY ...]` codes, upper-cased.
pub(crate) fn capability_names(responses: &[OwnedResponse]) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |caps: &[Capability<'_>]| {
        for c in caps {
            out.push(match c {
                Capability::Imap4rev1 => "IMAP4REV1".to_string(),
                Capability::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
                Capability::Atom(a) => a.to_ascii_uppercase(),
            });
        }
    };
    for r in responses {
        match r {
            Response::Capabilities(caps) => add(caps),
            Response::Data { outcome, .. } | Response::Done { outcome, .. } => {
                if let Some(ResponseCode::Capabilities(caps)) = &outcome.code {
                    add(caps);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_known_and_unknown() {
        for (text, want) in [
            (
                "[ALREADYEXISTS] Mailbox already exists",
                Some("ALREADYEXISTS"),
            ),
            ("[OVERQUOTA] Quota exceeded", Some("OVERQUOTA")),
            ("[unavailable] later", Some("UNAVAILABLE")),
            ("no code here", None),
        ] {
            assert_eq!(response_code(None, Some(text)).as_deref(), want, "{text}");
        }
        assert_eq!(
            response_code(Some(&ResponseCode::TryCreate), Some("x")).as_deref(),
            Some("TRYCREATE")
        );
    }
}
