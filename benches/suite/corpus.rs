//! A realistic mailbox, generated: people, mailing lists with List-Id, bots (GitHub, CI, Jira,
//! alerts, shops, banks), newsletters (multipart/alternative), RFC 2047 names and subjects,
//! multipart/mixed mail with base64 attachments, Received and DKIM header lines.
//!
//! Deterministic for a seed. Exactly 30 % of the messages come from GitHub (the sender the
//! single-rule scenario moves). Arrival times stay clear of the boundaries the 30-rule set tests
//! (365 and 730 days, New Year), because imapfilter's `is_older`/`arrived_before` search by
//! whole days and would otherwise disagree with imapsort's exact ages by design.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use base64::Engine as _;

const DAY: u64 = 86_400;

/// One generated message and how it lies in the mailbox.
pub struct Message {
    /// The raw message, CRLF line ends.
    pub bytes: Vec<u8>,
    /// Read (`\Seen`, delivered into `cur/`) or not.
    pub seen: bool,
    /// Arrival time (INTERNALDATE = the file's mtime).
    pub received: SystemTime,
}

/// The share of each kind of sender, in per mille; GitHub is fixed at 300.
const KINDS: &[(Kind, u32)] = &[
    (Kind::List, 180),
    (Kind::Newsletter, 120),
    (Kind::Ci, 40),
    (Kind::Jira, 30),
    (Kind::Alert, 20),
    (Kind::Shop, 40),
    (Kind::Bank, 10),
    (Kind::Social, 30),
    (Kind::Travel, 10),
    (Kind::School, 10),
    (Kind::Calendar, 20),
    (Kind::Person, 190),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    GitHub,
    List,
    Newsletter,
    Ci,
    Jira,
    Alert,
    Shop,
    Bank,
    Social,
    Travel,
    School,
    Calendar,
    Person,
}

/// The mailing lists (List-Id identifiers) the corpus uses.
pub const LISTS: &[&str] = &[
    "rust-users.lists.rust.example",
    "dovecot.dovecot.example",
    "debian-devel.lists.debian.example",
    "lwn-announce.lwn.example",
    "tokio-dev.groups.example",
];

const WORDS: &[&str] = &[
    "the", "server", "release", "notes", "about", "build", "weekend", "plan", "question", "report",
    "draft", "review", "update", "we", "should", "maybe", "config", "kernel", "thanks", "soon",
    "patch", "version", "family", "photos", "dinner", "tomorrow", "project", "budget", "issue",
];

const PEOPLE: &[(&str, &str)] = &[
    ("Alice Martin", "alice@home.example"),
    (
        "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?=",
        "juergen@mail.example",
    ),
    ("=?UTF-8?B?5bGx55Sw5aSq6YOO?=", "taro@jp.example"),
    ("Bob Chen", "bob@corp.example"),
    ("=?ISO-8859-1?Q?Ren=E9e_Fa=E7on?=", "renee@fr.example"),
    ("Carol Diaz", "carol@corp.example"),
    ("The Boss", "boss@corp.example"),
    ("Dmitri Ivanov", "dmitri@ru.example"),
];

/// Subjects people write; a few are RFC 2047 encoded at generation time.
const PERSON_SUBJECTS: &[&str] = &[
    "Re: dinner on Saturday",
    "photos from the trip",
    "urgent: can you call me?",
    "meeting notes for Thursday",
    "question about the budget",
    "Fwd: the report",
    "Grüße aus München",
    "Réunion de lundi",
    "週末の予定",
    "lunch?",
];

/// `count` messages; `seed` makes them reproducible.
pub fn generate(count: usize, seed: u64) -> Vec<Message> {
    let mut out = Vec::with_capacity(count);
    generate_each(count, seed, |_, m| out.push(m));
    out
}

/// The messages [`generate`] makes, handed over one at a time (in the same order), so that a
/// million of them need not be held at once.
pub fn generate_each(count: usize, seed: u64, mut each: impl FnMut(usize, Message)) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let github = count * 3 / 10;
    let mut kinds: Vec<Kind> = (0..count)
        .map(|i| {
            if i < github {
                Kind::GitHub
            } else {
                pick_kind(&mut rng)
            }
        })
        .collect();
    rng.shuffle(&mut kinds);
    let now = SystemTime::now();
    for (n, kind) in kinds.into_iter().enumerate() {
        let received = now - Duration::from_secs(age_secs(&mut rng, now));
        let bytes = message(&mut rng, kind, n, received);
        let m = Message {
            bytes,
            seen: rng.u32(..10) < 6,
            received,
        };
        each(n, m);
    }
}

fn pick_kind(rng: &mut fastrand::Rng) -> Kind {
    let total: u32 = KINDS.iter().map(|(_, w)| w).sum();
    let mut x = rng.u32(..total);
    for (k, w) in KINDS {
        if x < *w {
            return *k;
        }
        x -= w;
    }
    Kind::Person
}

/// An age in seconds, 1 to 900 days, never within two days of 365 or 730 days, nor within two
/// days of a New Year (UTC).
fn age_secs(rng: &mut fastrand::Rng, now: SystemTime) -> u64 {
    loop {
        let days = rng.u64(1..900);
        if (363..=367).contains(&days) || (728..=732).contains(&days) {
            continue;
        }
        let secs = days * DAY + rng.u64(0..DAY / 2);
        let when = now - Duration::from_secs(secs);
        let ts = jiff::Timestamp::try_from(when).expect("timestamp");
        let date = ts.to_zoned(jiff::tz::TimeZone::UTC).date();
        let doy = date.day_of_year();
        if doy <= 2 || doy >= date.days_in_year() - 1 {
            continue;
        }
        return secs;
    }
}

fn words(rng: &mut fastrand::Rng, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[rng.usize(..WORDS.len())]);
    }
    s
}

/// Plain text of about `bytes` bytes in lines of at most 76 characters.
fn text(rng: &mut fastrand::Rng, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 80);
    while s.len() < bytes {
        let n = 6 + rng.usize(..6);
        let line = words(rng, n);
        s.push_str(&line);
        s.push_str("\r\n");
    }
    s
}

fn encode_word(text: &str) -> String {
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
    )
}

fn message(rng: &mut fastrand::Rng, kind: Kind, n: usize, received: SystemTime) -> Vec<u8> {
    let date = jiff::Timestamp::try_from(received)
        .expect("timestamp")
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S +0000")
        .to_string();
    let mut h = String::with_capacity(2048);
    let relay = rng.u32(1..250);
    let _ = write!(
        h,
        "Return-Path: <bounce-{n}@mx.example>\r\nReceived: from mx{relay}.mail.example (mx{relay}.mail.example [192.0.2.{relay}])\r\n\tby mail.home.example (Postfix) with ESMTPS id 4Q{n:08X}\r\n\tfor <me@home.example>; {date}\r\n\
         Received: from localhost (localhost [127.0.0.1])\r\n\tby mx{relay}.mail.example with ESMTP id {n:x}; {date}\r\n\
         DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=mail.example; s=s{relay};\r\n\th=from:to:subject:date:message-id; bh={}=;\r\n\tb={}\r\n",
        words(rng, 3).replace(' ', ""),
        "Zm9vYmFyYmF6cXV4".repeat(10)
    );
    let mut from = String::new();
    let mut to = "Me <me@home.example>".to_owned();
    let mut subject;
    let mut extra = String::new();
    let mut body_kind = Body::Plain(rng.usize(300..4000));
    match kind {
        Kind::GitHub => {
            let repo = ["tokio-rs/tokio", "rust-lang/rust", "imapsort/imapsort"][rng.usize(..3)];
            let issue = rng.u32(1..40_000);
            from = "\"Some Contributor\" <notifications@github.example>".into();
            subject = format!("Re: [{repo}] Fix the reconnect loop (PR #{issue})");
            let list = repo.replace('/', ".");
            let _ = write!(
                extra,
                "List-Id: {repo} <{list}.github.example>\r\nList-Unsubscribe: <https://github.example/notifications/unsubscribe/{n}>\r\n\
                 X-GitHub-Reason: {}\r\nPrecedence: list\r\n",
                ["subscribed", "mention", "review_requested"][rng.usize(..3)]
            );
            body_kind = Body::Alternative(rng.usize(500..3000));
        }
        Kind::List => {
            let list = LISTS[rng.usize(..LISTS.len())];
            let (name, addr) = PEOPLE[rng.usize(..PEOPLE.len() - 2)];
            let _ = write!(from, "{name} <{}>", addr.replace("@", ".list@"));
            to = format!("<{}>", list.replacen('.', "@", 1));
            subject = format!(
                "[{}] {}",
                &list[..list.find('.').unwrap_or(0)],
                words(rng, 5)
            );
            let _ = write!(
                extra,
                "List-Id: The {} list <{list}>\r\nList-Post: <mailto:{}>\r\nPrecedence: list\r\nSender: owner-{}\r\n",
                &list[..list.find('.').unwrap_or(0)],
                list.replacen('.', "@", 1),
                list.replacen('.', "@", 1)
            );
        }
        Kind::Newsletter => {
            let (sender, mailer) = [
                ("Weekly <news@nl-weekly.example>", "Acme Mailer 2"),
                ("Medium Daily <digest@medium.example>", "sendgrid.net"),
                ("Substack <hello@substack.example>", "Substack"),
                ("Shop Deals <deals@shop.example>", "MailChimp Mailer"),
                ("Tech Brief <brief@techbrief.example>", "mailchimp"),
            ][rng.usize(..5)];
            from = sender.into();
            subject = if rng.bool() {
                encode_word(&format!("🎉 This week: {}", words(rng, 4)))
            } else {
                format!("Your weekly update: {}", words(rng, 4))
            };
            let _ = write!(
                extra,
                "X-Mailer: {mailer}\r\nList-Unsubscribe: <https://news.example/u/{n}>, <mailto:unsub-{n}@news.example>\r\n\
                 List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nPrecedence: bulk\r\n"
            );
            body_kind = Body::Alternative(rng.usize(3_000..15_000));
        }
        Kind::Ci => {
            from = "CI <ci@build.example>".into();
            let state = ["passed", "failed", "fixed", "errored"][rng.usize(..4)];
            subject = format!("[ci] build #{} {state} on main", rng.u32(1..99_999));
            extra.push_str("Auto-Submitted: auto-generated\r\n");
        }
        Kind::Jira => {
            from = "Jira <jira@corp.example>".into();
            subject = format!("[JIRA] (OPS-{}) {}", rng.u32(1..9999), words(rng, 4));
            extra.push_str("Auto-Submitted: auto-generated\r\n");
        }
        Kind::Alert => {
            from = "Monitoring <monitor@ops.example>".into();
            subject = format!(
                "[{}] {}",
                ["alerts", "ops"][rng.usize(..2)],
                ["disk almost full", "deploy finished", "latency high"][rng.usize(..3)]
            );
            extra.push_str("Auto-Submitted: auto-generated\r\n");
        }
        Kind::Shop => {
            let (f, s) = [
                (
                    "Billing <billing@shop.example>",
                    format!("Your invoice #{}", rng.u32(1000..99999)),
                ),
                (
                    "Payments <payments@energy.example>",
                    "Payment received".into(),
                ),
                (
                    "Orders <orders@shop.example>",
                    "Your parcel was shipped".into(),
                ),
                (
                    "Orders <orders@shop.example>",
                    "Out for delivery today".into(),
                ),
                (
                    "Store <store@books.example>",
                    "Receipt for your order".into(),
                ),
                (
                    "Security <security@vendor.example>",
                    format!("Security advisory {}", rng.u32(2020..2027)),
                ),
            ][rng.usize(..6)]
            .clone();
            from = f.into();
            subject = s;
        }
        Kind::Bank => {
            from = "Bank <statements@bank.example>".into();
            subject = "Your statement is ready".into();
        }
        Kind::Social => {
            from = [
                "Social <notify@social.example>",
                "Friends <updates@friends.example>",
            ][rng.usize(..2)]
            .into();
            subject = format!("{} liked your post", PEOPLE[rng.usize(..4)].0);
        }
        Kind::Travel => {
            from = "Booking <booking@travel.example>".into();
            subject = "Your booking is confirmed".into();
        }
        Kind::School => {
            from = "School office <office@school.example>".into();
            subject = "Newsletter for parents".into();
        }
        Kind::Calendar => {
            let (name, addr) = PEOPLE[rng.usize(..PEOPLE.len())];
            let _ = write!(from, "{name} <{addr}>");
            subject = format!(
                "{}: {} @ Wed 10:00",
                ["Invitation", "Accepted", "Declined"][rng.usize(..3)],
                words(rng, 2)
            );
        }
        Kind::Person => {
            let (name, addr) = PEOPLE[rng.usize(..PEOPLE.len())];
            let _ = write!(from, "{name} <{addr}>");
            let s = PERSON_SUBJECTS[rng.usize(..PERSON_SUBJECTS.len())];
            subject = if s.is_ascii() {
                s.into()
            } else {
                encode_word(s)
            };
            if rng.u32(..10) == 0 {
                to = "Team <team-dev@corp.example>".into();
            }
            if rng.u32(..10) == 0 {
                extra.push_str("Cc: Audit <audit7@corp.example>\r\n");
            }
            if rng.u32(..10) < 2 {
                let _ = write!(
                    extra,
                    "In-Reply-To: <p{}@bench.example>\r\n",
                    rng.u32(..n as u32 + 1)
                );
                if !subject.starts_with("Re:") && s.is_ascii() {
                    subject = format!("Re: {subject}");
                }
            }
            if rng.u32(..20) == 0 {
                body_kind = Body::Attachment(rng.usize(300..1500), rng.usize(20_000..200_000));
            }
        }
    }
    let _ = write!(
        h,
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <p{n}@bench.example>\r\nMIME-Version: 1.0\r\n{extra}"
    );
    let mut out = h.into_bytes();
    body(rng, body_kind, n, &mut out);
    out
}

#[derive(Clone, Copy)]
enum Body {
    /// text/plain of about this many bytes.
    Plain(usize),
    /// multipart/alternative: text and HTML of about this many bytes each.
    Alternative(usize),
    /// multipart/mixed: text, then a base64 PDF of this many bytes.
    Attachment(usize, usize),
}

fn body(rng: &mut fastrand::Rng, kind: Body, n: usize, out: &mut Vec<u8>) {
    let mut b = String::new();
    match kind {
        Body::Plain(size) => {
            b.push_str("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
            b.push_str(&text(rng, size));
        }
        Body::Alternative(size) => {
            let _ = write!(
                b,
                "Content-Type: multipart/alternative; boundary=\"alt-{n}\"\r\n\r\n--alt-{n}\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n--alt-{n}\r\n\
                 Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>{}</p></body></html>\r\n--alt-{n}--\r\n",
                text(rng, size / 3),
                text(rng, size).replace("\r\n", "</p>\r\n<p>")
            );
        }
        Body::Attachment(size, attachment) => {
            let data: Vec<u8> = (0..attachment).map(|_| rng.u8(..)).collect();
            let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
            let _ = write!(
                b,
                "Content-Type: multipart/mixed; boundary=\"mix-{n}\"\r\n\r\n--mix-{n}\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n--mix-{n}\r\n\
                 Content-Type: application/pdf; name=\"report-{n}.pdf\"\r\n\
                 Content-Disposition: attachment; filename=\"report-{n}.pdf\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n",
                text(rng, size)
            );
            for chunk in encoded.as_bytes().chunks(76) {
                b.push_str(std::str::from_utf8(chunk).unwrap_or_default());
                b.push_str("\r\n");
            }
            let _ = write!(b, "--mix-{n}--\r\n");
        }
    }
    out.extend_from_slice(b.as_bytes());
}
