//! Modified UTF-7 (RFC 3501 §5.1.3), encoding only: Dovecot keeps Maildir folder names on disk
//! in the form IMAP puts on the wire, so seeding mail into `Büro` means writing `B&APw-ro`.
//!
//! The product has its own codec (both directions, with validation); this copy keeps the
//! testkit free of any dependency on imapsort.

/// The base64 alphabet of modified UTF-7: `,` where standard base64 has `/`.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Encode one UTF-8 name component. Printable ASCII stays as it is (`&` becomes `&-`); every
/// run of other characters becomes `&` + unpadded base64 of its UTF-16BE + `-`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u8> = Vec::new();
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut run, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                run.extend_from_slice(&unit.to_be_bytes());
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Write a pending run of UTF-16BE bytes as `&…-` and empty it.
fn flush(run: &mut Vec<u8>, out: &mut String) {
    if run.is_empty() {
        return;
    }
    out.push('&');
    for chunk in run.chunks(3) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        // 1 byte gives 2 digits, 2 give 3, 3 give 4; no padding.
        for i in 0..=chunk.len() {
            out.push(char::from(
                ALPHABET[((bits >> (18 - 6 * i)) & 0x3f) as usize],
            ));
        }
    }
    out.push('-');
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn known_names_encode_as_rfc_3501_says() {
        for (utf8, wire) in [
            ("台北", "&U,BTFw-"),
            ("日本語", "&ZeVnLIqe-"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("Ärger & Spaß", "&AMQ-rger &- Spa&AN8-"),
            ("😀", "&2D3eAA-"),
            ("INBOX", "INBOX"),
            ("a~b", "a~b"),
            ("", ""),
        ] {
            assert_eq!(encode(utf8), wire, "{utf8:?}");
        }
    }
}
