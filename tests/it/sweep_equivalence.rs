//! A 10,000-message sweep with rules of every kind gives exactly what evaluating each message
//! offline gives (`RuleSet::evaluate` on the whole .eml with the same flags, size and arrival
//! time): the same plans in a dry run (so the SEARCH push-down and the partial FETCH lose
//! nothing), and the same mailboxes and flags after the real run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use imapsort::cli::OutputFormat;
use imapsort::execute::Executor;
use imapsort::exit::Exit;
use imapsort::pass::sink::Sink;
use imapsort::pass::target::server_caps;
use imapsort::pass::{MessageResult, PassOptions, Report, Scope};
use imapsort::rules::{EvalContext, MessageFacts, MessageView, Plan};
use imapsort_testkit::dovecot::{DovecotOptions, SeedMessage};

use crate::support::sweep_util::{contents, observer, write_config};
use crate::support::{self, sweep_util};

const LIMIT: Duration = Duration::from_secs(600);
const MESSAGES: usize = 10_000;
const DAY: u64 = 86_400;

/// Rules of every kind: addresses, subject, headers, list-id, body, size, ages, flags,
/// keywords, attachments, all/any/not, regex captures in templates, every action but `label`
/// (Dovecot has no X-GM-EXT-1).
const RULES: &str = r#"
  - name: boss
    when: { from: boss@work.example }
    then: { flag: \Flagged }
    stop: true
  - name: lists
    when: { list_id: { suffix: lists.example.org } }
    then: { move: "Lists/{list_id}" }
  - name: announce by regex
    when: { list_id: { regex: '^(?P<topic>[a-z]+)\.example\.com$' } }
    then: { move: "Announce/{topic}/{year}" }
  - name: billing domain
    when: { from: { domain: example.net } }
    then: [{ flag: "$Billing" }, { copy: "Accounting/{from.domain}" }]
  - name: invoice subject
    when: { subject: { regex: '\b(invoice|receipt)\b' } }
    then: [{ flag: "$Invoice" }, { copy: "Accounting/{year}-{month}" }]
  - name: german invoice
    when: { subject: { contains: rechnung } }
    then: { flag: "$Rechnung" }
  - name: priority
    when: { header: { name: X-Priority, lt: 2 } }
    then: { flag: \Flagged }
  - name: spam score
    when: { header: { name: X-Spam-Score, ge: 5.5 } }
    then: trash
  - name: junk sender
    when: { from: { glob: "*@junk.test" } }
    then: trash
  - name: big
    when: { size: { over: 6K } }
    then: { flag: "$Big" }
  - name: tiny and old
    when: { all: [{ size: { under: 700 } }, { older_than: 300d }] }
    then: delete
  - name: pdf attachment
    when: { attachment: { glob: "*.pdf" } }
    then: { copy: "Documents/PDF" }
  - name: any attachment, recent
    when: { all: [{ has_attachment: true }, { newer_than: 14d }] }
    then: { flag: "$Attachment" }
  - name: keyword work
    when: { keyword: work }
    then: { move: "Work" }
  - name: old read
    when: { all: [{ older_than: 365d }, { seen: true }, { flagged: false }] }
    then: archive
  - name: old answered
    when: { all: [{ older_than: 200d }, { answered: true }] }
    then: { archive: "Archive/{year}" }
  - name: recent unread from alice
    when: { all: [{ newer_than: 30d }, { seen: false }, { from: { name: alice } }] }
    then: mark_read
  - name: to carol or cc dave
    when: { any: [{ to: carol@example.com }, { cc: { prefix: dave } }] }
    then: [{ unflag: \Flagged }, stop]
  - name: recipient team
    when: { recipient: { contains: team } }
    then: { flag: team }
  - name: reply-to differs
    when: { reply_to: { domain: replies.test } }
    then: { flag: "$ReplyTo" }
  - name: sender header
    when: { sender: { is: bounce@example.org } }
    then: mark_unread
  - name: sent long ago
    when: { sent_before: 500d }
    then: { flag: "$Ancient" }
  - name: meeting not urgent
    when: { all: [{ subject: meeting }, { not: { subject: { prefix: URGENT } } }] }
    then: { copy: "Meetings" }
  - name: csv by name
    when: { attachment: { suffix: .csv, case_sensitive: true } }
    then: { flag: "$CSV" }
  - name: draft
    when: { draft: true }
    then: { move: "Drafts" }
  - name: subject is exactly hello
    when: { subject: { is: hello } }
    then: { flag: "$Hello" }
  - name: news glob subject
    when: { subject: { glob: "News ??*" } }
    then: { move: "News/{from.address}" }
  - name: header exists
    when: { header: { name: X-Mailer, exists: true } }
    then: { flag: "$Mailer" }
  - name: everything else old
    when: { older_than: 700d }
    then: { archive: "Archive/very-old" }
"#;

/// Added for the second pass: a `body` condition makes the sweep fetch whole messages
/// (bounded) instead of header fields and BODYSTRUCTURE.
const BODY_RULE: &str = r#"
  - name: unsubscribe in body
    when: { all: [{ body: unsubscribe }, { not: { list_id: { exists: true } } }] }
    then: { flag: "$Newsletter" }
"#;

/// Rules the SEARCH push-down can narrow (no regex, glob, number, body or attachment
/// condition): the sweep fetches only the candidates the server finds.
const PUSHABLE: &str = r#"
  - name: boss
    when: { from: boss@work.example }
    then: { flag: \Flagged }
    stop: true
  - name: billing domain
    when: { from: { domain: example.net } }
    then: [{ flag: "$Billing" }, { copy: "Accounting/{from.domain}" }]
  - name: german invoice
    when: { subject: { contains: rechnung } }
    then: { flag: "$Rechnung" }
  - name: keyword work
    when: { keyword: WORK }
    then: { move: "Work" }
  - name: old read
    when: { all: [{ older_than: 365d }, { seen: true }, { flagged: false }] }
    then: archive
  - name: old answered
    when: { all: [{ older_than: 200d }, { answered: true }] }
    then: { archive: "Archive/{year}" }
  - name: recent unread from alice
    when: { all: [{ newer_than: 30d }, { seen: false }, { from: { name: alice } }] }
    then: mark_read
  - name: to carol or cc dave
    when: { any: [{ to: carol@example.com }, { cc: { prefix: dave } }] }
    then: [{ unflag: \Flagged }, stop]
  - name: recipient team
    when: { recipient: { contains: team } }
    then: { flag: team }
  - name: reply-to differs
    when: { reply_to: { domain: replies.test } }
    then: { flag: "$ReplyTo" }
  - name: sender header
    when: { sender: { is: bounce@example.org } }
    then: mark_unread
  - name: subject is exactly hello
    when: { subject: { is: hello } }
    then: { flag: "$Hello" }
  - name: header exists
    when: { header: { name: X-Mailer, exists: true } }
    then: { flag: "$Mailer" }
  - name: big
    when: { size: { over: 6K } }
    then: { flag: "$Big" }
  - name: tiny and old
    when: { all: [{ size: { under: 700 } }, { older_than: 300d }] }
    then: delete
  - name: not seen and not old
    when: { not: { any: [{ seen: true }, { older_than: 100d }] } }
    then: { flag: "$Fresh" }
  - name: draft
    when: { draft: true }
    then: { move: "Drafts" }
"#;

/// A deterministic generator of varied messages.
struct Gen {
    rng: fastrand::Rng,
}

impl Gen {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.usize(..items.len())]
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.u32(..100) < percent
    }

    /// Message `n`: its bytes and flags.
    fn message(&mut self, n: usize) -> (Vec<u8>, Vec<String>) {
        let locals = [
            "alice", "bob", "billing", "noreply", "news", "Carol.X", "shop",
        ];
        let domains = [
            "example.com",
            "Billing.Example.NET",
            "shop.example.net",
            "lists.example.org",
            "junk.test",
            "work.example",
            "mail.test",
        ];
        let names = [
            "",
            "Alice Liddell",
            "=?UTF-8?Q?J=C3=BCrgen?=",
            "\"Bob, the builder\"",
            "Shop",
        ];
        let from = if self.chance(3) {
            "Boss <boss@work.example>".to_owned()
        } else {
            let local = self.pick(&locals);
            let domain = self.pick(&domains);
            match self.pick(&names) {
                "" => format!("{local}@{domain}"),
                name => format!("{name} <{local}@{domain}>"),
            }
        };
        let subjects = [
            "hello",
            "Hello",
            "Your invoice 42",
            "Receipt for order",
            "=?UTF-8?Q?Ihre_Rechnung_f=C3=BCr_M=C3=A4rz?=",
            "meeting tomorrow",
            "URGENT meeting",
            "News 17 of the week",
            "News",
            "invoices are due",
            "misc",
        ];
        let mut h = vec![format!("From: {from}")];
        let tos = [
            "user@example.com",
            "carol@example.com",
            "Team <team@example.com>",
            "x@y.test",
        ];
        h.push(format!("To: {}", self.pick(&tos)));
        if self.chance(20) {
            h.push(format!(
                "Cc: {}",
                self.pick(&["dave@example.com", "erin@example.com", "DAVE.B@x.test"])
            ));
        }
        if self.chance(90) {
            h.push(format!("Subject: {}", self.pick(&subjects)));
        }
        h.push(format!("Message-ID: <n{n}@gen.test>"));
        if self.chance(90) {
            let days_ago = self.rng.u64(0..900);
            let ago = (days_ago * DAY + DAY / 2) as i64;
            let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(ago);
            h.push(format!(
                "Date: {}",
                jiff::fmt::rfc2822::to_string(&t.to_zoned(jiff::tz::TimeZone::UTC)).unwrap()
            ));
        }
        if self.chance(15) {
            let lists = [
                "Dev <dev.lists.example.org>",
                "<ops.lists.example.org>",
                "Announce <rust.example.com>",
                "<go.example.com>",
                "weird list id",
            ];
            h.push(format!("List-Id: {}", self.pick(&lists)));
        }
        if self.chance(20) {
            h.push(format!(
                "X-Priority: {}",
                self.pick(&["1", "1 (Highest)", "3", "5", " 1.5 "])
            ));
        }
        if self.chance(15) {
            h.push(format!(
                "X-Spam-Score: {}",
                self.pick(&["0.1", "5.5", "9", "-2", "high"])
            ));
        }
        if self.chance(10) {
            h.push("X-Mailer: gen 1.0".to_owned());
        }
        if self.chance(5) {
            h.push(format!(
                "Reply-To: r@{}",
                self.pick(&["replies.test", "sub.replies.test", "replies.test.evil"])
            ));
        }
        if self.chance(5) {
            h.push(format!(
                "Sender: {}",
                self.pick(&[
                    "bounce@example.org",
                    "Bounce@Example.org",
                    "other@example.org"
                ])
            ));
        }
        let words = [
            "lorem",
            "ipsum",
            "unsubscribe",
            "dolor",
            "sit",
            "amet",
            "Unsubscribe here",
        ];
        let text: Vec<&str> = (0..self.rng.usize(3..60))
            .map(|_| self.pick(&words))
            .collect();
        let text = text.join(" ");
        let body = match self.rng.u32(..4) {
            0 | 1 => {
                h.push("MIME-Version: 1.0".to_owned());
                h.push("Content-Type: text/plain; charset=utf-8".to_owned());
                format!("{text}\r\n")
            }
            2 => {
                h.push("MIME-Version: 1.0".to_owned());
                h.push("Content-Type: multipart/alternative; boundary=\"alt\"".to_owned());
                format!(
                    "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{text} &amp; more</p>\r\n--alt--\r\n"
                )
            }
            _ => {
                h.push("MIME-Version: 1.0".to_owned());
                h.push("Content-Type: multipart/mixed; boundary=\"mix\"".to_owned());
                let names = [
                    "filename=\"report.pdf\"",
                    "filename*=UTF-8''Rechnung%20%E2%82%AC.PDF",
                    "filename=\"=?UTF-8?B?w5xiZXJzaWNodC5jc3Y=?=\"",
                    "filename=\"data.CSV\"",
                    "filename=\"photo.jpg\"",
                ];
                let disposition = if self.chance(80) {
                    format!("Content-Disposition: attachment; {}\r\n", self.pick(&names))
                } else {
                    String::new()
                };
                let payload: String = (0..self.rng.usize(100..9000))
                    .map(|i| if i % 76 == 75 { '\n' } else { 'A' })
                    .collect::<String>()
                    .replace('\n', "\r\n");
                format!(
                    "--mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--mix\r\n\
                     Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\
                     {disposition}\r\n{payload}\r\n--mix--\r\n"
                )
            }
        };
        let mut bytes = h.join("\r\n");
        bytes.push_str("\r\n\r\n");
        bytes.push_str(&body);
        let mut flags = Vec::new();
        for (flag, percent) in [
            ("\\Seen", 50),
            ("\\Flagged", 10),
            ("\\Answered", 15),
            ("\\Draft", 1),
        ] {
            if self.chance(percent) {
                flags.push(flag.to_owned());
            }
        }
        (bytes.into_bytes(), flags)
    }
}

/// Collects every result of the library sweep.
#[derive(Default)]
struct Collect(Vec<MessageResult>);

impl Report for Collect {
    fn message(&mut self, r: &MessageResult) {
        self.0.push(r.clone());
    }
}

type Plans = BTreeMap<String, (Vec<String>, Plan)>;

/// What evaluating every seeded .eml offline gives: Message-ID -> (rules, plan), for messages
/// with a non-empty plan.
fn offline_plans(
    rules: &imapsort::rules::RuleSet,
    seeds: &[SeedMessage],
    start_flags: &BTreeMap<String, BTreeSet<String>>,
    arrival: &[jiff::Timestamp],
    offset: jiff::tz::Offset,
    now: jiff::Timestamp,
) -> Plans {
    let watch = vec![imapsort::vocab::MailboxName::inbox()];
    let ctx = EvalContext {
        account: Some("test"),
        mailbox: &imapsort::vocab::MailboxName::inbox(),
        watch: &watch,
        trigger: None,
        now,
        trash: "Trash",
        archive: "Archive",
        delimiter: Some('/'),
        applied: None,
    };
    let mut out = Plans::new();
    for (n, seed) in seeds.iter().enumerate() {
        let id = format!("<n{n}@gen.test>");
        let facts = MessageFacts {
            flags: start_flags[&id].iter().cloned().collect(),
            size: seed.bytes.len() as u64,
            received: Some(arrival[n].to_zoned(jiff::tz::TimeZone::fixed(offset))),
        };
        let view = MessageView::parse(&seed.bytes, facts);
        let ev = rules.evaluate(&view, &ctx);
        if !ev.plan.is_empty() {
            out.insert(
                id,
                (ev.matched.into_iter().map(|m| m.rule).collect(), ev.plan),
            );
        }
    }
    out
}

/// The library sweep in a dry run at `now`: Message-ID -> (rules, plan) of messages acted on.
async fn dry_run(
    d: &imapsort_testkit::dovecot::Dovecot,
    rules: &imapsort::rules::RuleSet,
    now: jiff::Timestamp,
) -> Plans {
    let mut sess = imapsort::imap::connect(
        &support::dovecot::connect_opts(d, "user"),
        &secrecy::SecretString::from("pass".to_string()),
    )
    .await
    .unwrap();
    let watch = vec![imapsort::vocab::MailboxName::inbox()];
    let opts = PassOptions {
        account: "test",
        mailbox: &imapsort::vocab::MailboxName::inbox(),
        watch: &watch,
        trigger: None,
        trash: "Trash",
        archive: "Archive",
        now,
        scope: Scope::All,
        dry_run: true,
        selected: None,
        gists: false,
    };
    let mut exec = Executor::new(server_caps(&sess));
    let mut sink = Collect::default();
    let mut state = Sink::new(None, None, true);
    let started = std::time::Instant::now();
    let summary = imapsort::pass::run(&mut sess, rules, &opts, &mut exec, &mut state, &mut sink)
        .await
        .unwrap();
    eprintln!(
        "dry-run sweep of {MESSAGES} messages took {:?}",
        started.elapsed()
    );
    assert_eq!(summary.examined, MESSAGES as u64);
    let _ = sess.logout().await;
    sink.0
        .into_iter()
        .filter(|r| !r.plan.is_empty())
        .map(|r| (r.message_id.clone().unwrap(), (r.rules, r.plan)))
        .collect()
}

fn assert_same(offline: &Plans, swept: &Plans, what: &str) {
    let missing: Vec<&String> = offline
        .keys()
        .filter(|k| !swept.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<&String> = swept
        .keys()
        .filter(|k| !offline.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, extra {extra:?}"
    );
    for (id, want) in offline {
        assert_eq!(&swept[id], want, "{what}: {id}");
    }
}

#[test]
fn ten_thousand_messages_sweep_like_offline_evaluation() {
    let Some(d) = support::dovecot::start(DovecotOptions::default()) else {
        return;
    };
    // One whole-second instant for the seeds' mtimes and for evaluation.
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_second() as u64);
    let mut gen_ = Gen {
        rng: fastrand::Rng::with_seed(20_260_301),
    };
    // Arrival times sit at whole days plus 12 hours before `now`, so no message is near a
    // cutoff of any whole-day age rule, whichever instant the sweep measures from.
    let mut seeds = Vec::with_capacity(MESSAGES);
    let mut arrival = Vec::with_capacity(MESSAGES);
    for n in 0..MESSAGES {
        let (bytes, flags) = gen_.message(n);
        let ago = gen_.rng.u64(0..800) * DAY + DAY / 2;
        let when = base - Duration::from_secs(ago);
        arrival.push(now - jiff::SignedDuration::from_secs(ago as i64));
        seeds.push(SeedMessage {
            bytes,
            flags,
            internal_date: Some(when),
        });
    }
    d.seed_with("user", "INBOX", &seeds).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let headers_dir = dir.path().join("headers");
    let body_dir = dir.path().join("body");
    std::fs::create_dir_all(&headers_dir).unwrap();
    std::fs::create_dir_all(&body_dir).unwrap();
    let config_path = write_config(&headers_dir, &d, "", RULES);
    let body_config_path = write_config(&body_dir, &d, "", &format!("{RULES}{BODY_RULE}"));
    let push_dir = dir.path().join("push");
    std::fs::create_dir_all(&push_dir).unwrap();
    let push_config_path = write_config(&push_dir, &d, "", PUSHABLE);
    let push_config = imapsort::config::load(&push_config_path).unwrap_or_else(|e| panic!("{e}"));
    let query = imapsort::imap::search::superset(push_config.rules.rules().map(|r| &r.when), now);
    assert!(!query.is_all(), "the push-down should narrow: {query}");
    let config = imapsort::config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    let body_config = imapsort::config::load(&body_config_path).unwrap_or_else(|e| panic!("{e}"));

    support::run_with_timeout(LIMIT, async {
        // Keywords cannot be seeded as files: store `work` on every 7th message.
        let mut s = observer(&d).await;
        s.select("INBOX").await.unwrap();
        let items = s
            .uid_fetch(
                "1:*",
                "(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
            )
            .await
            .unwrap();
        assert_eq!(items.len(), MESSAGES);
        let mut uid_of: HashMap<usize, u32> = HashMap::new();
        let mut offset = None;
        for item in &items {
            let header = String::from_utf8_lossy(item.header().unwrap()).to_string();
            let n: usize = header
                .split("<n")
                .nth(1)
                .unwrap()
                .split('@')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            uid_of.insert(n, item.uid().unwrap());
            let date = item.internal_date().unwrap();
            // The server keeps the seeded instant (to the second).
            assert_eq!(
                date.timestamp().as_second(),
                arrival[n].as_second(),
                "message {n}"
            );
            offset = Some(date.offset());
        }
        let offset = offset.unwrap();
        let work_uids: Vec<String> = (0..MESSAGES)
            .filter(|n| n % 7 == 3)
            .map(|n| uid_of[&n].to_string())
            .collect();
        for chunk in work_uids.chunks(200) {
            s.uid_store(&chunk.join(","), "+FLAGS.SILENT (work)")
                .await
                .unwrap();
        }
        let mut start_flags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (n, seed) in seeds.iter().enumerate() {
            let mut flags: BTreeSet<String> = seed.flags.iter().cloned().collect();
            if n % 7 == 3 {
                flags.insert("work".to_owned());
            }
            start_flags.insert(format!("<n{n}@gen.test>"), flags);
        }

        // Header fields + BODYSTRUCTURE, then whole messages: the same plans as offline.
        let offline = offline_plans(&config.rules, &seeds, &start_flags, &arrival, offset, now);
        assert!(
            offline.len() > MESSAGES / 3,
            "the rules should act on many messages"
        );
        assert_same(&offline, &dry_run(&d, &config.rules, now).await, "headers");
        let offline_body = offline_plans(
            &body_config.rules,
            &seeds,
            &start_flags,
            &arrival,
            offset,
            now,
        );
        assert!(
            offline_body
                .values()
                .any(|(rules, _)| rules.iter().any(|r| r == "unsubscribe in body"))
        );
        assert_same(
            &offline_body,
            &dry_run(&d, &body_config.rules, now).await,
            "body",
        );
        let offline_push = offline_plans(
            &push_config.rules,
            &seeds,
            &start_flags,
            &arrival,
            offset,
            now,
        );
        assert!(offline_push.len() > 1000, "{}", offline_push.len());
        assert_same(
            &offline_push,
            &dry_run(&d, &push_config.rules, now).await,
            "push-down",
        );

        // The real run through the command: the server ends up as the offline plans say.
        let run = sweep_util::sweep(&config_path, false, OutputFormat::Json).await;
        assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
        let summary = run.summary();
        assert_eq!(summary["errors"], 0, "{}", run.stderr);
        assert_eq!(summary["examined"], MESSAGES as u64);
        let lines = run.by_message_id();
        assert_eq!(lines.len(), offline.len());

        let mut want: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for (id, flags) in &start_flags {
            let mut flags = flags.clone();
            let mut stays = Some("INBOX".to_owned());
            let mut copies = Vec::new();
            if let Some((_, plan)) = offline.get(id) {
                for f in &plan.add_flags {
                    flags.insert(f.clone());
                }
                for f in &plan.remove_flags {
                    flags.retain(|x| !x.eq_ignore_ascii_case(f));
                }
                copies = plan.copy.clone();
                if let Some(f) = &plan.final_action {
                    stays = f.mailbox.clone();
                }
            }
            for m in copies.into_iter().chain(stays) {
                want.entry(m).or_default().insert(id.clone(), flags.clone());
            }
        }
        // Keywords compare case-insensitively on Dovecot; normalise both sides.
        let norm = |m: BTreeMap<String, BTreeSet<String>>| -> BTreeMap<String, BTreeSet<String>> {
            m.into_iter()
                .map(|(k, v)| (k, v.iter().map(|f| f.to_lowercase()).collect()))
                .collect()
        };
        for name in sweep_util::mailbox_names(&mut s).await {
            let got: BTreeMap<String, BTreeSet<String>> = contents(&mut s, &name)
                .await
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().collect()))
                .collect();
            let expected = want.remove(&name).unwrap_or_default();
            assert_eq!(got.len(), expected.len(), "{name}");
            assert_eq!(norm(got), norm(expected), "{name}");
        }
        assert!(
            want.is_empty(),
            "mailboxes never created: {:?}",
            want.keys()
        );
    });
}
