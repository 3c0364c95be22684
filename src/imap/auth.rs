//! SASL initial responses (before base64) and the LOGIN argument encoding.
//! Nothing here logs; callers send the results and drop them.

/// `AUTHENTICATE PLAIN` (RFC 4616): `authzid NUL authcid NUL passwd`, with an empty authzid.
pub fn plain(user: &str, password: &str) -> String {
    format!("\0{user}\0{password}")
}

/// Google's XOAUTH2: `user=USER ^A auth=Bearer TOKEN ^A ^A`.
pub fn xoauth2(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

/// `OAUTHBEARER` (RFC 7628 §3.1): a GS2 header naming the user (`,` and `=` escaped as `=2C`
/// and `=3D`), then `host`, `port` and `auth` key-value pairs separated by ^A.
pub fn oauthbearer(user: &str, host: &str, port: u16, token: &str) -> String {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    format!("n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
}

/// How one LOGIN argument goes on the wire: a quoted string when it can be, else a literal.
#[derive(Debug, PartialEq, Eq)]
pub enum Astring {
    /// `"..."` with `\` and `"` escaped.
    Quoted(String),
    /// `{n}` CRLF then the raw bytes (non-ASCII, or control characters other than CR/LF).
    Literal(Vec<u8>),
}

/// Choose the encoding for a LOGIN argument.
pub fn astring(value: &str) -> Astring {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Astring::Quoted(format!(
            "\"{}\"",
            value.replace('\\', "\\\\").replace('"', "\\\"")
        ))
    } else {
        Astring::Literal(value.as_bytes().to_vec())
    }
}

/// A quoted string for a command argument that must not contain CR, LF or NUL.
pub fn quote(value: &str) -> Option<String> {
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return None;
    }
    Some(format!(
        "\"{}\"",
        value.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_strings_are_exact() {
        assert_eq!(plain("me", "pw"), "\0me\0pw");
        assert_eq!(
            xoauth2(
                "someuser@example.com",
                "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
            ),
            "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        // RFC 7628 §4.1's example.
        assert_eq!(
            oauthbearer(
                "user@example.com",
                "server.example.com",
                143,
                "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
            ),
            "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
        );
        assert_eq!(
            oauthbearer("a,b=c", "h", 993, "t"),
            "n,a=a=2Cb=3Dc,\x01host=h\x01port=993\x01auth=Bearer t\x01\x01"
        );
    }

    #[test]
    fn astring_quotes_or_literals() {
        for (input, want) in [
            ("plain", Astring::Quoted("\"plain\"".into())),
            ("a\"b\\c", Astring::Quoted("\"a\\\"b\\\\c\"".into())),
            ("pässword", Astring::Literal("pässword".as_bytes().to_vec())),
            ("tab\there", Astring::Literal(b"tab\there".to_vec())),
        ] {
            assert_eq!(astring(input), want, "{input:?}");
        }
        assert_eq!(quote("a\r\nb"), None);
    }
}
