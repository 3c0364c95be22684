//! Mailbox names: the config's UTF-8 `/`-separated form <-> the server's wire form (its own
//! hierarchy delimiter, modified UTF-7 per RFC 3501 §5.1.3), and a name's parents.

use base64::Engine as _;
use base64::alphabet::IMAP_MUTF7;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD};

/// Modified BASE64 of RFC 3501: `,` instead of `/`, no padding.
const MUTF7: GeneralPurpose = GeneralPurpose::new(&IMAP_MUTF7, NO_PAD);

/// A name the server sent that is not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mailbox name {0:?} is not valid modified UTF-7")]
pub struct Utf7Error(pub String);

/// Encode a UTF-8 name into modified UTF-7. Printable ASCII stays; `&` becomes `&-`.
pub fn mutf7_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&MUTF7.encode(bytes));
        out.push('-');
        pending.clear();
    };
    for ch in name.chars() {
        if ('\x20'..='\x7e').contains(&ch) {
            flush(&mut pending, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decode a modified UTF-7 name into UTF-8.
pub fn mutf7_decode(wire: &str) -> Result<String, Utf7Error> {
    let err = || Utf7Error(wire.to_string());
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let end = after.find('-').ok_or_else(err)?;
        let b64 = &after[..end];
        if b64.is_empty() {
            out.push('&');
        } else {
            let bytes = MUTF7.decode(b64).map_err(|_| err())?;
            if bytes.len() % 2 != 0 {
                return Err(err());
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            let text = String::from_utf16(&units).map_err(|_| err())?;
            // Printable ASCII must not be encoded (RFC 3501): reject, it makes names ambiguous.
            if text.chars().any(|c| ('\x20'..='\x7e').contains(&c)) {
                return Err(err());
            }
            out.push_str(&text);
        }
        rest = &after[end + 1..];
    }
    if rest.chars().any(|c| !('\x20'..='\x7e').contains(&c)) {
        return Err(err());
    }
    out.push_str(rest);
    Ok(out)
}

/// Translate a config name (UTF-8, `/`-separated) into the wire name for a server whose
/// hierarchy delimiter is `delimiter` (`None`: a flat server, `/` is kept).
///
/// Errors when a component contains the server's delimiter (`a.b` on a `.` server would
/// silently become a child mailbox).
pub fn to_wire(name: &str, delimiter: Option<char>) -> Result<String, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(NameError::Control(name.to_string()));
    }
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok("INBOX".into());
    }
    let delim = delimiter.unwrap_or('/');
    let mut parts = Vec::new();
    for part in name.split('/') {
        if part.is_empty() {
            return Err(NameError::EmptyComponent(name.to_string()));
        }
        if delim != '/' && part.contains(delim) {
            return Err(NameError::Delimiter {
                name: name.to_string(),
                delimiter: delim,
            });
        }
        parts.push(mutf7_encode(part));
    }
    Ok(parts.join(&delim.to_string()))
}

/// Translate a wire name back into the config form (UTF-8, `/`-separated).
pub fn from_wire(wire: &str, delimiter: Option<char>) -> Result<String, Utf7Error> {
    let decoded = mutf7_decode(wire)?;
    Ok(match delimiter {
        Some(d) if d != '/' => decoded.split(d).collect::<Vec<_>>().join("/"),
        _ => decoded,
    })
}

/// Why a configured mailbox name cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty mailbox name")]
    Empty,
    #[error("mailbox name {0:?} has an empty component")]
    EmptyComponent(String),
    #[error("mailbox name {0:?} contains a control character")]
    Control(String),
    #[error("mailbox name {name:?} contains the server's hierarchy delimiter {delimiter:?}")]
    Delimiter { name: String, delimiter: char },
}

/// The parents of a `/`-separated name, outermost first (`a/b/c` -> `a`, `a/b`).
pub fn parents(name: &str) -> Vec<String> {
    let parts: Vec<&str> = name.split('/').collect();
    (1..parts.len()).map(|n| parts[..n].join("/")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mutf7_known_values() {
        // RFC 3501 §5.1.3's example and a few edge cases.
        for (utf8, wire) in [
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("&", "&-"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("INBOX", "INBOX"),
            ("Ärger & Spaß", "&AMQ-rger &- Spa&AN8-"),
            ("😀", "&2D3eAA-"),
            ("", ""),
        ] {
            assert_eq!(mutf7_encode(utf8), wire, "encode {utf8:?}");
            assert_eq!(mutf7_decode(wire).unwrap(), utf8, "decode {wire:?}");
        }
    }

    #[test]
    fn mutf7_rejects_malformed() {
        for bad in ["&", "&AMQ", "&AMQ-\u{e4}", "&AGEAYg-", "&ZeV-", "caf\u{e9}"] {
            assert!(mutf7_decode(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn to_wire_translates_delimiter_and_encodes() {
        for (name, delim, want) in [
            ("Lists/rust", Some('.'), Ok("Lists.rust".to_string())),
            ("Lists/rust", Some('/'), Ok("Lists/rust".to_string())),
            ("Lists/rust", None, Ok("Lists/rust".to_string())),
            ("Büro/2026", Some('.'), Ok("B&APw-ro.2026".to_string())),
            ("inbox", Some('.'), Ok("INBOX".to_string())),
            (
                "a.b",
                Some('.'),
                Err(NameError::Delimiter {
                    name: "a.b".into(),
                    delimiter: '.',
                }),
            ),
            ("a.b", Some('/'), Ok("a.b".to_string())),
            (
                "a//b",
                Some('/'),
                Err(NameError::EmptyComponent("a//b".into())),
            ),
            ("", Some('/'), Err(NameError::Empty)),
            ("a\nb", Some('/'), Err(NameError::Control("a\nb".into()))),
        ] {
            assert_eq!(to_wire(name, delim), want, "{name:?} {delim:?}");
        }
    }

    #[test]
    fn from_wire_is_the_inverse() {
        assert_eq!(from_wire("B&APw-ro.2026", Some('.')).unwrap(), "Büro/2026");
        assert_eq!(from_wire("B&APw-ro/2026", Some('/')).unwrap(), "Büro/2026");
    }

    #[test]
    fn parents_outermost_first() {
        assert_eq!(parents("a/b/c"), vec!["a".to_string(), "a/b".to_string()]);
        assert!(parents("a").is_empty());
    }

    proptest! {
        #[test]
        fn mutf7_round_trips(s in "\\PC*") {
            let wire = mutf7_encode(&s);
            prop_assert!(wire.is_ascii());
            prop_assert_eq!(mutf7_decode(&wire).unwrap(), s);
        }

        #[test]
        fn wire_round_trips_with_dot_delimiter(parts in proptest::collection::vec("[^./\\p{Cc}]{1,8}", 1..4)) {
            let name = parts.join("/");
            prop_assume!(!name.eq_ignore_ascii_case("inbox"));
            let wire = to_wire(&name, Some('.')).unwrap();
            prop_assert_eq!(from_wire(&wire, Some('.')).unwrap(), name);
        }
    }
}
