//! Scenario 10, opt-in (`IMAPSORT_BENCH_MILLION=1`, or a size: `IMAPSORT_BENCH_MILLION=N`): one
//! sweep of a 1,000,000-message INBOX with the 30-rule set, and one with an age-only archive
//! rule, on the suite's Dovecot (tmpfs). imapsort only: imapfilter would take an hour, and the
//! floor's capture and replay would double the time again.
//!
//! The mail is generated and delivered one message at a time (about 5.7 GB on /dev/shm for a
//! million), never held in memory; each sweep runs on a copy whose message files are hard links
//! to the template's (`mailstore::link_user`), so the working copy costs only the index. What is measured: generation and
//! delivery, Dovecot's first SELECT (its index build), imapsort's wall time and peak RSS, its
//! per-phase timings (`imapsort=debug`: search, fetch and evaluate, carry out), what the server
//! holds afterwards, and for the age rule how many messages were fetched against moved.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use super::mailstore::{self, Deliver, link_user, outcome, remove_user, run_measured};
use super::ruleset::{self, Rule};
use super::{Bench, corpus, secs};

/// The template user of this scenario (in the suite's passwd list).
pub const TEMPLATE: &str = "tmillion";

/// An archive rule on age alone: the "auto-archive old mail" use.
fn age_only() -> Vec<Rule> {
    vec![Rule {
        yaml:
            "  - name: old mail\n    when: { older_than: 365d }\n    then: { archive: Archive }\n"
                .into(),
        lua: String::new(),
    }]
}

/// One imapsort sweep of a fresh (hard-linked) copy of the template: wall time, peak RSS (KiB), the debug
/// log's phase lines, and what the server held afterwards.
fn sweep(bench: &Bench, rules: &[Rule], tag: &str) -> (Duration, u64, Vec<String>, usize) {
    let t = Instant::now();
    link_user(&bench.d, TEMPLATE, "isort");
    eprintln!("  million: linked the mailbox in {}", secs(t.elapsed()));
    let log = bench.dir.path().join(format!("million-{tag}.log"));
    let mut cmd = bench.imapsort_cmd("isort", bench.d.imap_port(), rules, tag);
    cmd.env("IMAPSORT_LOG", "imapsort=debug");
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c")
        .arg("exec \"$@\" 2>\"$LOG\"")
        .arg("sh")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .env("LOG", &log);
    // With IMAPSORT_BENCH_LOG set, the run's log goes to the shared log (its redirection is
    // the inner one): its phase lines are what that log gained.
    let shared = super::shared_log();
    let offset = shared
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len() as usize);
    let (took, peak) = run_measured(&mut sh);
    let text = match shared {
        Some(p) => std::fs::read(p)
            .ok()
            .and_then(|b| {
                b.get(offset..)
                    .map(|t| String::from_utf8_lossy(t).into_owned())
            })
            .unwrap_or_default(),
        None => std::fs::read_to_string(&log).unwrap_or_default(),
    };
    let phases = text
        .lines()
        .filter(|l| l.contains("sweep ") || l.contains("elapsed_ms"))
        .map(str::to_owned)
        .collect();
    let moved = mailstore::moved(&outcome(&bench.d, "isort"));
    remove_user(&bench.d, "isort");
    (took, peak, phases, moved)
}

/// Runs the scenario; `per_10k` is the 10k run's median per 10,000 messages (scenario 2), for
/// the linearity check.
pub fn run(bench: &Bench, size: usize, per_10k: Option<Duration>) -> String {
    let mut report = String::new();
    let started = Instant::now();
    let t = Instant::now();
    let mut deliver = Deliver::new(&bench.d, TEMPLATE);
    let mut bytes = 0usize;
    corpus::generate_each(size, 44, |n, m| {
        bytes += m.bytes.len();
        deliver.one(n, &m);
        if n % 100_000 == 99_999 {
            eprintln!("  million: {} delivered, {}", n + 1, secs(t.elapsed()));
        }
    });
    let delivered = t.elapsed();
    let t = Instant::now();
    deliver.index();
    let indexed = t.elapsed();
    eprintln!(
        "  million: generated and delivered {size} messages ({} MB) in {}, first SELECT {}",
        bytes >> 20,
        secs(delivered),
        secs(indexed)
    );
    let (thirty, thirty_peak, thirty_phases, thirty_moved) =
        sweep(bench, &ruleset::thirty(), "million-30");
    eprintln!(
        "  million: 30 rules {}, peak {} MB",
        secs(thirty),
        thirty_peak / 1024
    );
    let (age, age_peak, age_phases, age_moved) = sweep(bench, &age_only(), "million-age");
    let candidates: usize = age_phases
        .iter()
        .filter(|l| l.contains("sweep search"))
        .filter_map(|l| field(l, "candidates"))
        .sum();
    remove_user(&bench.d, TEMPLATE);
    let per = thirty.as_secs_f64() * 10_000.0 / size as f64;
    let _ = writeln!(
        report,
        "### 9. One INBOX of {size} messages ({} MB; generated and delivered in {}, Dovecot's first SELECT {})\n\n\
         | rules | moved | imapsort | per 10k messages | per 10k at 10k (scenario 2) | peak RSS | fetched (search candidates) |\n|---|---|---|---|---|---|---|\n\
         | 30 rules | {thirty_moved} | {} | {per:.2} s | {} | {:.1} MB | |\n\
         | `older_than: 365d` -> archive | {age_moved} | {} | {:.2} s | | {:.1} MB | {candidates} |\n\n\
         Targets: per-10k cost within 1.3x of the 10k run's ({}); peak RSS < 100 MB; the age rule fetches nothing it does not move (candidates = moved).\n",
        bytes >> 20,
        secs(delivered),
        secs(indexed),
        secs(thirty),
        per_10k.map_or("-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64())),
        thirty_peak as f64 / 1024.0,
        secs(age),
        age.as_secs_f64() * 10_000.0 / size as f64,
        age_peak as f64 / 1024.0,
        per_10k.map_or("-".to_owned(), |d| format!("{:.2}x", per / d.as_secs_f64())),
    );
    let _ = writeln!(report, "imapsort's phases (30 rules):\n");
    for l in thirty_phases.iter().chain(&age_phases) {
        let _ = writeln!(report, "    {}", strip_ansi(l));
    }
    let _ = writeln!(report, "\nScenario 10 took {}.\n", secs(started.elapsed()));
    let _ = std::fs::write(Path::new("target/bench-million.md"), &report);
    report
}

/// `name=123` in a log line.
fn field(line: &str, name: &str) -> Option<usize> {
    let clean = strip_ansi(line);
    let at = clean.find(&format!("{name}="))?;
    clean[at + name.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\u{1b}') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}
