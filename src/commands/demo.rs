//! `imapsort demo`: a private Dovecot on loopback, a few hundred realistic messages, the example
//! rules, and the real daemon sorting them live, with fresh mail every few seconds, until
//! Ctrl-C. Nothing is installed and nothing outside a temporary directory is touched.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::cli::DemoArgs;
use crate::daemon::{self, Options, Stats};
use crate::dovecot::{Dovecot, DovecotOptions, SeedMessage};
use crate::exit::Exit;
use crate::imap::{ConnectOptions, Session};

/// Messages in the mailbox before the daemon starts.
const SEED: usize = 300;
/// Fresh mail arrives this often.
const TRICKLE_EVERY: Duration = Duration::from_secs(4);
/// The mailbox summary is printed this often.
const SUMMARY_EVERY: Duration = Duration::from_secs(12);

/// Rules used when no `rules.example.yaml` can be found (an installed binary).
const BUILTIN_RULES: &str = r#"rules:
  - name: mailing lists
    when: { list_id: { exists: true } }
    then: { move: "Lists/{list_id}" }

  - name: invoices
    when:
      any:
        - subject: { regex: '\b(invoice|receipt)\b' }
        - from: "@billing.example.net"
    then: [{ flag: "$Invoice" }, { copy: "Accounting/{year}" }]

  - name: newsletters
    when: { header: { name: List-Unsubscribe, exists: true } }
    then: { move: Newsletters }

  - name: bots
    when: { from: { prefix: [noreply, no-reply, notifications] } }
    then: [mark_read, { move: Bots }]

  - name: boss
    when: { from: boss@work.example }
    then: { flag: \Flagged }
    stop: true
"#;

/// Exit 0 after Ctrl-C, 69 when Dovecot is not installed or does not start.
pub fn run(args: &DemoArgs) -> anyhow::Result<Exit> {
    if !Dovecot::available() {
        eprintln!(
            "imapsort demo needs Dovecot to run a private mail server on loopback.\n\
             Install it with:  apt-get install dovecot-imapd"
        );
        return Ok(Exit::Unavailable);
    }
    let rules = rules_text(args.rules.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(demo(rules));
    runtime.shutdown_timeout(Duration::from_millis(500));
    result
}

/// The `rules:` section to run: `--rules FILE`, else the repository's `rules.example.yaml`,
/// else the built-in set.
fn rules_text(given: Option<&Path>) -> anyhow::Result<String> {
    let candidates: Vec<PathBuf> = match given {
        Some(p) => vec![p.to_path_buf()],
        None => vec![
            PathBuf::from("rules.example.yaml"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.example.yaml"),
        ],
    };
    for path in &candidates {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                if let Some(rules) = rules_section(&text) {
                    println!("rules from {}", path.display());
                    return Ok(rules);
                }
                anyhow::bail!("{}: no top-level `rules:` section", path.display());
            }
            Err(e) if given.is_some() => {
                anyhow::bail!("cannot read {}: {e}", path.display())
            }
            Err(_) => {}
        }
    }
    println!("rules: the built-in example set");
    Ok(BUILTIN_RULES.to_string())
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

async fn demo(rules: String) -> anyhow::Result<Exit> {
    let dovecot =
        match tokio::task::spawn_blocking(|| Dovecot::start(DovecotOptions::default())).await? {
            Ok(d) => Arc::new(d),
            Err(e) => {
                eprintln!("imapsort demo: the private Dovecot did not start: {e}");
                return Ok(Exit::Unavailable);
            }
        };
    let work = tempfile::tempdir()?;
    let config_path = work.path().join("config.yaml");
    let config_text = format!(
        "settings:\n  state_dir: {state}\n  sweep_interval: 1m\n\
         accounts:\n  - name: personal\n    host: 127.0.0.1\n    port: {port}\n    \
         tls: implicit\n    ca_file: {ca}\n    username: user\n    password: pass\n    \
         first_start: all\n{rules}",
        state = work.path().join("state").display(),
        port = dovecot.imaps_port(),
        ca = dovecot.ca_pem_path().display(),
    );
    write_private(&config_path, &config_text)?;
    let config = match crate::config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(Exit::Config);
        }
    };

    let mut mail_gen = MailGen::new(7);
    // Every seventh message is old and read, for the archiving sweep rule to find.
    let old = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    let seed: Vec<SeedMessage> = (0..SEED)
        .map(|i| {
            let bytes = mail_gen.next().1;
            if i % 7 == 0 {
                SeedMessage {
                    bytes,
                    flags: vec!["\\Seen".into()],
                    internal_date: Some(old),
                }
            } else {
                SeedMessage {
                    bytes,
                    ..SeedMessage::default()
                }
            }
        })
        .collect();
    dovecot.seed_with("user", "INBOX", &seed)?;
    println!(
        "private Dovecot on 127.0.0.1:{} (TLS, CA {}), {SEED} messages in INBOX",
        dovecot.imaps_port(),
        dovecot.ca_pem_path().display()
    );
    println!("configuration: {}", config_path.display());
    println!("sorting now; fresh mail every {TRICKLE_EVERY:?}; Ctrl-C stops\n");

    let stats = Arc::new(Stats::default());
    let options = Options {
        stats: stats.clone(),
        ..Options::default()
    };
    let shutdown = daemon::shutdown::signal()?;
    let daemon_task = tokio::spawn(daemon::run_with(
        config_path.clone(),
        config,
        shutdown,
        options,
    ));

    let d = dovecot.clone();
    let trickle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(TRICKLE_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            let n = 1 + (mail_gen.rng.u8(0..3) as usize);
            let batch: Vec<(String, Vec<u8>)> = (0..n).map(|_| mail_gen.next()).collect();
            for (what, _) in &batch {
                println!("  new mail: {what}");
            }
            let bytes: Vec<Vec<u8>> = batch.into_iter().map(|(_, b)| b).collect();
            if let Err(e) = d.seed("user", "INBOX", &bytes) {
                eprintln!("imapsort demo: delivering mail failed: {e}");
            }
        }
    });
    let d = dovecot.clone();
    let summary = tokio::spawn(async move {
        let mut tick = tokio::time::interval(SUMMARY_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = print_summary(&d).await {
                eprintln!("imapsort demo: cannot read the mailboxes: {e}");
            }
        }
    });

    let result = daemon_task.await?;
    trickle.abort();
    summary.abort();
    let _ = trickle.await;
    let _ = summary.await;
    println!();
    let _ = print_summary(&dovecot).await;
    println!(
        "{} messages sorted. Stopping the private Dovecot and removing its files.",
        Stats::get(&stats.messages_acted)
    );
    drop(work);
    if let Ok(d) = Arc::try_unwrap(dovecot) {
        tokio::task::spawn_blocking(move || d.stop()).await?;
    }
    result?;
    Ok(Exit::Ok)
}

/// Message counts of every mailbox.
async fn print_summary(d: &Dovecot) -> anyhow::Result<()> {
    let mut s = client(d).await?;
    let mut rows = Vec::new();
    for entry in s.list().await? {
        if !entry.is_selectable() {
            continue;
        }
        let n = s.status(&entry.name).await?.messages.unwrap_or(0);
        if n > 0 {
            rows.push((entry.name, n));
        }
    }
    let _ = s.logout().await;
    rows.sort();
    println!("mailboxes now:");
    for (name, n) in rows {
        println!("  {n:>5}  {name}");
    }
    Ok(())
}

async fn client(d: &Dovecot) -> anyhow::Result<Session> {
    let opts = ConnectOptions {
        account: "demo".into(),
        host: "127.0.0.1".into(),
        port: d.imaps_port(),
        tls: crate::config::TlsMode::Implicit,
        allow_insecure: false,
        ca_file: Some(d.ca_pem_path()),
        username: "user".into(),
        auth: crate::config::AuthMechanism::Login,
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(10),
    };
    Ok(crate::imap::connect(&opts, &SecretString::from("pass".to_string())).await?)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Realistic-looking mail: people, mailing lists, newsletters, invoices, bots.
struct MailGen {
    /// Seeded, so every demo run starts alike.
    rng: fastrand::Rng,
    /// Makes Message-IDs unique.
    n: usize,
}

const PEOPLE: &[(&str, &str)] = &[
    ("Alice Martin", "alice@friends.example"),
    ("Bob Okafor", "bob@friends.example"),
    ("Chiara Rossi", "chiara@family.example"),
    ("The Boss", "boss@work.example"),
    ("Dmitri Ivanov", "dmitri@work.example"),
];
const PERSONAL: &[&str] = &[
    "Lunch on Friday?",
    "Photos from the weekend",
    "Re: the plan for next week",
    "Quick question",
    "Call me when you can",
];
const LISTS: &[(&str, &str, &str)] = &[
    ("announce", "announce.example.org", "Release 2.0 is out"),
    (
        "rust-users",
        "users.rust-lang.example",
        "Borrow checker and async closures",
    ),
    (
        "debian-devel",
        "debian-devel.lists.debian.example",
        "Proposal: new init defaults",
    ),
    (
        "postgres-general",
        "pgsql-general.postgresql.example",
        "Vacuum on big tables",
    ),
];
const NEWSLETTERS: &[(&str, &str, &str)] = &[
    (
        "Weekly Tech Digest",
        "digest@news.example",
        "This week: 10 things about IMAP",
    ),
    (
        "Garden Club",
        "hello@garden.example",
        "Spring planting guide",
    ),
    (
        "Travel Deals",
        "deals@travel.example",
        "Last-minute flights to Lisbon",
    ),
];
const BOTS: &[(&str, &str, &str)] = &[
    (
        "GitHub",
        "notifications@github.com",
        "[imapsort] CI passed on main",
    ),
    (
        "Monitoring",
        "noreply@monitor.example",
        "ALERT resolved: disk usage",
    ),
    (
        "Calendar",
        "no-reply@calendar.example",
        "Reminder: standup at 09:30",
    ),
];

impl MailGen {
    fn new(seed: u64) -> MailGen {
        MailGen {
            rng: fastrand::Rng::with_seed(seed),
            n: 0,
        }
    }

    /// A one-line description and the message.
    fn next(&mut self) -> (String, Vec<u8>) {
        self.n += 1;
        let n = self.n;
        let mut extra = String::new();
        let (name, from, subject) = match self.rng.u8(0..10) {
            0..=2 => {
                let (name, addr) = PEOPLE[self.rng.usize(..PEOPLE.len())];
                let subject = PERSONAL[self.rng.usize(..PERSONAL.len())];
                (name.to_string(), addr.to_string(), subject.to_string())
            }
            3..=5 => {
                let (list, id, topic) = LISTS[self.rng.usize(..LISTS.len())];
                extra.push_str(&format!("List-Id: {list} <{id}>\r\nPrecedence: list\r\n"));
                let who = PEOPLE[self.rng.usize(..PEOPLE.len())];
                (
                    who.0.to_string(),
                    who.1.to_string(),
                    format!("[{list}] {topic}"),
                )
            }
            6 | 7 => {
                let (name, addr, subject) = NEWSLETTERS[self.rng.usize(..NEWSLETTERS.len())];
                extra.push_str(&format!(
                    "List-Unsubscribe: <mailto:unsubscribe@{}>\r\n",
                    addr.split('@').nth(1).unwrap_or("news.example")
                ));
                (name.to_string(), addr.to_string(), subject.to_string())
            }
            8 => {
                let number = 1000 + self.rng.u32(0..9000);
                (
                    "Billing".to_string(),
                    "invoices@billing.example.net".to_string(),
                    format!("Your invoice #{number}"),
                )
            }
            _ => {
                let (name, addr, subject) = BOTS[self.rng.usize(..BOTS.len())];
                extra.push_str("Auto-Submitted: auto-generated\r\n");
                (name.to_string(), addr.to_string(), subject.to_string())
            }
        };
        let date = jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000");
        let text = format!(
            "From: {name} <{from}>\r\nTo: You <user@example.com>\r\nSubject: {subject}\r\n\
             Date: {date}\r\nMessage-ID: <demo.{n}.{seed}@imapsort.example>\r\n{extra}\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Hello,\r\n\r\nthis is demo message {n}.\r\n",
            seed = self.rng.u32(..),
        );
        (format!("{subject:?} from {from}"), text.into_bytes())
    }
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
    fn generated_mail_is_varied_and_unique() {
        let mut g = MailGen::new(1);
        let msgs: Vec<String> = (0..200)
            .map(|_| String::from_utf8(g.next().1).unwrap())
            .collect();
        assert!(msgs.iter().any(|m| m.contains("List-Id:")));
        assert!(msgs.iter().any(|m| m.contains("List-Unsubscribe:")));
        assert!(msgs.iter().any(|m| m.contains("invoice #")));
        assert!(
            msgs.iter()
                .any(|m| m.contains("noreply@") || m.contains("no-reply@"))
        );
        let ids: std::collections::HashSet<&str> = msgs
            .iter()
            .map(|m| m.lines().find(|l| l.starts_with("Message-ID")).unwrap())
            .collect();
        assert_eq!(ids.len(), 200);
    }

    #[test]
    fn builtin_rules_are_a_valid_configuration() {
        let text = format!(
            "accounts:\n  - name: personal\n    host: 127.0.0.1\n    username: u\n    \
             password: p\n{BUILTIN_RULES}"
        );
        let config = crate::config::load_str(&text, Path::new("demo.yaml"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.rules.rules().count(), 5);
    }
}
