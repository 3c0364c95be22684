//! `cargo bench --bench sweep`: `imapsort sweep` against imapfilter 2.8 on the same mail.
//!
//! Starts a private Dovecot (tmpfs), and for every run seeds a fresh user with the same
//! 10,000-message INBOX (indexed once by a SELECT before timing, as a mailbox in use would
//! be), then times one process doing one pass:
//!
//! - `single sender`: one rule moving the 3,000 messages from one sender;
//! - `30 rules`: a realistic set of 30 rules, a third of them regexes (imapfilter needs its
//!   `match_*` functions for those, which fetch header fields message by message).
//!
//! - `30 rules, +1 ms each way`: the same through a proxy that adds 1 ms of latency in each
//!   direction (tokio's timer resolution), as a LAN or nearby server would: what per-message
//!   round trips cost away from loopback. `IMAPSORT_BENCH_LATENCY_RUNS` runs (default 3; 0
//!   skips it).
//!
//! Both tools talk plain IMAP (no TLS, which imapfilter would want to prompt about) and end
//! with the same mailboxes: the harness checks that before printing. Medians of
//! `IMAPSORT_BENCH_RUNS` runs (default 5), as ratios. Needs `dovecot` and `imapfilter`.
//! `IMAPSORT_BENCH_VERBOSE=1 IMAPSORT_BENCH_LOG=imapsort=debug` shows imapsort's timings.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use imapsort::config::{AuthMechanism, TlsMode};
use imapsort::imap::{ConnectOptions, connect};
use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};
use secrecy::SecretString;

const MESSAGES: usize = 10_000;
const BULK: usize = 3_000;
const DAY: u64 = 86_400;

/// One rule in both languages.
struct Rule {
    /// The YAML list item, indented for `rules:`.
    yaml: &'static str,
    /// The Lua lines doing the same to `a.INBOX`.
    lua: &'static str,
}

const SINGLE: &[Rule] = &[Rule {
    yaml: "  - name: bulk\n    when: { from: sender@bulk.example }\n    then: { move: Bulk }\n",
    lua: "a.INBOX:contain_from('sender@bulk.example'):move_messages(a['Bulk'])",
}];

macro_rules! from_rule {
    ($name:literal, $addr:literal, $box:literal) => {
        Rule {
            yaml: concat!(
                "  - name: ",
                $name,
                "\n    when: { from: ",
                $addr,
                " }\n    then: { move: \"",
                $box,
                "\" }\n"
            ),
            lua: concat!(
                "a.INBOX:contain_from('",
                $addr,
                "'):move_messages(a['",
                $box,
                "'])"
            ),
        }
    };
}

const THIRTY: &[Rule] = &[
    from_rule!("bulk", "sender@bulk.example", "Bulk"),
    from_rule!("nl0", "news@nl0.example", "Newsletters/nl0"),
    from_rule!("nl1", "news@nl1.example", "Newsletters/nl1"),
    from_rule!("nl2", "news@nl2.example", "Newsletters/nl2"),
    from_rule!("nl3", "news@nl3.example", "Newsletters/nl3"),
    from_rule!("nl4", "news@nl4.example", "Newsletters/nl4"),
    from_rule!("github", "notifications@github.example", "Dev/GitHub"),
    from_rule!("jira", "jira@corp.example", "Dev/Jira"),
    from_rule!("ci", "ci@build.example", "Dev/CI"),
    Rule {
        yaml: "  - name: alerts\n    when: { subject: { regex: '^\\[(alerts|ops)\\]' } }\n    then: { move: Alerts }\n",
        lua: "a.INBOX:match_subject('^\\\\[(alerts|ops)\\\\]'):move_messages(a['Alerts'])",
    },
    Rule {
        yaml: "  - name: invoices\n    when: { subject: { regex: 'invoice #[0-9]+' } }\n    then: { move: Invoices }\n",
        lua: "a.INBOX:match_subject('invoice #[0-9]+'):move_messages(a['Invoices'])",
    },
    Rule {
        yaml: "  - name: marketing\n    when: { header: { name: X-Mailer, regex: 'mailchimp|sendgrid' } }\n    then: { move: Marketing }\n",
        lua: "a.INBOX:match_field('X-Mailer', 'mailchimp|sendgrid'):move_messages(a['Marketing'])",
    },
    Rule {
        yaml: "  - name: billing\n    when: { from: { regex: '(billing|payments)@[a-z]+\\.example' } }\n    then: { move: Billing }\n",
        lua: "a.INBOX:match_from('(billing|payments)@[a-z]+\\\\.example'):move_messages(a['Billing'])",
    },
    Rule {
        yaml: "  - name: team\n    when: { to: { regex: 'team-[a-z]+@corp\\.example' } }\n    then: { move: Team }\n",
        lua: "a.INBOX:match_to('team-[a-z]+@corp\\\\.example'):move_messages(a['Team'])",
    },
    Rule {
        yaml: "  - name: digests\n    when: { subject: { regex: 'weekly (digest|summary)' } }\n    then: { move: Digests }\n",
        lua: "a.INBOX:match_subject('weekly (digest|summary)'):move_messages(a['Digests'])",
    },
    Rule {
        yaml: "  - name: shipping\n    when: { subject: { regex: '(shipped|delivered|out for delivery)' } }\n    then: { move: Shipping }\n",
        lua: "a.INBOX:match_subject('(shipped|delivered|out for delivery)'):move_messages(a['Shipping'])",
    },
    Rule {
        yaml: "  - name: cc audit\n    when: { cc: { regex: 'audit[0-9]*@corp\\.example' } }\n    then: { move: Audit }\n",
        lua: "a.INBOX:match_cc('audit[0-9]*@corp\\\\.example'):move_messages(a['Audit'])",
    },
    Rule {
        yaml: "  - name: security\n    when: { subject: { regex: 'security (advisory|notice) [0-9]{4}' } }\n    then: { move: Security }\n",
        lua: "a.INBOX:match_subject('security (advisory|notice) [0-9]{4}'):move_messages(a['Security'])",
    },
    Rule {
        yaml: "  - name: calendar\n    when: { subject: { regex: '^(invitation|accepted|declined):' } }\n    then: { move: Calendar }\n",
        lua: "a.INBOX:match_subject('^(invitation|accepted|declined):'):move_messages(a['Calendar'])",
    },
    Rule {
        yaml: "  - name: large\n    when: { size: { over: 50000 } }\n    then: { move: Large }\n",
        lua: "a.INBOX:is_larger(50000):move_messages(a['Large'])",
    },
    Rule {
        yaml: "  - name: old read\n    when: { all: [{ older_than: 365d }, { seen: true }] }\n    then: { move: Archive/Old }\n",
        lua: "(a.INBOX:is_older(365) * a.INBOX:is_seen()):move_messages(a['Archive/Old'])",
    },
    Rule {
        yaml: "  - name: meetings\n    when: { all: [{ subject: meeting }, { seen: false }] }\n    then: { flag: \\Flagged }\n",
        lua: "(a.INBOX:contain_subject('meeting') * a.INBOX:is_unseen()):mark_flagged()",
    },
    from_rule!("social1", "notify@social.example", "Social"),
    from_rule!("social2", "updates@friends.example", "Social"),
    from_rule!("travel", "booking@travel.example", "Travel"),
    from_rule!("bank", "statements@bank.example", "Finance/Bank"),
    from_rule!("school", "office@school.example", "Family/School"),
    Rule {
        yaml: "  - name: receipts\n    when: { subject: receipt }\n    then: { move: Receipts }\n",
        lua: "a.INBOX:contain_subject('receipt'):move_messages(a['Receipts'])",
    },
    Rule {
        yaml: "  - name: urgent\n    when: { subject: urgent }\n    then: { flag: \\Flagged }\n",
        lua: "a.INBOX:contain_subject('urgent'):mark_flagged()",
    },
    Rule {
        yaml: "  - name: old unread\n    when: { all: [{ older_than: 365d }, { seen: false }] }\n    then: { move: Archive/Unread }\n",
        lua: "(a.INBOX:is_older(365) * a.INBOX:is_unseen()):move_messages(a['Archive/Unread'])",
    },
];

/// The mail: BULK messages from sender@bulk.example, the rest spread over the other rules.
fn messages() -> Vec<(Vec<u8>, bool, u64)> {
    let mut rng = fastrand::Rng::with_seed(7);
    let senders = [
        "news@nl0.example",
        "news@nl1.example",
        "news@nl2.example",
        "news@nl3.example",
        "news@nl4.example",
        "notifications@github.example",
        "jira@corp.example",
        "ci@build.example",
        "billing@shop.example",
        "payments@energy.example",
        "notify@social.example",
        "updates@friends.example",
        "booking@travel.example",
        "statements@bank.example",
        "office@school.example",
        "friend@mail.example",
        "colleague@corp.example",
        "someone@else.example",
    ];
    let subjects = [
        "[alerts] disk almost full",
        "[ops] deploy finished",
        "your invoice #1234",
        "weekly digest",
        "weekly summary for you",
        "your parcel was shipped",
        "security advisory 2026",
        "invitation: planning",
        "accepted: lunch",
        "meeting notes",
        "urgent: call me",
        "receipt for your order",
        "hello there",
        "re: question",
        "lunch?",
    ];
    let mut bulk_slots: Vec<bool> = (0..MESSAGES).map(|i| i < BULK).collect();
    rng.shuffle(&mut bulk_slots);
    bulk_slots
        .iter()
        .enumerate()
        .map(|(n, &bulk)| {
            let from = if bulk {
                "Bulk Sender <sender@bulk.example>"
            } else {
                senders[rng.usize(..senders.len())]
            };
            let to = if rng.u32(..10) == 0 {
                "team-dev@corp.example"
            } else {
                "me@home.example"
            };
            let mut h = format!(
                "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nMessage-ID: <b{n}@bench.example>\r\n\
                 Date: Mon, 2 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n",
                subjects[rng.usize(..subjects.len())]
            );
            if rng.u32(..10) == 0 {
                h.push_str("Cc: audit7@corp.example\r\n");
            }
            if rng.u32(..8) == 0 {
                h.push_str("X-Mailer: mailchimp 4.2\r\n");
            }
            h.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
            let size = if rng.u32(..50) == 0 {
                60_000
            } else {
                rng.usize(500..4000)
            };
            let body: String = (0..size)
                .map(|i| if i % 72 == 71 { '\n' } else { 'x' })
                .collect::<String>()
                .replace('\n', "\r\n");
            let bytes = format!("{h}{body}\r\n").into_bytes();
            // Ages avoid the 365-day boundary (whole-day granularity of imapfilter's BEFORE).
            let age_days = if rng.bool() {
                rng.u64(1..300)
            } else {
                rng.u64(400..900)
            };
            (bytes, rng.bool(), age_days * DAY + DAY / 2)
        })
        .collect()
}

/// Writes the mail as a delivery agent would: one file per message, named like Dovecot's LDA
/// names them (`time.MusecPpid...I<inode>_n.host,S=size`), arrival time as mtime.
///
/// Not `Dovecot::seed_with`: its file names share one long prefix, and Dovecot 2.3's maildir
/// file-name hash collides on such names, which makes every MOVE and expunge on a 10,000-message
/// maildir cost hundreds of milliseconds; real mailboxes do not look like that.
fn seed(d: &Dovecot, user: &str, mail: &[(Vec<u8>, bool, u64)]) {
    use std::os::unix::fs::MetadataExt;
    d.seed_with(user, "INBOX", &[]).expect("create the maildir");
    let root = d.mailbox_dir(user, "INBOX");
    let meta = std::fs::metadata(&root).expect("maildir");
    let (uid, gid) = (meta.uid(), meta.gid());
    let now = std::time::SystemTime::now();
    let mut rng = fastrand::Rng::with_seed(11);
    for (n, (bytes, seen, age)) in mail.iter().enumerate() {
        let when = now - Duration::from_secs(*age);
        let secs = when
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let base = format!(
            "{secs}.M{}P{}V000000000000FD01I{:08X}_{n}.mail.example.org,S={}",
            rng.u32(0..1_000_000),
            rng.u32(100..100_000),
            1_000_000 + n,
            bytes.len()
        );
        let tmp = root.join("tmp").join(&base);
        std::fs::write(&tmp, bytes).expect("write message");
        std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)).expect("chown");
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.set_modified(when))
            .expect("set mtime");
        let dest = if *seen {
            root.join("cur").join(format!("{base}:2,S"))
        } else {
            root.join("new").join(base)
        };
        std::fs::rename(&tmp, dest).expect("deliver");
    }
}

fn opts(d: &Dovecot, user: &str) -> ConnectOptions {
    ConnectOptions {
        account: user.into(),
        host: "127.0.0.1".into(),
        port: d.imap_port(),
        tls: TlsMode::None,
        allow_insecure: true,
        ca_file: None,
        username: user.into(),
        auth: AuthMechanism::Login,
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(300),
    }
}

/// SELECT once so Dovecot has indexed the new mail before the timed run.
async fn warm(d: &Dovecot, user: &str) {
    let mut s = connect(&opts(d, user), &SecretString::from("pass".to_string()))
        .await
        .expect("connect");
    s.select("INBOX").await.expect("select");
    let _ = s.logout().await;
}

/// Mailbox -> (messages, flagged): what a run left behind.
async fn outcome(d: &Dovecot, user: &str) -> BTreeMap<String, (usize, usize)> {
    let mut s = connect(&opts(d, user), &SecretString::from("pass".to_string()))
        .await
        .expect("connect");
    let mut out = BTreeMap::new();
    for entry in s.list().await.expect("list") {
        if !entry.is_selectable() {
            continue;
        }
        s.examine(&entry.name).await.expect("examine");
        let all = s.uid_search("UNDELETED").await.expect("search").len();
        let flagged = s
            .uid_search("UNDELETED FLAGGED")
            .await
            .expect("search")
            .len();
        if all > 0 {
            out.insert(entry.name, (all, flagged));
        }
    }
    let _ = s.logout().await;
    out
}

fn imapsort_config(port: u16, user: &str, rules: &[Rule], dir: &Path) -> std::path::PathBuf {
    let mut y = format!(
        "settings:\n  state_dir: {}\naccounts:\n  - name: bench\n    host: 127.0.0.1\n    port: {}\n    tls: none\n    \
         allow_insecure: true\n    username: {user}\n    password: pass\nrules:\n",
        dir.join(format!("state-{user}")).display(),
        port
    );
    for r in rules {
        y.push_str(r.yaml);
    }
    let p = dir.join(format!("{user}.yaml"));
    std::fs::write(&p, y).expect("write config");
    p
}

fn imapfilter_config(port: u16, user: &str, rules: &[Rule], dir: &Path) -> std::path::PathBuf {
    let mut l = String::from(
        "options.timeout = 300\noptions.create = true\noptions.subscribe = true\n\
         options.info = false\noptions.certificates = false\noptions.starttls = false\n",
    );
    let _ = writeln!(
        l,
        "a = IMAP {{ server = '127.0.0.1', port = {port}, username = '{user}', password = 'pass' }}"
    );
    for r in rules {
        let _ = writeln!(l, "{};", r.lua);
    }
    let p = dir.join(format!("{user}.lua"));
    std::fs::write(&p, l).expect("write lua");
    p
}

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("spawn");
    let took = start.elapsed();
    if std::env::var_os("IMAPSORT_BENCH_VERBOSE").is_some() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    if !Dovecot::available() || which("imapfilter").is_none() {
        eprintln!("SKIPPED: the sweep benchmark needs dovecot and imapfilter installed");
        return;
    }
    let runs: usize = std::env::var("IMAPSORT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let latency_runs: usize = std::env::var("IMAPSORT_BENCH_LATENCY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let users: Vec<(String, String)> = (0..(2 * runs + latency_runs) * 2)
        .map(|i| (format!("u{i}"), "pass".to_owned()))
        .collect();
    let d = Dovecot::start(DovecotOptions {
        users: users.clone(),
        ..DovecotOptions::default()
    })
    .expect("start dovecot");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The proxy runs on its own thread while the tools run as child processes.
    let proxy_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("proxy runtime");
    let slow_port = start_delay_proxy(&proxy_rt, d.imap_port(), Duration::from_millis(1));
    let scenarios: [(&str, &[Rule], u16, usize); 3] = [
        ("single sender", SINGLE, d.imap_port(), runs),
        ("30 rules", THIRTY, d.imap_port(), runs),
        ("30 rules, +1 ms each way", THIRTY, slow_port, latency_runs),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let mail = messages();
    let imapsort_bin = env!("CARGO_BIN_EXE_imapsort");
    let dovecot_version = Command::new("dovecot")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();

    let mut next_user = users.iter().map(|(u, _)| u.clone());
    let mut table = Vec::new();
    for (name, rules, port, runs) in scenarios {
        if runs == 0 {
            continue;
        }
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let mut reference: Option<BTreeMap<String, (usize, usize)>> = None;
        for run in 0..runs {
            // Alternate which tool goes first, so neither always gets a warmer machine.
            let order = if run % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for is_ours in order {
                let user = next_user.next().expect("enough users");
                seed(&d, &user, &mail);
                rt.block_on(warm(&d, &user));
                let took = if is_ours {
                    let cfg = imapsort_config(port, &user, rules, dir.path());
                    time(
                        Command::new(imapsort_bin)
                            .args(["sweep", "--format", "json", "-c"])
                            .arg(&cfg)
                            .env(
                                "IMAPSORT_LOG",
                                std::env::var("IMAPSORT_BENCH_LOG").unwrap_or("warn".into()),
                            ),
                    )
                } else {
                    let cfg = imapfilter_config(port, &user, rules, dir.path());
                    time(
                        Command::new("imapfilter")
                            .arg("-c")
                            .arg(&cfg)
                            .env("HOME", dir.path()),
                    )
                };
                let result = rt.block_on(outcome(&d, &user));
                match &reference {
                    None => reference = Some(result),
                    Some(r) => assert_eq!(
                        &result,
                        r,
                        "{name}: {} left different mailboxes",
                        if is_ours { "imapsort" } else { "imapfilter" }
                    ),
                }
                let _ = std::fs::remove_dir_all(d.maildir(&user));
                if is_ours {
                    ours.push(took)
                } else {
                    theirs.push(took)
                }
            }
        }
        let (m_ours, m_theirs) = (median(&mut ours), median(&mut theirs));
        let moved: usize = reference
            .as_ref()
            .map(|r| {
                r.iter()
                    .filter(|(k, _)| *k != "INBOX")
                    .map(|(_, v)| v.0)
                    .sum()
            })
            .unwrap_or(0);
        table.push((name, runs, m_ours, m_theirs, moved));
    }
    println!("\nSweep of a {MESSAGES}-message INBOX, medians ({dovecot_version})\n");
    println!("| scenario | runs | moved | imapsort | imapfilter 2.8 | imapfilter / imapsort |");
    println!("|---|---|---|---|---|---|");
    for (name, runs, ours, theirs, moved) in table {
        println!(
            "| {name} | {runs} | {moved} | {:.2} s | {:.2} s | {:.1}x |",
            ours.as_secs_f64(),
            theirs.as_secs_f64(),
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
}

/// A TCP proxy to `target` that holds every chunk for `delay` in each direction: added
/// latency, as on a network, without a bandwidth limit. Returns its port.
fn start_delay_proxy(rt: &tokio::runtime::Runtime, target: u16, delay: Duration) -> u16 {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind proxy");
    let port = listener.local_addr().expect("proxy port").port();
    rt.spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, delay));
                tokio::spawn(pump(sr, cw, delay));
            });
        }
    });
    port
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0
            || tx
                .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
        {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(bin))
            .find(|p| p.is_file())
    })
}
