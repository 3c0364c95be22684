//! Crash safety: `imapsort run` (the real binary) is killed with SIGKILL at random moments —
//! during the catch-up of a large backlog, during sweeps, and while new mail is pushed — at
//! least 20 times, and restarted each time. Afterwards the invariants of
//! tests/it/support/workload.rs hold: every message exactly once where the rules say, each copy
//! exactly once (a copy whose outcome a kill left unknown is settled on start by looking for it
//! among what arrived in the destination since the batch's fence, not repeated), flags as
//! the rules say. tests/it/once_identity.rs goes through every crash point one by one.
//!
//! Seeded: the seed is printed; `IMAPSORT_CRASH_SEED=N` replays the same kill schedule
//! (the moments, not the exact instruction a kill lands on).

use imapsort::vocab::{MailboxName, UidValidity};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::{self, workload};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn write_config(dir: &Path, d: &imapsort_testkit::dovecot::Dovecot) -> PathBuf {
    write_config_with(dir, d, workload::RULES)
}

fn write_config_with(dir: &Path, d: &imapsort_testkit::dovecot::Dovecot, rules: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let text = format!(
        "settings:\n  state_dir: {state}\n  sweep_interval: 2s\n  idle_refresh: 5s\naccounts:\n  - name: crash\n    host: localhost\n    port: {port}\n    tls: implicit\n    ca_file: {ca}\n    username: user\n    password: pass\n    first_start: all\n{rules}",
        state = dir.join("state").display(),
        port = d.imaps_port(),
        ca = d.ca_pem_path().display(),
        rules = rules,
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// An intent as the tests write it: (UID, Message-ID, rule, action, destination).
type Intent<'a> = (u32, &'a str, &'a str, imapsort::state::Action, &'a str);

/// A destination's fence, taken before a batch's first copy there: (mailbox, UIDVALIDITY,
/// UIDNEXT).
type Fence = (String, Option<u32>, u32);

/// The fence of `mailbox` now (STATUS), as a pass takes it before its copies.
async fn fence_of(s: &mut imapsort::imap::Session, mailbox: &str) -> Fence {
    let st = s.status(mailbox).await.unwrap();
    (mailbox.to_string(), st.uid_validity, st.uid_next.unwrap())
}

/// Writes open intents of one batch (and its fences) into the state database under `dir`, as
/// a crash right after its commands left them, in INBOX of account "crash".
fn open_batch(dir: &Path, validity: u32, intents: &[Intent<'_>], fences: &[Fence]) {
    use imapsort::state::{Batch, JournalId, NewFence, NewJournalEntry, StateDb};
    let mut db = StateDb::open(&dir.join("state")).unwrap();
    let inbox = MailboxName::from("INBOX");
    let validity = UidValidity::new(validity).unwrap();
    let mut ids: Vec<JournalId> = Vec::new();
    for &(uid, message_id, rule, action, destination) in intents {
        let id = db
            .journal_intent(&NewJournalEntry {
                account: "crash",
                mailbox: &inbox,
                uid_validity: validity,
                uid,
                message_id: Some(message_id),
                rules: &[rule.to_string()],
                action,
                destination: Some(destination),
            })
            .unwrap();
        ids.push(id);
    }
    let rows: Vec<NewFence<'_>> = fences
        .iter()
        .map(|(m, v, next)| NewFence {
            destination: m,
            dest_uid_validity: *v,
            dest_uid_next: *next,
        })
        .collect();
    let batch = Batch {
        account: "crash",
        mailbox: &inbox,
        uid_validity: validity,
        intents: (*ids.iter().min().unwrap(), *ids.iter().max().unwrap()),
    };
    db.record_fences(&batch, &rows).unwrap();
}

/// Start `imapsort run`, its log appended to `log`.
fn start(config: &Path, log: &Path) -> support::Daemon {
    support::spawn_run(config, log)
}

fn kill9(child: &mut Child) {
    // std's kill is SIGKILL: no handler runs, nothing is flushed, the database is left as
    // the last committed transaction made it.
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

#[test]
fn twenty_kills_during_sweeps_and_push_lose_and_repeat_nothing() {
    let total = env_or("IMAPSORT_CRASH_MESSAGES", 2000);
    let kills = env_or("IMAPSORT_CRASH_KILLS", 24);
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let seed = workload::seed("IMAPSORT_CRASH_SEED");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &d);
    let log = dir.path().join("imapsort.log");
    let backlog = total * 3 / 4;
    workload::deliver(&d, 0..backlog);

    // An observer on its own runtime: after each kill, how much work was still pending.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut observer = rt.block_on(workload::observer(&d));
    let stays = |n: usize| matches!(n % 10, 3 | 6 | 7 | 8);
    let mut interrupted = 0;

    let started = Instant::now();
    let mut delivered = backlog;
    for k in 0..kills {
        let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) as usize;
        let mut child = start(&config, &log);
        // After the first third (the backlog's catch-up), push new mail while it runs.
        if k >= kills / 3 && delivered < total {
            // A random moment of the run (the scenario), then new mail arrives.
            std::thread::sleep(Duration::from_millis(100 + rng.u64(0..500)));
            let n = (total - backlog).div_ceil(kills - kills / 3);
            let to = (delivered + n).min(total);
            workload::deliver(&d, delivered..to);
            delivered = to;
        }
        // Kill in the middle of work: once it has started sorting (or after 4 s), after a
        // random further moment.
        let waiting = Instant::now();
        while waiting.elapsed() < Duration::from_secs(4) {
            let text = std::fs::read(&log).unwrap_or_default();
            if String::from_utf8_lossy(&text[offset.min(text.len())..]).contains("sorted") {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // The sleep is the scenario: the kill lands at a random moment of the work.
        std::thread::sleep(Duration::from_millis(rng.u64(0..250)));
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "imapsort run exited by itself ({status}) before kill {k}; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        kill9(&mut child);
        // Messages still in INBOX that the rules will move out: work the kill interrupted
        // (or that had not started).
        let inbox = rt
            .block_on(observer.status("INBOX"))
            .expect("status")
            .messages
            .unwrap_or(0) as usize;
        let final_inbox = (0..delivered).filter(|n| stays(*n)).count();
        if inbox > final_inbox {
            interrupted += 1;
        }
    }
    if delivered < total {
        workload::deliver(&d, delivered..total);
    }
    eprintln!(
        "{kills} kills in {:?}, {interrupted} with work pending; {total} messages",
        started.elapsed()
    );
    drop(observer);
    drop(rt);
    assert!(
        // Usually about 15 of 24; the bound leaves room for a slow or a fast machine.
        interrupted >= kills / 4,
        "only {interrupted} of {kills} kills landed while work was pending"
    );

    // A last, undisturbed run settles everything.
    let mut child = start(&config, &log);
    let mut last = Vec::new();
    support::run_with_timeout(Duration::from_secs(240), async {
        let mut observer = workload::observer(&d).await;
        let quiet = Instant::now();
        while quiet.elapsed() < Duration::from_secs(180) {
            let census = workload::census(&mut observer).await;
            last = workload::violations(&census, total);
            if last.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        eprintln!("settled after {:?}", quiet.elapsed());
    });
    // SIGTERM: a clean stop, exit 0.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            kill9(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        last.is_empty(),
        "{} violations after {kills} kills (seed {seed}), first ones:\n{}\n--- log tail ---\n{}",
        last.len(),
        last.iter().take(30).cloned().collect::<Vec<_>>().join("\n"),
        text.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    assert!(!text.contains("panicked"), "a panic in the log");
    let settled = text
        .lines()
        .filter(|l| l.contains("settled actions an interrupted run left open"))
        .count();
    eprintln!("starts that settled interrupted actions: {settled}");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "imapsort run did not exit 0 within 15 s of SIGTERM"
    );
}

#[test]
fn a_copy_whose_outcome_a_crash_left_unknown_is_looked_up_not_repeated() {
    // The moment after `UID COPY` succeeded and before its outcome was written, reproduced
    // exactly: the intents and the batch's fence are in the journal, one copy was made (with
    // the flags the plan set before it), the other was not. A start must settle both: the
    // first by finding the copy above the fence (no second copy), the second by copying once.
    use imapsort::state::Action;
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &d);
    let log = dir.path().join("imapsort.log");
    // s3 and s13: class 3 (invoice: \Flagged, one copy in Accounting).
    d.seed_with(
        "user",
        "INBOX",
        &[workload::message(3), workload::message(13)],
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (validity, fence) = rt.block_on(async {
        let mut s = workload::observer(&d).await;
        let info = s.select("INBOX").await.unwrap();
        s.ensure_mailbox("Accounting").await.unwrap();
        let fence = fence_of(&mut s, "Accounting").await;
        s.uid_store("1", "+FLAGS.SILENT (\\Flagged)").await.unwrap();
        s.uid_copy("1", "Accounting").await.unwrap();
        (info.uid_validity.unwrap(), fence)
    });
    let intents = [
        (1, "<s3@soak.test>", "invoices", Action::Copy, "Accounting"),
        (2, "<s13@soak.test>", "invoices", Action::Copy, "Accounting"),
    ];
    open_batch(dir.path(), validity, &intents, &[fence]);

    let mut child = start(&config, &log);
    let mut last = Vec::new();
    rt.block_on(async {
        let mut observer = workload::observer(&d).await;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let census = workload::census(&mut observer).await;
            last = [3, 13]
                .iter()
                .flat_map(|n| {
                    let (home, must, _, copy) = workload::expected(*n);
                    let found = census.get(n).cloned().unwrap_or_default();
                    let copies = found
                        .iter()
                        .filter(|(m, _)| Some(m.as_str()) == copy)
                        .count();
                    let original = found.iter().find(|(m, _)| *m == home);
                    let flagged = original
                        .is_some_and(|(_, f)| must.iter().all(|x| f.iter().any(|y| y == x)));
                    (copies != 1 || !flagged).then(|| format!("s{n}: {found:?}"))
                })
                .collect();
            if last.is_empty() {
                // Until both intents are settled a second copy could still come; after
                // that, nothing copies these messages again.
                let state_dir = dir.path().join("state");
                support::eventually("the intents settled", Duration::from_secs(30), || {
                    support::state::open_intents(&state_dir, "crash") == 0
                })
                .await;
                let census = workload::census(&mut observer).await;
                let copies = census
                    .values()
                    .flatten()
                    .filter(|(m, _)| m == "Accounting")
                    .count();
                if copies != 2 {
                    last.push(format!("{copies} messages in Accounting, expected 2"));
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    kill9(&mut child);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(last.is_empty(), "{last:?}\n--- log ---\n{text}");
    assert!(
        text.contains("settled actions an interrupted run left open"),
        "the start did not reconcile:\n{text}"
    );
}

#[test]
fn a_copy_left_unknown_by_a_crashed_sweep_command_is_not_repeated_by_the_next_sweep() {
    // As above, for the one-shot `imapsort sweep`: a copy ran, its outcome was never
    // written. The next sweep must not copy again.
    use imapsort::state::Action;
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &d);
    d.seed_with("user", "INBOX", &[workload::message(3)])
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (validity, fence) = rt.block_on(async {
        let mut s = workload::observer(&d).await;
        let info = s.select("INBOX").await.unwrap();
        s.ensure_mailbox("Accounting").await.unwrap();
        let fence = fence_of(&mut s, "Accounting").await;
        s.uid_store("1", "+FLAGS.SILENT (\\Flagged)").await.unwrap();
        s.uid_copy("1", "Accounting").await.unwrap();
        (info.uid_validity.unwrap(), fence)
    });
    let intent = (1, "<s3@soak.test>", "invoices", Action::Copy, "Accounting");
    open_batch(dir.path(), validity, &[intent], &[fence]);
    let out = Command::new(env!("CARGO_BIN_EXE_imapsort"))
        .args(["sweep", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let copies = rt.block_on(async {
        let mut s = workload::observer(&d).await;
        s.examine("Accounting").await.unwrap().exists
    });
    assert_eq!(copies, 1, "the sweep copied again");
}

/// One rule that copies and moves: the case where a done copy cannot be recorded by marking
/// the rule applied (its move is still to run).
const COPY_AND_MOVE: &str = r#"rules:
  - name: file invoices
    when: { subject: { contains: invoice } }
    then: [{ copy: Accounting }, { move: Filed }]
"#;

/// The moment between a rule's `UID COPY` and its `UID MOVE`, reproduced exactly: the copy
/// was made, both intents are open, the message is still in INBOX. Returns the config.
fn interrupted_between_copy_and_move(
    dir: &Path,
    d: &imapsort_testkit::dovecot::Dovecot,
    rt: &tokio::runtime::Runtime,
) -> PathBuf {
    use imapsort::state::Action;
    let config = write_config_with(dir, d, COPY_AND_MOVE);
    d.seed_with("user", "INBOX", &[workload::message(3)])
        .unwrap();
    let (validity, fence) = rt.block_on(async {
        let mut s = workload::observer(d).await;
        let info = s.select("INBOX").await.unwrap();
        s.ensure_mailbox("Accounting").await.unwrap();
        s.ensure_mailbox("Filed").await.unwrap();
        let fence = fence_of(&mut s, "Accounting").await;
        s.uid_copy("1", "Accounting").await.unwrap();
        (info.uid_validity.unwrap(), fence)
    });
    // The copy is fenced; the move to one mailbox would be one atomic UID MOVE (no fence).
    let intents = [
        (
            1,
            "<s3@soak.test>",
            "file invoices",
            Action::Copy,
            "Accounting",
        ),
        (1, "<s3@soak.test>", "file invoices", Action::Move, "Filed"),
    ];
    open_batch(dir, validity, &intents, &[fence]);
    config
}

/// (messages in Accounting, in Filed, in INBOX).
fn counts(d: &imapsort_testkit::dovecot::Dovecot, rt: &tokio::runtime::Runtime) -> (u32, u32, u32) {
    rt.block_on(async {
        let mut s = workload::observer(d).await;
        let a = s.examine("Accounting").await.unwrap().exists;
        let f = s.examine("Filed").await.unwrap().exists;
        let i = s.examine("INBOX").await.unwrap().exists;
        (a, f, i)
    })
}

#[test]
fn a_rule_that_copies_and_moves_interrupted_between_the_two_does_not_copy_again_in_the_daemon() {
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = interrupted_between_copy_and_move(dir.path(), &d, &rt);
    let log = dir.path().join("imapsort.log");
    let mut child = start(&config, &log);
    // Filed, and both intents settled: from then on nothing copies the message again.
    let state_dir = dir.path().join("state");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60)
        && (counts(&d, &rt).1 == 0 || support::state::open_intents(&state_dir, "crash") > 0)
    {
        std::thread::sleep(Duration::from_millis(300));
    }
    let last = counts(&d, &rt);
    kill9(&mut child);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        last,
        (1, 1, 0),
        "(Accounting, Filed, INBOX)\n--- log ---\n{text}"
    );
}

#[test]
fn a_rule_that_copies_and_moves_interrupted_between_the_two_does_not_copy_again_in_a_sweep() {
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = interrupted_between_copy_and_move(dir.path(), &d, &rt);
    let out = Command::new(env!("CARGO_BIN_EXE_imapsort"))
        .args(["sweep", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(counts(&d, &rt), (1, 1, 0), "(Accounting, Filed, INBOX)");
}

#[test]
fn the_daemon_ignores_applied_records_of_another_message_under_the_same_uidvalidity() {
    // A restored backup, or a test server started again, can give INBOX the same
    // UIDVALIDITY: the state database's record for UID 1 is about another message (another
    // Message-ID), and must not stop the rule from acting on this one.
    use imapsort::state::{Applied, StateDb};
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = write_config_with(dir.path(), &d, COPY_AND_MOVE);
    d.seed_with("user", "INBOX", &[workload::message(3)])
        .unwrap();
    let validity = rt.block_on(async {
        let mut s = workload::observer(&d).await;
        let info = s.select("INBOX").await.unwrap();
        s.ensure_mailbox("Accounting").await.unwrap();
        s.ensure_mailbox("Filed").await.unwrap();
        UidValidity::new(info.uid_validity.unwrap()).unwrap()
    });
    let mut db = StateDb::open(&dir.path().join("state")).unwrap();
    db.reset_mailbox("crash", &MailboxName::from("INBOX"), validity)
        .unwrap();
    let tx = db.batch().unwrap();
    tx.record_applied(
        "crash",
        &MailboxName::from("INBOX"),
        validity,
        &[Applied {
            uid: 1,
            rule: "file invoices",
            message_id: Some("<another@server.test>"),
        }],
    )
    .unwrap();
    tx.commit().unwrap();
    drop(db);
    let log = dir.path().join("imapsort.log");
    let mut child = start(&config, &log);
    let started = Instant::now();
    let mut last = counts(&d, &rt);
    while started.elapsed() < Duration::from_secs(30) && last.1 == 0 {
        std::thread::sleep(Duration::from_millis(300));
        last = counts(&d, &rt);
    }
    kill9(&mut child);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        last,
        (1, 1, 0),
        "(Accounting, Filed, INBOX)\n--- log ---\n{text}"
    );
}

/// One rule that only moves: moves to several mailboxes share one expunge, so a crash can
/// fall between a move's `UID COPY` and the removal of its original.
/// A private Dovecot, a scratch directory and a runtime; `None` where Dovecot is missing
/// (never in CI, which installs it).
fn setup() -> Option<(
    imapsort_testkit::dovecot::Dovecot,
    tempfile::TempDir,
    tokio::runtime::Runtime,
)> {
    let d = support::dovecot::start_default()?;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    Some((d, dir, rt))
}

const MOVE_ONLY: &str = r#"rules:
  - name: file invoices
    when: { subject: { contains: invoice } }
    then: { move: Filed }
"#;

/// The moment after a move's `UID COPY` and before its original was removed, reproduced
/// exactly: the copy is in Filed (with `extra` beside it), the original in INBOX, the move's
/// intent open. Returns the config.
fn interrupted_move(
    dir: &Path,
    d: &imapsort_testkit::dovecot::Dovecot,
    rt: &tokio::runtime::Runtime,
    copied: bool,
    extra: &[imapsort_testkit::dovecot::SeedMessage],
) -> PathBuf {
    use imapsort::state::Action;
    let config = write_config_with(dir, d, MOVE_ONLY);
    d.seed_with("user", "INBOX", &[workload::message(3)])
        .unwrap();
    if !extra.is_empty() {
        d.seed_with("user", "Filed", extra).unwrap();
    }
    let (validity, fence) = rt.block_on(async {
        let mut s = workload::observer(d).await;
        let info = s.select("INBOX").await.unwrap();
        s.ensure_mailbox("Filed").await.unwrap();
        let fence = fence_of(&mut s, "Filed").await;
        if copied {
            s.uid_copy("1", "Filed").await.unwrap();
        }
        (info.uid_validity.unwrap(), fence)
    });
    // A move whose removal is shared with other moves goes as UID COPY: fenced.
    let intent = (1, "<s3@soak.test>", "file invoices", Action::Move, "Filed");
    open_batch(dir, validity, &[intent], &[fence]);
    config
}

/// (messages in Filed, in INBOX).
fn filed_and_inbox(
    d: &imapsort_testkit::dovecot::Dovecot,
    rt: &tokio::runtime::Runtime,
) -> (u32, u32) {
    rt.block_on(async {
        let mut s = workload::observer(d).await;
        let f = s.examine("Filed").await.unwrap().exists;
        let i = s.examine("INBOX").await.unwrap().exists;
        (f, i)
    })
}

fn sweep(config: &Path) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_imapsort"))
        .args(["sweep", "-c"])
        .arg(config)
        .env("IMAPSORT_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    out
}

#[test]
fn a_move_interrupted_after_its_copy_is_finished_not_copied_again() {
    let Some((d, dir, rt)) = setup() else {
        return;
    };
    let config = interrupted_move(dir.path(), &d, &rt, true, &[]);
    let out = sweep(&config);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(filed_and_inbox(&d, &rt), (1, 0), "(Filed, INBOX)\n{log}");
    assert!(log.contains("finishing moves"), "{log}");
}

#[test]
fn a_move_interrupted_before_its_copy_is_carried_out_once() {
    let Some((d, dir, rt)) = setup() else {
        return;
    };
    let config = interrupted_move(dir.path(), &d, &rt, false, &[]);
    sweep(&config);
    assert_eq!(filed_and_inbox(&d, &rt), (1, 0), "(Filed, INBOX)");
}

#[test]
fn another_message_with_the_same_message_id_is_not_taken_for_the_copy() {
    // Filed already holds a different message under the same Message-ID (a resent or edited
    // copy), from before the batch's fence: it is not taken for the copy, and the original is
    // moved rather than expunged on the strength of someone else's message.
    let Some((d, dir, rt)) = setup() else {
        return;
    };
    let mut impostor = workload::message(3);
    impostor
        .bytes
        .extend_from_slice(b"\r\nA longer body: this is another message.\r\n");
    let config = interrupted_move(dir.path(), &d, &rt, false, &[impostor]);
    sweep(&config);
    assert_eq!(filed_and_inbox(&d, &rt), (2, 0), "(Filed, INBOX)");
}

#[test]
fn a_sweep_over_many_fetch_chunks_closes_every_intent_it_opens() {
    // Intents are journaled chunk by chunk (500 messages) and carried out at the end of the
    // pass: every one must end `done`, none left for reconcile.
    let Some((d, dir, rt)) = setup() else {
        return;
    };
    let config = write_config_with(dir.path(), &d, COPY_AND_MOVE);
    let messages: Vec<_> = (0..1_200).map(|n| workload::message(n * 10 + 3)).collect();
    d.seed_with("user", "INBOX", &messages).unwrap();
    sweep(&config);
    let db = imapsort::state::StateDb::open(&dir.path().join("state")).unwrap();
    let open = db.unfinished_intents("crash").unwrap();
    assert!(open.is_empty(), "{} intents left open", open.len());
    assert_eq!(
        counts(&d, &rt),
        (1_200, 1_200, 0),
        "(Accounting, Filed, INBOX)"
    );
}
