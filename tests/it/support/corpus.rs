//! The malformed-mail corpus: the small cases are the `.eml` files in tests/malformed/ (the
//! fuzz targets read them too); the large ones are generated here (megabytes are not worth
//! committing). Each case has a name (used as the file name when written out) and its bytes.
use std::path::{Path, PathBuf};

/// One corpus message.
pub struct Case {
    /// A file name (`*.eml`) that says what is wrong with it.
    pub name: String,
    /// The raw message.
    pub bytes: Vec<u8>,
}

/// The directory of the committed small cases.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed")
}

/// The committed `.eml` cases, sorted by name.
pub fn committed() -> Vec<Case> {
    let mut out: Vec<Case> = std::fs::read_dir(dir())
        .expect("tests/malformed")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| Case {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            bytes: std::fs::read(&p).expect("read corpus file"),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The realistic rule set every corpus test evaluates (every condition and action kind).
pub fn rules_yaml() -> &'static str {
    include_str!("../../malformed/rules.yaml")
}

const HEAD: &str =
    "From: Gen <gen@example.org>\r\nTo: me@example.com\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n";

fn with_head(name: &str, rest: &[u8]) -> Vec<u8> {
    let mut v = format!("{HEAD}Message-ID: <{name}@gen.example>\r\n").into_bytes();
    v.extend_from_slice(rest);
    v
}

/// A header line of 1 MiB (one unfolded Subject).
pub fn huge_header_line() -> Case {
    let mut rest = b"Subject: ".to_vec();
    rest.extend(std::iter::repeat_n(b'x', 1 << 20));
    rest.extend_from_slice(b" invoice\r\n\r\nbody\r\n");
    Case {
        name: "huge-header-line-1mib.eml".into(),
        bytes: with_head("huge-line", &rest),
    }
}

/// A 1 MiB header folded into many continuation lines, and a 1 MiB `To` of addresses.
pub fn huge_folded_header() -> Case {
    let mut rest = Vec::with_capacity(2 << 20);
    rest.extend_from_slice(b"Subject: start");
    while rest.len() < 1 << 20 {
        rest.extend_from_slice(b"\r\n \t=?utf-8?q?w=C3=B6rd?= more");
    }
    rest.extend_from_slice(b"\r\nTo: ");
    let mut n = 0;
    while rest.len() < 2 << 20 {
        rest.extend_from_slice(format!("u{n}@d{n}.example, ").as_bytes());
        n += 1;
    }
    rest.extend_from_slice(b"last@x.example\r\n\r\nbody\r\n");
    Case {
        name: "huge-folded-header-and-to.eml".into(),
        bytes: with_head("huge-folded", &rest),
    }
}

/// 10,000 header fields (X-Spam-Score among them many times, some From duplicates).
pub fn ten_thousand_headers() -> Case {
    let mut rest = Vec::new();
    for i in 0..10_000 {
        let line = match i % 5 {
            0 => format!("X-Header-{i}: value {i}\r\n"),
            1 => format!("X-Spam-Score: {}\r\n", i % 11),
            2 => format!("Received: from h{i}.example by mx; Mon, 2 Mar 2026 10:00:00 +0000\r\n"),
            3 => format!("List-Id: <l{i}.example>\r\n"),
            _ => format!("Subject: part {i} [OPS-{i}]\r\n"),
        };
        rest.extend_from_slice(line.as_bytes());
    }
    rest.extend_from_slice(b"\r\nbody\r\n");
    Case {
        name: "ten-thousand-headers.eml".into(),
        bytes: with_head("many-headers", &rest),
    }
}

/// Multiparts nested `depth` levels deep, each with its own boundary, with an attachment at
/// the bottom.
pub fn nested_multiparts(depth: usize) -> Case {
    let mut rest = Vec::new();
    rest.extend_from_slice(b"MIME-Version: 1.0\r\n");
    for level in 0..depth {
        rest.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n")
                .as_bytes(),
        );
    }
    rest.extend_from_slice(
        b"Content-Type: application/pdf; name=deep.pdf\r\nContent-Disposition: attachment\r\n\r\nx\r\n",
    );
    for level in (0..depth).rev() {
        rest.extend_from_slice(format!("--b{level}--\r\n").as_bytes());
    }
    Case {
        name: format!("nested-multipart-{depth}.eml"),
        bytes: with_head(&format!("nested-{depth}"), &rest),
    }
}

/// Nested message/rfc822 parts (a forward of a forward of ...).
pub fn nested_rfc822(depth: usize) -> Case {
    let mut rest = Vec::new();
    for _ in 0..depth {
        rest.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\nFrom: inner@example.org\r\n");
    }
    rest.extend_from_slice(b"Subject: innermost\r\n\r\nunsubscribe\r\n");
    Case {
        name: format!("nested-rfc822-{depth}.eml"),
        bytes: with_head(&format!("rfc822-{depth}"), &rest),
    }
}

/// A big attachment whose base64 stops mid-quantum, with junk characters inside.
pub fn truncated_big_base64() -> Case {
    let mut rest = b"Content-Type: multipart/mixed; boundary=Z\r\n\r\n--Z\r\nContent-Type: text/plain\r\n\r\nhi\r\n--Z\r\nContent-Type: application/pdf; name=\"big.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    for i in 0..40_000 {
        rest.extend_from_slice(b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2");
        if i % 997 == 0 {
            rest.extend_from_slice(b"!!\x00\xff");
        }
        rest.extend_from_slice(b"\r\n");
    }
    rest.extend_from_slice(b"QUJ");
    Case {
        name: "truncated-base64-2mib.eml".into(),
        bytes: with_head("trunc-b64", &rest),
    }
}

/// Pseudo-random bytes (a fixed xorshift stream): 8-bit junk everywhere, including headers.
pub fn binary_junk(len: usize, seed: u64) -> Case {
    let mut x = seed | 1;
    let mut bytes = b"Subject: ".to_vec();
    bytes.extend((0..len).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Sprinkle line ends and colons so the junk looks like headers now and then.
        match x % 61 {
            0 => b'\n',
            1 => b'\r',
            2 => b':',
            _ => (x >> 24) as u8,
        }
    }));
    Case {
        name: format!("binary-junk-{len}-{seed}.eml"),
        bytes,
    }
}

/// Many parts (a flat multipart with 20,000 tiny attachments).
pub fn many_parts() -> Case {
    let mut rest = b"Content-Type: multipart/mixed; boundary=P\r\n\r\n".to_vec();
    for i in 0..20_000 {
        rest.extend_from_slice(
            format!("--P\r\nContent-Disposition: attachment; filename=\"f{i}.pdf\"\r\n\r\n{i}\r\n")
                .as_bytes(),
        );
    }
    rest.extend_from_slice(b"--P--\r\n");
    Case {
        name: "twenty-thousand-parts.eml".into(),
        bytes: with_head("many-parts", &rest),
    }
}

/// Every RFC 2047 encoded word malformed in a different way, many times over.
pub fn encoded_word_torture() -> Case {
    let words: &[&str] = &[
        "=?utf-8?q?",
        "=?utf-8?b?====?=",
        "=?utf-8*en?q?a?=",
        "=??q?x?=",
        "=?utf-8?x?abc?=",
        "=?utf-16?b?2D3eAA==?=",
        "=?gb2312?b?1tDO?=",
        "=?utf-8?q?=E2=82?=",
        "=?",
        "?=",
    ];
    let mut subject = String::from("Subject: ");
    for i in 0..20_000 {
        subject.push_str(words[i % words.len()]);
        subject.push(' ');
    }
    let rest = format!("{subject}\r\nList-Id: {subject}\r\n\r\nbody\r\n");
    Case {
        name: "encoded-word-torture.eml".into(),
        bytes: with_head("ew", rest.as_bytes()),
    }
}

/// The generated (large) cases.
pub fn generated() -> Vec<Case> {
    vec![
        huge_header_line(),
        huge_folded_header(),
        ten_thousand_headers(),
        nested_multiparts(500),
        nested_multiparts(5_000),
        nested_rfc822(500),
        truncated_big_base64(),
        binary_junk(1 << 20, 7),
        binary_junk(4096, 42),
        many_parts(),
        encoded_word_torture(),
    ]
}

/// Committed and generated cases together.
pub fn all() -> Vec<Case> {
    let mut v = committed();
    v.extend(generated());
    v
}
