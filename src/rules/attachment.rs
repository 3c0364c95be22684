//! Attachments from BODYSTRUCTURE: the IMAP layer hands over a part's disposition and raw
//! parameters; the name is decoded here exactly as for a parsed message (RFC 2231
//! continuations and charsets, RFC 2047 encoded words, Content-Type `name` as fallback).

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

use super::view::Attachment;

/// Rebuild a `Content-Type`-style header value and let mail-parser decode it.
fn decode_param(kind: &str, params: &[(String, String)], wanted: &str) -> Option<String> {
    let mut header = String::from(kind);
    for (name, value) in params {
        // Parameter names are tokens; anything else cannot be a file name parameter.
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'=' && b != b';')
        {
            continue;
        }
        header.push_str("; ");
        header.push_str(name);
        header.push_str("=\"");
        for c in value.chars() {
            match c {
                '"' | '\\' => {
                    header.push('\\');
                    header.push(c);
                }
                '\r' | '\n' => header.push(' '),
                c => header.push(c),
            }
        }
        header.push('"');
    }
    header.push('\n');
    match MessageStream::new(header.as_bytes()).parse_content_type() {
        HeaderValue::ContentType(ct) => ct
            .attribute(wanted)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        _ => None,
    }
}

impl Attachment {
    /// The attachment a BODYSTRUCTURE part describes, or `None` when the part is not an
    /// attachment (no `attachment` disposition and no file name).
    ///
    /// `disposition` is the disposition type (`attachment`, `inline`) with its parameters;
    /// `content_type_params` are the body parameters (`name`, `charset`). Values are as the
    /// server sent them: `filename*0*`, `filename*1`, RFC 2047 words are decoded here.
    pub fn from_mime_params(
        disposition: Option<&str>,
        disposition_params: &[(String, String)],
        content_type_params: &[(String, String)],
    ) -> Option<Attachment> {
        let filename = decode_param("attachment", disposition_params, "filename")
            .or_else(|| decode_param("application/octet-stream", content_type_params, "name"));
        let is_attachment =
            disposition.is_some_and(|d| d.trim().eq_ignore_ascii_case("attachment"));
        (is_attachment || filename.is_some()).then_some(Attachment { filename })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// (disposition, its parameters, Content-Type parameters, expected attachment name).
    type Case<'a> = (
        Option<&'a str>,
        Vec<(String, String)>,
        Vec<(String, String)>,
        Option<Option<&'a str>>,
    );

    #[test]
    fn bodystructure_parameters_are_decoded() {
        let cases: Vec<Case<'_>> = vec![
            (
                Some("attachment"),
                params(&[("filename", "a.pdf")]),
                vec![],
                Some(Some("a.pdf")),
            ),
            (
                Some("ATTACHMENT"),
                params(&[
                    ("filename*0*", "UTF-8''Rechnung%20M%C3%A4rz"),
                    ("filename*1", ".pdf"),
                ]),
                vec![],
                Some(Some("Rechnung März.pdf")),
            ),
            (
                None,
                vec![],
                params(&[
                    ("charset", "binary"),
                    ("name", "=?UTF-8?B?w5xiZXJzaWNodC5wbmc=?="),
                ]),
                Some(Some("Übersicht.png")),
            ),
            (Some("attachment"), vec![], vec![], Some(None)),
            (
                Some("inline"),
                vec![],
                params(&[("charset", "utf-8")]),
                None,
            ),
            (None, vec![], vec![], None),
            (
                Some("attachment"),
                params(&[("filename", "quote\"d \\ name")]),
                vec![],
                Some(Some("quote\"d \\ name")),
            ),
            (
                Some("attachment"),
                params(&[("file name", "x"), ("filename", "  ")]),
                vec![],
                Some(None),
            ),
        ];
        for (disposition, dparams, cparams, want) in cases {
            let got = Attachment::from_mime_params(disposition, &dparams, &cparams);
            assert_eq!(
                got.as_ref().map(|a| a.filename.as_deref()),
                want,
                "{disposition:?} {dparams:?} {cparams:?}"
            );
        }
    }
}
