//! The demo: a private Dovecot on loopback, a mailbox of realistic mail, the rules of
//! `rules.example.yaml`, and the real `imapsort run` sorting it live, with fresh mail every few
//! seconds, until Ctrl-C. Nothing is installed and nothing outside a temporary directory is
//! touched. `scripts/demo` builds both programs and runs this one.

#![forbid(unsafe_code)]

mod mail;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use imapsort_testkit::dovecot::{Dovecot, DovecotOptions, SeedMessage};
use mail::MailGen;

/// Messages in the mailbox before the daemon starts.
const SEED: usize = 300;
/// Fresh mail arrives this often.
const TRICKLE_EVERY: Duration = Duration::from_secs(4);

/// sysexits: a required service (Dovecot, the imapsort binary) is unavailable.
const EX_UNAVAILABLE: u8 = 69;

const USAGE: &str = "usage: imapsort-demo [--rules FILE] [--imapsort PATH]";

/// What the command line asked for.
struct Args {
    /// The configuration whose `rules:` section the demo runs.
    rules: PathBuf,
    /// The imapsort binary to run.
    imapsort: PathBuf,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
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

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = Args {
        rules: repo.join("rules.example.yaml"),
        imapsort: sibling_binary("imapsort"),
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--rules" => args.rules = value()?.into(),
            "--imapsort" => args.imapsort = value()?.into(),
            "-h" | "--help" => return Err("the demo of imapsort".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
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

    let mut mail = MailGen::new(7);
    // Every seventh message is old and read, for the archiving sweep rule to find.
    let old = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    let seed: Vec<SeedMessage> = (0..SEED)
        .map(|i| SeedMessage {
            bytes: mail.next_letter().bytes,
            flags: if i % 7 == 0 {
                vec!["\\Seen".into()]
            } else {
                vec![]
            },
            internal_date: (i % 7 == 0).then_some(old),
        })
        .collect();
    dovecot.seed_with("user", "INBOX", &seed)?;
    println!(
        "private Dovecot on 127.0.0.1:{} (TLS, CA {}), {SEED} messages in INBOX",
        dovecot.imaps_port(),
        dovecot.ca_pem_path().display()
    );
    println!("rules from {}", args.rules.display());
    println!("sorting now; fresh mail every {TRICKLE_EVERY:?}; Ctrl-C stops\n");

    let mut daemon = tokio::process::Command::new(&args.imapsort)
        .arg("run")
        .arg("-c")
        .arg(&config_path)
        .env("IMAPSORT_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args.imapsort.display()))?;

    let mut tick = tokio::time::interval(TRICKLE_EVERY);
    tick.tick().await;
    let status = loop {
        tokio::select! {
            status = daemon.wait() => break status?,
            _ = tokio::signal::ctrl_c() => {
                // The terminal sent SIGINT to the daemon too; wait for its clean stop.
                break daemon.wait().await?;
            }
            _ = tick.tick() => {
                let mut batch = Vec::new();
                for _ in 0..mail.batch_size() {
                    let letter = mail.next_letter();
                    println!(
                        "  new mail {}: {:?} from {}",
                        letter.message_id, letter.subject, letter.sender
                    );
                    batch.push(letter.bytes);
                }
                dovecot.seed("user", "INBOX", &batch)?;
            }
        }
    };
    println!("\nimapsort stopped ({status}). Stopping the private Dovecot and removing its files.");
    drop(work);
    tokio::task::spawn_blocking(move || dovecot.stop()).await?;
    Ok(ExitCode::SUCCESS)
}

/// The demo's configuration: one account on the private server, `rules` (a `rules:` section).
fn config_text(d: &Dovecot, dir: &Path, rules: &str) -> String {
    format!(
        "settings:\n  state_dir: {state}\n  sweep_interval: 1m\n\
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
}
