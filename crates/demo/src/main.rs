//! The demo: a private Dovecot on loopback, an INBOX of realistic mail, the rules of
//! `rules.example.yaml`, and the real `imapsort run` sorting it live as a child process, with
//! fresh mail every few seconds, until Ctrl-C. It reads the daemon's JSON log and tells the
//! story: one aligned line per message acted on (who sent what, which rule, where it went),
//! a summary at the end; the daemon's own log lines only with `-v` (warnings always).
//! Nothing is installed and nothing outside a temporary directory is touched.
//! `scripts/demo` builds both programs and runs this one.

#![forbid(unsafe_code)]

mod events;
mod mail;
mod story;

/// `println!` that ignores a terminal gone away (the demo still stops the daemon and the
/// server after a hangup).
macro_rules! say {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use imapsort_testkit::dovecot::{Dovecot, DovecotOptions, SeedMessage};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::signal::unix::{SignalKind, signal};

use events::Event;
use mail::{Letter, MailGen};
use story::{Layout, Tally};

/// Messages in the INBOX before imapsort starts: about a screenful of lines.
const SEED: usize = 40;
/// Every this many seeded messages, one was read and arrived weeks ago (for the sweep rules).
const OLD_EVERY: usize = 5;
/// Fresh mail arrives this often.
const TRICKLE_EVERY: Duration = Duration::from_secs(4);
/// How often the daemon sweeps (the age-based rules): often, so the demo shows it.
const SWEEP_INTERVAL: &str = "1m";
/// How long imapsort gets to stop after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// sysexits: a required service (Dovecot, the imapsort binary) is unavailable.
const EX_UNAVAILABLE: u8 = 69;

const USAGE: &str = "\
usage: imapsort-demo [-v] [--rules FILE] [--imapsort PATH]

  -v               show imapsort's own log lines too (warnings are always shown)
  --rules FILE     the configuration whose rules to run [default: rules.example.yaml]
  --imapsort PATH  the imapsort binary [default: the one beside this program]";

/// What the command line asked for.
struct Args {
    /// The configuration whose `rules:` section the demo runs.
    rules: PathBuf,
    /// The imapsort binary to run.
    imapsort: PathBuf,
    /// Show the daemon's info lines as well.
    verbose: bool,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            say!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("imapsort-demo: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !Dovecot::available() {
        eprintln!(
            "The demo needs Dovecot to run a private mail server on loopback.\n\
             Install it with:  apt-get install dovecot-imapd"
        );
        return ExitCode::from(EX_UNAVAILABLE);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("imapsort-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imapsort-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(None)`: help was asked for.
fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = Args {
        rules: repo.join("rules.example.yaml"),
        imapsort: sibling_binary("imapsort"),
        verbose: false,
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--rules" => args.rules = value()?.into(),
            "--imapsort" => args.imapsort = value()?.into(),
            "-v" | "--verbose" => args.verbose = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(args))
}

/// `imapsort` next to this program (both are built into the same `target/` directory).
fn sibling_binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

async fn demo(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if !args.imapsort.is_file() {
        eprintln!(
            "imapsort-demo: {} not found; build it first (cargo build --bin imapsort)",
            args.imapsort.display()
        );
        return Ok(ExitCode::from(EX_UNAVAILABLE));
    }
    let rules_file = std::fs::read_to_string(&args.rules)
        .map_err(|e| format!("cannot read {}: {e}", args.rules.display()))?;
    let Some(rules) = rules_section(&rules_file) else {
        return Err(format!("{}: no top-level `rules:` section", args.rules.display()).into());
    };
    let names = rule_names(&rules);
    let dovecot =
        match tokio::task::spawn_blocking(|| Dovecot::start(DovecotOptions::default())).await? {
            Ok(d) => d,
            Err(e) => {
                eprintln!("imapsort-demo: the private Dovecot did not start: {e}");
                return Ok(ExitCode::from(EX_UNAVAILABLE));
            }
        };
    let work = tempfile::tempdir()?;
    let config_path = work.path().join("config.yaml");
    write_private(&config_path, &config_text(&dovecot, work.path(), &rules))?;

    // The INBOX as imapsort will find it. Every letter is remembered by its Message-ID: the
    // daemon's log names messages by Message-ID, the story by sender and subject.
    let style = Style::detect();
    let mut story = Story::new(&names, style, args.verbose);
    let mut mail = MailGen::new(7);
    let old = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    let mut seed = Vec::new();
    for i in 0..SEED {
        let letter = mail.next_letter();
        let is_old = i % OLD_EVERY == OLD_EVERY - 1;
        seed.push(SeedMessage {
            bytes: letter.bytes.clone(),
            flags: if is_old {
                vec!["\\Seen".into()]
            } else {
                vec![]
            },
            internal_date: is_old.then_some(old),
        });
        story.remember(letter);
    }
    dovecot.seed_with("user", "INBOX", &seed)?;

    say!("{}", style.bold("imapsort demo"));
    say!(
        "A mail server of its own on this machine, an INBOX full of mail, and imapsort\n\
         sorting it by the rules in {}.\n",
        args.rules.display()
    );
    say!(
        "  server    Dovecot on 127.0.0.1:{} (TLS, a throwaway CA)",
        dovecot.imaps_port()
    );
    say!(
        "  mailbox   {SEED} messages in the INBOX, {} of them read weeks ago",
        SEED / OLD_EVERY
    );
    say!(
        "  rules     {}",
        fit_list(&names, terminal_width().saturating_sub(12))
    );
    say!("  imapsort  {} run", args.imapsort.display());
    say!(
        "\nimapsort sorts what is there; then new mail arrives every {} seconds and is\n\
         sorted as it lands. Rules with an age condition run in a sweep every minute.\n\
         Ctrl-C ends the demo with a summary{}.\n",
        TRICKLE_EVERY.as_secs(),
        if args.verbose {
            ""
        } else {
            "; -v shows imapsort's own log as well"
        }
    );
    say!("{}", style.dim(&story.layout().header()));

    let mut daemon = tokio::process::Command::new(&args.imapsort)
        .args(["--log-format", "json", "run", "-c"])
        .arg(&config_path)
        .env("IMAPSORT_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        // Its own process group: Ctrl-C reaches the demo alone, which then stops the daemon
        // and still reads its last lines.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args.imapsort.display()))?;
    let pid = daemon.id();
    let mut lines = BufReader::new(daemon.stderr.take().expect("stderr is piped")).lines();
    let started = Instant::now();

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut tick = tokio::time::interval(TRICKLE_EVERY);
    tick.tick().await;
    // Set once we asked imapsort to stop: by then it must have.
    let mut stop_by: Option<tokio::time::Instant> = None;
    loop {
        let deadline = stop_by.unwrap_or_else(|| tokio::time::Instant::now() + STOP_LIMIT);
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => story.tell(&line),
                // imapsort closed its stderr: it has ended.
                None => break,
            },
            _ = tick.tick(), if stop_by.is_none() => {
                let batch: Vec<Letter> = (0..mail.batch_size()).map(|_| mail.next_letter()).collect();
                let bytes: Vec<Vec<u8>> = batch.iter().map(|l| l.bytes.clone()).collect();
                batch.into_iter().for_each(|l| story.remember(l));
                dovecot.seed("user", "INBOX", &bytes)?;
            }
            _ = interrupt.recv(), if stop_by.is_none() => stop_by = Some(stop(pid)),
            _ = terminate.recv(), if stop_by.is_none() => stop_by = Some(stop(pid)),
            _ = hangup.recv(), if stop_by.is_none() => stop_by = Some(stop(pid)),
            _ = tokio::time::sleep_until(deadline), if stop_by.is_some() => {
                eprintln!("imapsort did not stop within {STOP_LIMIT:?}; killing it");
                let _ = daemon.start_kill();
                break;
            }
        }
    }
    let status = daemon.wait().await?;
    let asked = stop_by.is_some();
    if !asked {
        say!("\nimapsort ended by itself ({status}).");
    } else if !status.success() {
        say!("imapsort stopped with {status}.");
    }
    say!();
    say!(
        "{}",
        story
            .tally
            .summary(started.elapsed(), terminal_width())
            .trim_end()
    );
    say!("\nStopping the mail server; its files and the demo's configuration go with it.");
    drop(work);
    tokio::task::spawn_blocking(move || dovecot.stop()).await?;
    Ok(if asked && status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Ask imapsort to stop (SIGTERM; it finishes the batch in hand). Returns when it must have.
fn stop(pid: Option<u32>) -> tokio::time::Instant {
    say!("\nStopping imapsort…");
    if let Some(pid) = pid {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    tokio::time::Instant::now() + STOP_LIMIT
}

/// The demo's memory of what it delivered, and how it prints what imapsort did with it.
struct Story {
    /// Every message delivered, by Message-ID.
    letters: HashMap<String, Letter>,
    pub tally: Tally,
    style: Style,
    /// The longest rule name, for the width of the rule column.
    longest_rule: usize,
    /// Show imapsort's info lines too.
    verbose: bool,
}

impl Story {
    fn new(rule_names: &[String], style: Style, verbose: bool) -> Story {
        Story {
            letters: HashMap::new(),
            tally: Tally::default(),
            style,
            longest_rule: rule_names
                .iter()
                .map(|n| n.chars().count())
                .max()
                .unwrap_or(4),
            verbose,
        }
    }

    /// Widths for the terminal as it is now (it may have been resized).
    fn layout(&self) -> Layout {
        Layout::new(terminal_width(), self.longest_rule)
    }

    fn remember(&mut self, letter: Letter) {
        self.tally.delivered += 1;
        self.letters.insert(letter.message_id.clone(), letter);
    }

    /// One line of imapsort's stderr.
    fn tell(&mut self, line: &str) {
        match events::parse(line) {
            Event::Sorted(s) => {
                self.tally
                    .record(&s.rule, &s.action, &s.destination, &s.message_id);
                let (sender, subject) = match self.letters.get(&s.message_id) {
                    Some(l) => (l.sender.as_str(), l.subject.as_str()),
                    None => ("?", s.message_id.as_str()),
                };
                let time = jiff::Zoned::now().strftime("%H:%M:%S").to_string();
                let outcome = story::outcome(&s.action, &s.destination);
                let [time, sender, subject, rule, outcome] = self
                    .layout()
                    .cells(&time, sender, subject, &s.rule, &outcome);
                let cells = [
                    self.style.dim(&time),
                    sender,
                    subject,
                    self.style.bold(&rule),
                    self.style.colour(&outcome, &s.action),
                ];
                say!("{}", cells.join(&" ".repeat(story::GAP)));
            }
            Event::Log(log) if self.verbose || log.is_trouble() => {
                let text = format!("  imapsort {}: {}", log.level, log.text);
                say!(
                    "{}",
                    if log.is_trouble() {
                        self.style.warn(&text)
                    } else {
                        self.style.dim(&text)
                    }
                );
            }
            Event::Log(_) => {}
            Event::Text(text) => say!("  imapsort: {text}"),
        }
    }
}

/// ANSI styling, only on a terminal and without `NO_COLOR`.
#[derive(Clone, Copy)]
struct Style {
    on: bool,
}

impl Style {
    fn detect() -> Style {
        Style {
            on: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    fn warn(&self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Moves in cyan, trash and deletion in red, the rest (flags, copies) in green.
    fn colour(&self, outcome: &str, action: &str) -> String {
        let code = if action.contains("trash") || action.contains("delete") {
            "31"
        } else if action.contains("move") || action.contains("archive") {
            "36"
        } else {
            "32"
        };
        self.paint(code, outcome)
    }
}

/// Columns of the terminal on stdout; 100 when it is not a terminal.
fn terminal_width() -> usize {
    terminal_size::terminal_size()
        .map(|(w, _)| usize::from(w.0))
        .unwrap_or(100)
}

/// `names` comma-separated after their count, cut to `width` with a count of those left out.
fn fit_list(names: &[String], width: usize) -> String {
    let mut out = format!("{}:", names.len());
    for (i, name) in names.iter().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        let after = names.len() - i - 1;
        let reserve = if after > 0 {
            format!(", … {after} more").chars().count()
        } else {
            0
        };
        if i > 0 && out.chars().count() + sep.len() + name.chars().count() + reserve > width {
            return format!("{out}, … {} more", names.len() - i);
        }
        out.push_str(sep);
        out.push_str(name);
    }
    out
}

/// The demo's configuration: one account on the private server, `rules` (a `rules:` section).
fn config_text(d: &Dovecot, dir: &Path, rules: &str) -> String {
    format!(
        "settings:\n  state_dir: {state}\n  sweep_interval: {SWEEP_INTERVAL}\n\
         accounts:\n  - name: personal\n    host: 127.0.0.1\n    port: {port}\n    \
         tls: implicit\n    ca_file: {ca}\n    username: user\n    password: pass\n    \
         first_start: all\n{rules}",
        state = dir.join("state").display(),
        port = d.imaps_port(),
        ca = d.ca_pem_path().display(),
    )
}

/// The `rules:` block of a whole configuration file (up to the next top-level key).
fn rules_section(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        let top_level = !line.starts_with([' ', '\t', '#']) && !line.trim().is_empty();
        if top_level {
            inside = line.starts_with("rules:");
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The names of the rules in a `rules:` section (`- name: …` items).
fn rule_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- name:"))
        .map(|n| n.trim().trim_matches(['"', '\'']).to_string())
        .collect()
}

/// The configuration holds a literal password: readable by us alone.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_section_takes_only_the_rules_block() {
        let text =
            "settings:\n  x: 1\nrules:\n  - name: a\n    when: true\n\n# c\naccounts:\n  - b\n";
        assert_eq!(
            rules_section(text).unwrap(),
            "rules:\n  - name: a\n    when: true\n\n# c\n"
        );
        assert_eq!(rules_section("accounts: []\n"), None);
    }

    #[test]
    fn the_example_rules_are_found_by_name() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules.example.yaml"),
        )
        .unwrap();
        let names = rule_names(&rules_section(&text).unwrap());
        assert!(names.contains(&"mailing lists".to_string()), "{names:?}");
        assert!(names.contains(&"boss".to_string()), "{names:?}");
    }

    #[test]
    fn a_long_list_of_rules_is_cut_with_a_count() {
        let names: Vec<String> = ["boss", "mailing lists", "invoices", "newsletters"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            fit_list(&names, 200),
            "4: boss, mailing lists, invoices, newsletters"
        );
        assert_eq!(fit_list(&names, 34), "4: boss, mailing lists, … 2 more");
        assert_eq!(fit_list(&names, 30), "4: boss, … 3 more");
    }
}
