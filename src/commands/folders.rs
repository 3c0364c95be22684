//! `imapsort folders`: per account, every mailbox with its special use and its message and
//! unseen counts, plus where `trash` and `archive` resolve to. Read-only (LIST and STATUS).

use std::io::Write;
use std::path::Path;

use crate::cli::FoldersArgs;
use crate::commands::{Warnings, load_config};
use crate::config::Account;
use crate::exit::Exit;
use crate::imap::{ImapError, connect_account};
use crate::imap::{MailboxEntry, SpecialUse, resolve_special};
use crate::logging::chain;

/// One line of the listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderRow {
    /// Config form (UTF-8, `/`-separated): what users write in rules.
    pub name: String,
    pub special_use: Option<SpecialUse>,
    /// `None` for `\Noselect` mailboxes (no messages of their own).
    pub messages: Option<u32>,
    pub unseen: Option<u32>,
}

/// What one account reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountFolders {
    pub rows: Vec<FolderRow>,
    /// Where `trash` goes (config, else `\Trash`, else "Trash").
    pub trash: String,
    /// Where `archive` goes (config, else `\Archive`, else "Archive").
    pub archive: String,
}

/// Exit 0 when every account answered, 69 when one could not be reached or logged in to,
/// 78 when the configuration is invalid, 2 for an unknown `--account`.
pub fn run(args: &FoldersArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let config = match load_config(&args.config, Warnings::Print, &mut std::io::stderr()) {
        Ok(c) => c,
        Err(exit) => return Ok(exit),
    };
    let path = config.path.clone();
    let accounts: Vec<&Account> = match &args.account {
        Some(name) => match config.account(name) {
            Some(a) => vec![a],
            None => {
                eprintln!("imapsort: no account named {name:?} in {}", path.display());
                return Ok(Exit::Usage);
            }
        },
        None => config.accounts.iter().collect(),
    };
    if accounts.is_empty() {
        eprintln!("imapsort: {} has no accounts", path.display());
        return Ok(Exit::Config);
    }
    let config_dir = crate::config::dir_of(&path).to_path_buf();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut exit = Exit::Ok;
    for (i, account) in accounts.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        match rt.block_on(account_folders(account, &config_dir)) {
            Ok(folders) => render(account, &folders, out)?,
            Err(e) => {
                eprintln!("imapsort: account {}: {}", account.name, chain(&e));
                writeln!(out, "{} ({}): unavailable", account.name, account.host)?;
                exit = Exit::Unavailable;
            }
        }
    }
    out.flush()?;
    Ok(exit)
}

/// Connect, LIST and STATUS every selectable mailbox, LOGOUT.
pub async fn account_folders(
    account: &Account,
    config_dir: &Path,
) -> Result<AccountFolders, ImapError> {
    let mut session = connect_account(account, config_dir).await?;
    let entries = session.list().await?;
    let mut rows = Vec::with_capacity(entries.len());
    for e in &entries {
        let (messages, unseen) = if e.is_selectable() {
            let st = session.status(&e.name).await?;
            (st.messages, st.unseen)
        } else {
            (None, None)
        };
        rows.push(FolderRow {
            name: e.name.clone(),
            special_use: e.special_use,
            messages,
            unseen,
        });
    }
    sort_rows(&mut rows);
    let folders = AccountFolders {
        trash: special(
            account.trash.as_deref(),
            &entries,
            SpecialUse::Trash,
            "Trash",
        ),
        archive: special(
            account.archive.as_deref(),
            &entries,
            SpecialUse::Archive,
            "Archive",
        ),
        rows,
    };
    let _ = session.logout().await;
    Ok(folders)
}

fn special(configured: Option<&str>, entries: &[MailboxEntry], u: SpecialUse, d: &str) -> String {
    resolve_special(configured, entries, u, d)
}

/// INBOX first, then by name.
fn sort_rows(rows: &mut [FolderRow]) {
    rows.sort_by(|a, b| {
        let inbox = |r: &FolderRow| !r.name.eq_ignore_ascii_case("INBOX");
        inbox(a).cmp(&inbox(b)).then_with(|| a.name.cmp(&b.name))
    });
}

/// The text listing of one account.
pub fn render(account: &Account, f: &AccountFolders, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{} ({})", account.name, account.host)?;
    let width = f
        .rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .max("MAILBOX".len());
    writeln!(
        out,
        "  {:<width$}  {:<9}  {:>8}  {:>6}",
        "MAILBOX", "SPECIAL", "MESSAGES", "UNSEEN"
    )?;
    for r in &f.rows {
        let special = r.special_use.map(|s| s.as_attribute()).unwrap_or("");
        let count = |n: Option<u32>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
        // `{:<width$}` pads by characters, so non-ASCII names line up.
        writeln!(
            out,
            "  {:<width$}  {:<9}  {:>8}  {:>6}",
            r.name,
            special,
            count(r.messages),
            count(r.unseen)
        )?;
    }
    writeln!(out, "  trash: {}  archive: {}", f.trash, f.archive)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, special: Option<SpecialUse>, m: Option<u32>) -> FolderRow {
        FolderRow {
            name: name.into(),
            special_use: special,
            messages: m,
            unseen: m.map(|_| 0),
        }
    }

    #[test]
    fn inbox_sorts_first() {
        let mut rows = vec![
            row("Archive", None, Some(1)),
            row("INBOX", None, Some(1)),
            row("Büro", None, Some(1)),
        ];
        sort_rows(&mut rows);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["INBOX", "Archive", "Büro"]);
    }

    #[test]
    fn columns_line_up_with_non_ascii_names() {
        let account = crate::config::Account {
            name: "a".into(),
            host: "h".into(),
            port: 993,
            tls: crate::config::TlsMode::Implicit,
            allow_insecure: false,
            ca_file: None,
            username: "u".into(),
            credentials: crate::config::Credentials::Secret(crate::config::SecretSource::Literal(
                "x".into(),
            )),
            auth: crate::config::AuthMechanism::Login,
            watch: vec!["INBOX".into()],
            max_connections: 4,
            poll_interval: std::time::Duration::from_secs(120),
            trash: None,
            archive: None,
            first_start: crate::config::FirstStart::New,
            span: Default::default(),
        };
        let f = AccountFolders {
            rows: vec![
                row("INBOX", None, Some(4)),
                row("Rüstü/Ölbüro", Some(SpecialUse::Archive), Some(12)),
                row("Lists", None, None),
            ],
            trash: "Trash".into(),
            archive: "Archive".into(),
        };
        let mut out = Vec::new();
        render(&account, &f, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let widths: Vec<usize> = text
            .lines()
            .skip(1)
            .take(4)
            .map(|l| l.chars().count())
            .collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{text}");
        assert!(
            text.contains("Lists") && text.contains("  -       -"),
            "{text}"
        );
    }
}
