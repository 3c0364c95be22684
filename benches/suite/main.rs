//! `cargo bench --bench suite` (or `scripts/bench`): the whole performance suite in one run.
//!
//! Starts a private Dovecot on tmpfs, generates realistic mail (benches/suite/corpus.rs) and
//! runs, on the same data in the same run:
//!
//! 1. sweep, one sender rule, 10k INBOX (30 % moved): imapsort vs imapfilter 2.8;
//! 2. sweep, a 30-rule set, 10k and 100k: imapsort vs imapfilter vs the server floor (the
//!    commands imapsort sent, replayed pipelined by a minimal raw-TCP client);
//! 3. push latency of `imapsort run` and of imapfilter's `enter_idle()` loop, next to the
//!    floor of a bare IDLE client;
//! 4. RSS of `imapsort run` with 1 and with N accounts;
//! 5. rules engine evaluations/s on the 30-rule set;
//! 6. scale: sweep time and peak RSS from 10k to 100k messages;
//! 7. 1,000 accounts on one Dovecot (own instance): time to all connected, RSS, push latency
//!    over the floor, idle CPU, time to all back after a Dovecot restart;
//! 8. 10,000 IDLE connections against a minimal IDLE server: RSS per connection, idle CPU,
//!    latency from an EXISTS to the pass's first command;
//! 9. history: `imapsort log --limit 100000` over 1,000,000 entries, `imapsort undo` of
//!    10,000 moves.
//! 10. opt-in (`IMAPSORT_BENCH_MILLION`): one sweep of a 1,000,000-message INBOX with the
//!     30-rule set and with an age-only archive rule (million.rs).
//!
//! Prints Markdown tables (medians, ratios, targets). Knobs (environment):
//! `IMAPSORT_BENCH_RUNS` (10k runs per tool, default 3), `IMAPSORT_BENCH_LARGE_RUNS` (100k,
//! default 1), `IMAPSORT_BENCH_LARGE` (the large size, default 100000; 0 skips it),
//! `IMAPSORT_BENCH_PUSH` (push samples, default 100), `IMAPSORT_BENCH_ACCOUNTS` (default 200),
//! `IMAPSORT_BENCH_SCALE_ACCOUNTS` (scenario 7, default 1000), `IMAPSORT_BENCH_IDLE_CONNECTIONS`
//! (scenario 8, default 10000), `IMAPSORT_BENCH_IDLE_SECS` (idle CPU window, default 30),
//! `IMAPSORT_BENCH_ONLY` (comma list of engine, sweep, push, memory, scale, idle, history,
//! million),
//! `IMAPSORT_BENCH_BASE` (another imapsort binary, run in the same rotation: before/after),
//! `IMAPSORT_BENCH_MILLION` (scenario 10, opt-in: `1` for a 1,000,000-message INBOX, see
//! million.rs), `IMAPSORT_BENCH_PERF` / `IMAPSORT_BENCH_HEAPTRACK` (a directory: timed imapsort
//! runs under `perf record` / `heaptrack`). Needs `dovecot`, and `imapfilter` for sweep and push; never part of
//! `cargo test`.

mod corpus;
mod daemon;
mod engine;
mod floor;
mod history;
mod idle;
mod mailstore;
mod memory;
mod million;
mod push;
mod raw;
mod ruleset;
mod scale;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};

use mailstore::{clone_user, outcome, remove_user, run_measured};
use ruleset::Rule;

const SMALL: usize = 10_000;

/// Where timed imapsort runs append their log with `IMAPSORT_BENCH_LOG` set.
const SHARED_LOG: &str = "target/bench-imapsort.log";

/// [`SHARED_LOG`] when the timed runs write to it: `IMAPSORT_BENCH_LOG` is set, and neither
/// `perf` nor `heaptrack` wraps the command instead.
fn shared_log() -> Option<&'static Path> {
    let wrapped = std::env::var_os("IMAPSORT_BENCH_PERF").is_some()
        || std::env::var_os("IMAPSORT_BENCH_HEAPTRACK").is_some();
    (std::env::var_os("IMAPSORT_BENCH_LOG").is_some() && !wrapped).then(|| Path::new(SHARED_LOG))
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s.get(s.len() / 2).copied().unwrap_or_default()
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.2} s")
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.trim().to_owned()
        })
        .unwrap_or_default()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(bin).is_file()))
}

/// One timed sweep scenario's numbers.
struct SweepRow {
    name: String,
    messages: usize,
    moved: usize,
    imapsort: Vec<Duration>,
    imapsort_peak_kb: Vec<u64>,
    imapfilter: Vec<Duration>,
    /// `IMAPSORT_BENCH_BASE`'s binary, for before/after records (empty without it).
    base: Vec<Duration>,
    floor: Vec<Duration>,
    batched: Vec<Duration>,
    commands: usize,
    /// The server's time by command, sent one at a time.
    profile: String,
    mismatches: Vec<String>,
}

#[derive(Clone, Copy, Debug)]
enum Tool {
    Imapsort,
    Imapfilter,
    /// Another imapsort binary (`IMAPSORT_BENCH_BASE=PATH`), run in the same rotation: a
    /// before/after comparison under the same load.
    Base,
    Floor,
    /// The floor's script with moves sharing one expunge (see floor::batched_expunge).
    Batched,
}

struct Bench {
    d: Dovecot,
    dir: tempfile::TempDir,
    bin: &'static str,
    /// The before binary of an A/B run (`IMAPSORT_BENCH_BASE`).
    base: Option<std::path::PathBuf>,
}

impl Bench {
    fn imapsort_cmd(&self, user: &str, port: u16, rules: &[Rule], tag: &str) -> Command {
        self.imapsort_cmd_with(Path::new(self.bin), user, port, rules, tag)
    }

    fn imapsort_cmd_with(
        &self,
        bin: &Path,
        user: &str,
        port: u16,
        rules: &[Rule],
        tag: &str,
    ) -> Command {
        let state = self.dir.path().join(format!("state-{tag}"));
        let _ = std::fs::remove_dir_all(&state);
        let cfg = self.dir.path().join(format!("{tag}.yaml"));
        std::fs::write(&cfg, ruleset::imapsort_yaml(port, user, &state, rules)).expect("config");
        // IMAPSORT_BENCH_PERF=DIR: every timed imapsort sweep runs under `perf record`
        // (call graphs, DIR/<tag>.perf), for finding where imapsort's own time goes.
        // IMAPSORT_BENCH_HEAPTRACK=DIR: every timed sweep runs under `heaptrack`
        // (DIR/<tag>.<pid>.zst; `heaptrack_print` reads it), for what holds the peak memory.
        let heaptrack = std::env::var_os("IMAPSORT_BENCH_HEAPTRACK").filter(|_| tag != "capture");
        let perf = std::env::var_os("IMAPSORT_BENCH_PERF");
        let mut c = match (heaptrack, perf) {
            (Some(dir), _) => {
                let mut c = Command::new("heaptrack");
                c.arg("-o").arg(Path::new(&dir).join(tag)).arg(bin);
                c
            }
            (None, Some(dir)) if tag != "capture" => {
                let mut c = Command::new("perf");
                c.args(["record", "-q", "-F", "2000", "-g", "-o"])
                    .arg(Path::new(&dir).join(format!("{tag}.perf")))
                    .arg("--")
                    .arg(bin);
                c
            }
            // IMAPSORT_BENCH_LOG=FILTER: timed runs log at that level (e.g.
            // `imapsort=debug` for the per-phase timings) to target/bench-imapsort.log.
            _ if tag != "capture" && shared_log().is_some() => {
                let mut c = Command::new("sh");
                c.args(["-c", "exec \"$0\" \"$@\" 2>>\"$IMAPSORT_BENCH_SHARED_LOG\""])
                    .arg(bin)
                    .env("IMAPSORT_BENCH_SHARED_LOG", SHARED_LOG);
                c
            }
            _ => Command::new(bin),
        };
        let log = std::env::var("IMAPSORT_BENCH_LOG").unwrap_or_else(|_| "warn".into());
        c.args(["sweep", "--format", "json", "-c"])
            .arg(&cfg)
            .env("IMAPSORT_LOG", log);
        c
    }

    fn imapfilter_cmd(&self, user: &str, rules: &[Rule], tag: &str) -> Command {
        let cfg = self.dir.path().join(format!("{tag}.lua"));
        std::fs::write(
            &cfg,
            ruleset::imapfilter_lua(self.d.imap_port(), user, rules),
        )
        .expect("lua");
        let mut c = Command::new("imapfilter");
        c.arg("-c").arg(&cfg).env("HOME", self.dir.path());
        c
    }

    /// Scenario 1 or 2 at one size: capture, then `runs` rounds of the three tools.
    fn sweep(
        &self,
        name: &str,
        template: &str,
        size: usize,
        rules: &[Rule],
        runs: usize,
    ) -> SweepRow {
        let port = self.d.imap_port();
        // The floor's script: an untimed imapsort sweep through the recording proxy.
        clone_user(&self.d, template, "floor");
        let script = floor::capture(port, |proxy| {
            run_measured(&mut self.imapsort_cmd("floor", proxy, rules, "capture"));
        });
        let reference = outcome(&self.d, "floor");
        let commands = floor::summary(&script).len();
        let keep = Path::new("target/bench-scripts");
        if std::fs::create_dir_all(keep).is_ok() {
            let file = format!("{}-{size}.imap", name.replace(['.', ' '], "_"));
            let _ = std::fs::write(keep.join(file), &script);
        }
        eprintln!("  {name} {size}: imapsort sent {commands} command lines:");
        for line in floor::summary(&script).iter().take(14) {
            eprintln!("    {line}");
        }
        if std::env::var_os("IMAPSORT_BENCH_CAPTURE_IMAPFILTER").is_some() {
            // For analysis: what imapfilter sends for the same rules, and what it costs.
            clone_user(&self.d, template, "ifilter");
            let theirs = floor::capture(port, |proxy| {
                let cfg = self.dir.path().join("capture.lua");
                let lua = ruleset::imapfilter_lua(proxy, "ifilter", rules);
                std::fs::write(&cfg, lua).expect("lua");
                let mut c = Command::new("imapfilter");
                c.arg("-c").arg(&cfg).env("HOME", self.dir.path());
                run_measured(&mut c);
            });
            let file = format!("{}-{size}-imapfilter.imap", name.replace(['.', ' '], "_"));
            let _ = std::fs::write(keep.join(file), &theirs);
            clone_user(&self.d, template, "ifilter");
            let profile = floor::profile(port, &theirs)
                .iter()
                .take(6)
                .map(|(verb, n, t)| format!("{verb} x{n}: {}", secs(*t)))
                .collect::<Vec<_>>()
                .join(", ");
            eprintln!("  {name} {size}: imapfilter's commands one at a time: {profile}");
            remove_user(&self.d, "ifilter");
        }
        if std::env::var_os("IMAPSORT_BENCH_VARIANTS").is_some() {
            // What other commands would cost the server: each variant pipelined (median of
            // IMAPSORT_BENCH_VARIANT_RUNS, default 5) and one command at a time.
            // `IMAPSORT_BENCH_VARIANTS=1`: all; else a comma list of words, each picking
            // the variants whose name contains it ("MOVE,cache").
            let pick = std::env::var("IMAPSORT_BENCH_VARIANTS").unwrap_or_default();
            let picked = |what: &str| {
                pick == "1" || pick.split(',').any(|w| !w.is_empty() && what.contains(w))
            };
            for (what, variant) in floor::variants(&script) {
                if !picked(what) && what != "as sent" {
                    continue;
                }
                let mut times = Vec::new();
                for _ in 0..env_num("IMAPSORT_BENCH_VARIANT_RUNS", 5) {
                    clone_user(&self.d, template, "floor");
                    times.push(floor::replay(port, &variant).0);
                }
                clone_user(&self.d, template, "floor");
                let profile = floor::profile(port, &variant)
                    .iter()
                    .take(7)
                    .map(|(verb, n, t)| format!("{verb} x{n}: {}", secs(*t)))
                    .collect::<Vec<_>>()
                    .join(", ");
                eprintln!(
                    "  {name} {size} variant {what}: pipelined {}; one at a time: {profile}",
                    secs(median(&times))
                );
            }
        }
        // Where the server's time goes: the same script, one command at a time.
        clone_user(&self.d, template, "floor");
        let profile = floor::profile(port, &script)
            .iter()
            .take(6)
            .map(|(verb, n, t)| format!("{verb} x{n}: {}", secs(*t)))
            .collect::<Vec<_>>()
            .join(", ");
        eprintln!("  {name} {size}: one command at a time: {profile}");
        clone_user(&self.d, template, "floor");
        let batched_profile = floor::profile(port, &floor::batched_expunge(&script))
            .iter()
            .take(6)
            .map(|(verb, n, t)| format!("{verb} x{n}: {}", secs(*t)))
            .collect::<Vec<_>>()
            .join(", ");
        eprintln!("  {name} {size}: with one expunge: {batched_profile}");
        let profile = format!("{profile}; with moves as copies and one expunge: {batched_profile}");
        let mut row = SweepRow {
            name: name.to_owned(),
            messages: size,
            moved: mailstore::moved(&reference),
            imapsort: vec![],
            imapsort_peak_kb: vec![],
            imapfilter: vec![],
            base: vec![],
            floor: vec![],
            batched: vec![],
            commands,
            profile,
            mismatches: vec![],
        };
        let mut tools = vec![Tool::Imapsort, Tool::Imapfilter, Tool::Floor, Tool::Batched];
        if self.base.is_some() {
            tools.insert(1, Tool::Base);
        }
        let batched_script = floor::batched_expunge(&script);
        for run in 0..runs {
            for k in 0..tools.len() {
                // Rotate the order, so no tool always runs on a warmer (or busier) machine.
                let tool = tools[(run + k) % tools.len()];
                let user = match tool {
                    Tool::Imapsort | Tool::Base => "isort",
                    Tool::Imapfilter => "ifilter",
                    Tool::Floor | Tool::Batched => "floor",
                };
                clone_user(&self.d, template, user);
                let took = match tool {
                    Tool::Imapsort => {
                        let (t, peak) =
                            run_measured(&mut self.imapsort_cmd(user, port, rules, "run"));
                        row.imapsort_peak_kb.push(peak);
                        row.imapsort.push(t);
                        t
                    }
                    Tool::Base => {
                        let bin = self.base.as_deref().expect("base binary");
                        let mut c = self.imapsort_cmd_with(bin, user, port, rules, "run");
                        let (t, _) = run_measured(&mut c);
                        row.base.push(t);
                        t
                    }
                    Tool::Imapfilter => {
                        let (t, _) = run_measured(&mut self.imapfilter_cmd(user, rules, "run"));
                        row.imapfilter.push(t);
                        t
                    }
                    Tool::Floor => {
                        let (t, _) = floor::replay(port, &script);
                        row.floor.push(t);
                        t
                    }
                    Tool::Batched => {
                        let (t, _) = floor::replay(port, &batched_script);
                        row.batched.push(t);
                        t
                    }
                };
                let got = outcome(&self.d, user);
                if got != reference {
                    let why = format!("{tool:?}: {}", mailstore::diff(&reference, &got));
                    eprintln!("  MISMATCH {name} {size} {why}");
                    row.mismatches.push(why);
                }
                eprintln!("  {name} {size} run {run} {tool:?}: {}", secs(took));
                remove_user(&self.d, user);
            }
        }
        remove_user(&self.d, "floor");
        row
    }
}

fn main() {
    let only = std::env::var("IMAPSORT_BENCH_ONLY").unwrap_or_default();
    let wanted = |s: &str| only.is_empty() || only.split(',').any(|o| o.trim() == s);
    let shared = ["engine", "sweep", "push", "memory", "million"]
        .iter()
        .any(|s| wanted(s));
    if !Dovecot::available() || ((wanted("sweep") || wanted("push")) && !which("imapfilter")) {
        eprintln!(
            "SKIPPED: the benchmark suite needs dovecot installed, and imapfilter for sweep and push"
        );
        return;
    }
    if !shared {
        // Only the scale scenarios: they start their own servers.
        scale_scenarios(&wanted, Instant::now());
        return;
    }
    let runs = env_num("IMAPSORT_BENCH_RUNS", 3).max(1);
    let large_runs = env_num("IMAPSORT_BENCH_LARGE_RUNS", 1).max(1);
    let large = env_num("IMAPSORT_BENCH_LARGE", 100_000);
    let push_samples = env_num("IMAPSORT_BENCH_PUSH", 100);
    let accounts = env_num("IMAPSORT_BENCH_ACCOUNTS", 200).max(2);
    // Scenario 10 (opt-in): `1` means a million messages; another number is the size. With
    // `IMAPSORT_BENCH_ONLY` set, it runs only if the list names `million`.
    let million = match env_num("IMAPSORT_BENCH_MILLION", 0) {
        _ if !only.is_empty() && !wanted("million") => 0,
        1 => 1_000_000,
        n => n,
    };
    let started = Instant::now();

    let mut users: Vec<(String, String)> = ["floor", "isort", "ifilter", "p0", "p1"]
        .iter()
        .map(|u| ((*u).to_owned(), "pass".to_owned()))
        .collect();
    users.push((format!("t{SMALL}"), "pass".into()));
    users.push((format!("t{large}"), "pass".into()));
    users.push((million::TEMPLATE.to_owned(), "pass".into()));
    let mem_users: Vec<String> = (0..accounts).map(|i| format!("m{i}")).collect();
    users.extend(mem_users.iter().map(|u| (u.clone(), "pass".to_owned())));
    let d = Dovecot::start(DovecotOptions {
        users,
        extra_conf: format!(
            // imapfilter sends each UID set in one command line: at 100k messages those pass
            // Dovecot's default limit of 64 KiB.
            "imap_max_line_length = 4M\ndefault_process_limit = {}\ndefault_client_limit = {}\nservice anvil {{\n  client_limit = {}\n}}\n",
            accounts + 100,
            4 * accounts + 1000,
            4 * accounts + 1000
        ) + if million > 0 {
            // Indexing a million-message maildir takes more than the default 256 MB of
            // address space: the imap process is killed in the first SELECT.
            "default_vsz_limit = 4G
"
        } else {
            ""
        },
        ..DovecotOptions::default()
    })
    .expect("start dovecot");
    let bench = Bench {
        d,
        dir: tempfile::tempdir().expect("tempdir"),
        bin: env!("CARGO_BIN_EXE_imapsort"),
        base: std::env::var_os("IMAPSORT_BENCH_BASE").map(std::path::PathBuf::from),
    };

    let mut report = String::new();
    let cpu = shell(
        "sh",
        &["-c", "lscpu | sed -n 's/^Model name: *//p' | head -1"],
    );
    let _ = writeln!(
        report,
        "## Suite run {}\n\n- machine: {cpu}, {} cores (`nproc`), load average at start {}\n- {}; {}\n- sizes: {SMALL} and {large} messages; {runs} run(s) per tool at {SMALL}, {large_runs} at {large}\n",
        shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        shell("nproc", &[]),
        loadavg(),
        shell("dovecot", &["--version"]).replace('\n', " "),
        shell("imapfilter", &["-V"])
            .lines()
            .next()
            .unwrap_or_default(),
    );

    let mut small_mail = None;
    if wanted("engine") || wanted("sweep") {
        let t = Instant::now();
        let mail = corpus::generate(SMALL, 42);
        let bytes: usize = mail.iter().map(|m| m.bytes.len()).sum();
        eprintln!(
            "generated {SMALL} messages ({} MB) in {}",
            bytes >> 20,
            secs(t.elapsed())
        );
        small_mail = Some(mail);
    }

    if wanted("engine")
        && let Some(mail) = &small_mail
    {
        let yaml = ruleset::imapsort_yaml(1, "x", &bench.dir.path().join("s"), &ruleset::thirty());
        let e = engine::measure(&yaml, bench.dir.path(), mail);
        let _ = writeln!(
            report,
            "### 5. Rules engine (30-rule set, {SMALL} generated messages, one thread)\n\n\
             | measure | result | target |\n|---|---|---|\n\
             | evaluations/s | {:.2} million | ≥ 1 million |\n\
             | MessageView::parse of a header block | {:.0} k/s ({:.1} µs each) | ≤ 20 µs |\n\
             | messages some rule matched | {:.0} % | |\n",
            e.evaluations_per_s / 1e6,
            e.views_per_s / 1e3,
            1e6 / e.views_per_s,
            e.matched_share * 100.0
        );
        eprintln!("{report}");
    }

    let mut rows: Vec<SweepRow> = Vec::new();
    if wanted("sweep")
        && let Some(mail) = small_mail.take()
    {
        let template = format!("t{SMALL}");
        let t = Instant::now();
        mailstore::seed(&bench.d, &template, &mail);
        drop(mail);
        eprintln!("seeded {template} in {}", secs(t.elapsed()));
        // IMAPSORT_BENCH_SCENARIOS=1 (or 2): only that sweep scenario at 10k.
        let scenarios = std::env::var("IMAPSORT_BENCH_SCENARIOS").unwrap_or_default();
        let scenario = |n: &str| scenarios.is_empty() || scenarios.split(',').any(|s| s == n);
        if scenario("1") {
            rows.push(bench.sweep(
                "1. one sender rule",
                &template,
                SMALL,
                &ruleset::single(),
                runs,
            ));
        }
        if scenario("2") {
            rows.push(bench.sweep("2. 30 rules", &template, SMALL, &ruleset::thirty(), runs));
        }
        remove_user(&bench.d, &template);
        if large > 0 {
            let template = format!("t{large}");
            let t = Instant::now();
            let mail = corpus::generate(large, 43);
            mailstore::seed(&bench.d, &template, &mail);
            drop(mail);
            eprintln!("generated and seeded {template} in {}", secs(t.elapsed()));
            rows.push(bench.sweep(
                "2. 30 rules",
                &template,
                large,
                &ruleset::thirty(),
                large_runs,
            ));
            remove_user(&bench.d, &template);
        }
        sweep_tables(&mut report, &rows);
        eprintln!("{report}");
    }

    if million > 0 {
        let per_10k = rows
            .iter()
            .find(|r| r.name.starts_with("2.") && r.messages == SMALL)
            .map(|r| median(&r.imapsort));
        report.push_str(&million::run(&bench, million, per_10k));
        eprintln!("{report}");
    }

    if wanted("push") && push_samples > 0 {
        push_table(&mut report, &bench, push_samples);
        eprintln!("{report}");
    }

    if wanted("memory") {
        let one = memory::measure(bench.bin, &bench.d, &mem_users[..1], bench.dir.path());
        let many = memory::measure(bench.bin, &bench.d, &mem_users, bench.dir.path());
        let per = (many.rss_kb.saturating_sub(one.rss_kb)) as f64 * 1024.0
            / (many.accounts - one.accounts) as f64;
        let _ = writeln!(
            report,
            "### 4. Memory of `imapsort run` (every IDLE connection up, 3 s after)\n\n\
             | accounts | RSS | peak RSS | all connected after | target |\n|---|---|---|---|---|\n\
             | 1 | {:.1} MB | {:.1} MB | {} | < 15 MB |\n\
             | {} | {:.1} MB | {:.1} MB | {} | |\n\
             | per further connection | {:.0} KB | | | < 100 KB |\n",
            one.rss_kb as f64 / 1024.0,
            one.peak_kb as f64 / 1024.0,
            secs(one.startup),
            many.accounts,
            many.rss_kb as f64 / 1024.0,
            many.peak_kb as f64 / 1024.0,
            secs(many.startup),
            per / 1000.0
        );
    }

    drop(bench);
    report.push_str(&scale_report(&wanted));
    let _ = writeln!(
        report,
        "Suite took {}; load average at the end {}.",
        secs(started.elapsed()),
        loadavg()
    );
    println!("\n{report}");
}

/// Scenarios 7 and 8 alone, with the report's header.
fn scale_scenarios(wanted: &dyn Fn(&str) -> bool, started: Instant) {
    let mut report = String::new();
    let cpu = shell(
        "sh",
        &["-c", "lscpu | sed -n 's/^Model name: *//p' | head -1"],
    );
    let _ = writeln!(
        report,
        "## Scale run {}

- machine: {cpu}, {} cores (`nproc`), load average at start {}
- {}
",
        shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        shell("nproc", &[]),
        loadavg(),
        shell("dovecot", &["--version"]).replace('\n', " "),
    );
    report.push_str(&scale_report(wanted));
    let _ = writeln!(
        report,
        "Took {}; load average at the end {}.",
        secs(started.elapsed()),
        loadavg()
    );
    println!("\n{report}");
}

/// Scenarios 7 (1,000 accounts on Dovecot) and 8 (10,000 IDLE connections), as wanted.
fn scale_report(wanted: &dyn Fn(&str) -> bool) -> String {
    let mut report = String::new();
    let bin = env!("CARGO_BIN_EXE_imapsort");
    let dir = tempfile::Builder::new()
        .prefix("isb")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir");
    let idle_window = Duration::from_secs(env_num("IMAPSORT_BENCH_IDLE_SECS", 30) as u64);
    if wanted("scale") {
        let accounts = env_num("IMAPSORT_BENCH_SCALE_ACCOUNTS", 1000).max(1);
        let samples = env_num("IMAPSORT_BENCH_PUSH", 100);
        let s = scale::run(bin, dir.path(), accounts, samples, idle_window);
        scale::table(&mut report, &s);
        eprintln!("{report}");
    }
    if wanted("history") {
        let r = history::run(bin, dir.path());
        history::table(&mut report, &r);
        eprintln!("{report}");
    }
    if wanted("idle") {
        let connections = env_num("IMAPSORT_BENCH_IDLE_CONNECTIONS", 10_000).max(2);
        let s = idle::run(bin, dir.path(), connections, 200, idle_window);
        idle::table(&mut report, &s);
        eprintln!("{report}");
    }
    report
}

fn sweep_tables(report: &mut String, rows: &[SweepRow]) {
    let _ = writeln!(
        report,
        "### 1, 2. Sweep (medians; the floor replays imapsort's own commands, pipelined)\n\n\
         | scenario | messages | moved | imapsort | imapfilter 2.8 | floor | imapsort / imapfilter | imapfilter / imapsort | imapsort / floor | floor, one expunge | runs | same result |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        let (a, b, f) = (median(&r.imapsort), median(&r.imapfilter), median(&r.floor));
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.1}x | {:.2} | {} | {} | {} |",
            r.name,
            r.messages,
            r.moved,
            secs(a),
            secs(b),
            secs(f),
            a.as_secs_f64() / b.as_secs_f64(),
            b.as_secs_f64() / a.as_secs_f64(),
            a.as_secs_f64() / f.as_secs_f64(),
            secs(median(&r.batched)),
            r.imapsort.len(),
            if r.mismatches.is_empty() {
                "yes".to_owned()
            } else {
                format!("NO: {}", r.mismatches.join("; "))
            }
        );
    }
    let _ = writeln!(
        report,
        "\nTargets: scenario 1 imapsort / imapfilter ≤ 1.0; scenario 2 imapfilter / imapsort ≥ 5x and imapsort / floor ≤ 2.\n\
         Command lines imapsort sent (= replayed by the floor): {}\n",
        rows.iter()
            .map(|r| format!("{} at {}: {}", r.name, r.messages, r.commands))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        report,
        "Server time by command (imapsort's script sent one command at a time):\n"
    );
    for r in rows {
        let _ = writeln!(report, "- {} at {}: {}", r.name, r.messages, r.profile);
    }
    report.push('\n');
    if rows.iter().any(|r| !r.base.is_empty()) {
        let _ = writeln!(
            report,
            "Before/after (`IMAPSORT_BENCH_BASE`, run in the same rotation):\n\n\
             | scenario | messages | before | after | after / before | before, each run | after, each run |\n|---|---|---|---|---|---|---|"
        );
        let each = |v: &[Duration]| v.iter().map(|d| secs(*d)).collect::<Vec<_>>().join(", ");
        for r in rows {
            let (b, a) = (median(&r.base), median(&r.imapsort));
            let _ = writeln!(
                report,
                "| {} | {} | {} | {} | {:.3} | {} | {} |",
                r.name,
                r.messages,
                secs(b),
                secs(a),
                a.as_secs_f64() / b.as_secs_f64(),
                each(&r.base),
                each(&r.imapsort)
            );
        }
        report.push('\n');
    }
    let thirty: Vec<&SweepRow> = rows.iter().filter(|r| r.name.starts_with("2.")).collect();
    if thirty.len() >= 2 {
        let _ = writeln!(
            report,
            "### 6. Scale (30 rules)\n\n| messages | imapsort | per 10k messages | floor per 10k | imapsort peak RSS |\n|---|---|---|---|---|"
        );
        for r in &thirty {
            let a = median(&r.imapsort);
            let per = a.as_secs_f64() * 10_000.0 / r.messages as f64;
            let fper = median(&r.floor).as_secs_f64() * 10_000.0 / r.messages as f64;
            let peak = r.imapsort_peak_kb.iter().max().copied().unwrap_or(0);
            let _ = writeln!(
                report,
                "| {} | {} | {:.2} s | {:.2} s | {:.1} MB |",
                r.messages,
                secs(a),
                per,
                fper,
                peak as f64 / 1024.0
            );
        }
        report.push('\n');
    }
}

fn push_table(report: &mut String, bench: &Bench, samples: usize) {
    let d = &bench.d;
    let port = d.imap_port();
    for u in ["p0", "p1"] {
        remove_user(d, u);
        let mut s = raw::Raw::login(port, u).expect("login");
        s.cmd("CREATE Pushed").expect("create");
        let _ = s.cmd("LOGOUT");
    }
    let dir = bench.dir.path();
    let cfg = dir.join("push.yaml");
    std::fs::write(
        &cfg,
        push::imapsort_yaml(port, "p0", &dir.join("push-state")),
    )
    .expect("cfg");
    let daemon = push::start_imapsort(bench.bin, &cfg);
    std::thread::sleep(Duration::from_millis(1500));
    let ours = push::measure(d, "p0", daemon, samples);
    let lua = dir.join("push.lua");
    std::fs::write(&lua, push::imapfilter_lua(port, "p1")).expect("lua");
    let theirs = push::measure(d, "p1", push::start_imapfilter(&lua, dir), samples);
    let mut floor = ours.floor.clone();
    floor.extend(&theirs.floor);
    let (fm, fp) = push::median_p99(&floor);
    let (om, op) = push::median_p99(&ours.sorter);
    let (tm, tp) = push::median_p99(&theirs.sorter);
    let _ = writeln!(
        report,
        "### 3. Push latency (APPEND's OK -> message in its destination; {samples} appends each)\n\n\
         | client | samples | median | p99 | median above the floor |\n|---|---|---|---|---|\n\
         | bare IDLE client on the same INBOX (the floor: its EXISTS) | {} | {} | {} | |\n\
         | `imapsort run` | {} | {} | {} | {} |\n\
         | imapfilter `enter_idle()` loop | {} | {} | {} | {} |\n\n\
         Target: imapsort's median within 10 ms of the floor.\n",
        floor.len(),
        ms(fm),
        ms(fp),
        ours.sorter.len(),
        ms(om),
        ms(op),
        ms(om.saturating_sub(fm)),
        theirs.sorter.len(),
        ms(tm),
        ms(tp),
        ms(tm.saturating_sub(fm)),
    );
}
