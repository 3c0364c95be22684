//! Command lines as long as the server takes. A UID set goes on one line up to a budget:
//! 7,500 characters in general, 60,000 on a server whose greeting says it is Dovecot (which
//! takes 64 KiB lines by default). At a million messages Dovecot pays a fixed cost per command
//! line on the source mailbox, so the number of lines is the cost (docs/BENCHMARKS.md).
//! A Dovecot whose administrator lowered `imap_max_line_length` answers `BAD` to the long
//! line; the session then falls back to the standard budget and sends the same set again in
//! shorter lines, and every message still ends up where its rule sends it.

use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};

use crate::support::{self, sweep_util};

/// Messages in INBOX: UIDs 1..=4000. Odd UIDs go to two mailboxes (so moves share one
/// `\Deleted` + `UID EXPUNGE`): their set, `1,3,5,...,3999`, is about 9,400 characters.
const MESSAGES: usize = 4000;

/// How many `sweep command` log lines name `command`.
fn lines_of(log: &str, command: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("sweep command") && l.contains(&format!("command=\"{command}\"")))
        .count()
}

fn counts(d: &Dovecot) -> (u32, u32, u32) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut s = sweep_util::observer(d).await;
        let a = s.examine("A").await.unwrap().exists;
        let c = s.examine("C").await.unwrap().exists;
        let i = s.examine("INBOX").await.unwrap().exists;
        (a, c, i)
    })
}

fn run(opts: DovecotOptions) -> Option<(String, (u32, u32, u32))> {
    let d = support::dovecot::start(opts)?;
    let dir = tempfile::tempdir().unwrap();
    sweep_util::seed_a_c(&d, MESSAGES, "lines.test");
    let config = sweep_util::write_config(dir.path(), &d, "", sweep_util::RULES_A_C);
    let (_, log) = sweep_util::sweep_logged(&config);
    Some((log, counts(&d)))
}

#[test]
fn on_dovecot_a_long_set_goes_on_one_line() {
    let Some((log, counts)) = run(DovecotOptions::default()) else {
        return;
    };
    assert_eq!(counts, (1000, 1000, 2000), "(A, C, INBOX)\n{log}");
    // 2,000 scattered UIDs: two lines under the standard budget, one under Dovecot's.
    assert_eq!(lines_of(&log, "UID STORE"), 1, "{log}");
    assert_eq!(lines_of(&log, "UID EXPUNGE"), 1, "{log}");
    assert!(!log.contains("refused a long command line"), "{log}");
}

#[test]
fn a_dovecot_that_refuses_long_lines_gets_shorter_ones_and_loses_nothing() {
    let opts = DovecotOptions {
        extra_conf: "imap_max_line_length = 8k\n".into(),
        ..Default::default()
    };
    let Some((log, counts)) = run(opts) else {
        return;
    };
    assert_eq!(counts, (1000, 1000, 2000), "(A, C, INBOX)\n{log}");
    assert!(log.contains("refused a long command line"), "{log}");
    // The refused line, then the same set in two standard lines: the STORE, and the
    // EXPUNGE of the same line that follows it.
    assert_eq!(lines_of(&log, "UID STORE"), 3, "{log}");
    assert_eq!(lines_of(&log, "UID EXPUNGE"), 3, "{log}");
    assert_eq!(
        log.matches("refused a long command line").count(),
        1,
        "{log}"
    );
}
