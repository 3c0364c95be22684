//! The authenticated session: every command under a timeout, every tagged status checked,
//! every response read to the end; unsolicited data gives hints (new mail) and server alerts
//! go to the log.
//!
//! Mailbox arguments are always the config form (UTF-8, `/`-separated); the session translates
//! them to the server's delimiter and modified UTF-7.

use std::collections::HashSet;

use async_imap::imap_proto::{MailboxDatum, Response, ResponseCode};

use super::ImapError;
use super::item::{FetchedItem, merge_by_uid};
use super::name;
use super::response::{capability_names, wait_tagged, wait_tagged_with};
use super::transport::{OwnedResponse, Transport};
use super::uidset::{CopyUid, LONG_SET_CHARS, MAX_SET_CHARS};

/// How much of a server's ALERT text the log line keeps.
const ALERT_CHARS: usize = 300;

/// What SELECT / EXAMINE report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Changes when the server renumbers UIDs: all stored UIDs of the mailbox are void then.
    pub uid_validity: Option<u32>,
    /// The UID the next arriving message will get at least.
    pub uid_next: Option<u32>,
    /// Messages in the mailbox.
    pub exists: u32,
    /// CONDSTORE's HIGHESTMODSEQ, when the server sent it.
    pub highest_modseq: Option<u64>,
    /// EXAMINE, or a server that only grants read access.
    pub read_only: bool,
}

/// What STATUS reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: Option<u32>,
    pub unseen: Option<u32>,
    pub uid_next: Option<u32>,
    pub uid_validity: Option<u32>,
}

/// An authenticated IMAP connection.
pub struct Session {
    /// The framed connection.
    transport: Transport,
    /// For errors and logs.
    account: String,
    /// Upper-cased capability names, refreshed after STARTTLS and login.
    capabilities: HashSet<String>,
    /// The server's hierarchy delimiter, from `LIST "" ""` (outer None: not asked yet).
    delimiter: Option<Option<char>>,
    /// Config-form name of the selected mailbox.
    selected: Option<String>,
    /// Untagged data no command asked for.
    hints: Hints,
    /// After a timeout, EOF, or garbage the stream is out of step: every later command fails
    /// fast with `ConnectionLost` instead of reading someone else's response.
    broken: bool,
    /// The longest UID set one command line carries ([`set_chars`](Self::set_chars)).
    set_chars: usize,
    /// The greeting named Dovecot ([`is_dovecot`](Self::is_dovecot)).
    dovecot: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.account)
            .field("selected", &self.selected)
            .finish_non_exhaustive()
    }
}

/// What untagged data no command asked for says.
#[derive(Debug, Default)]
struct Hints {
    /// Set by EXISTS/RECENT: new mail may have arrived (a hint; callers re-search by UID).
    new_data: bool,
}

impl Hints {
    /// Notes new mail; logs an `[ALERT]` (RFC 3501 says it must reach the user: a quota
    /// warning, a password about to expire), once per response, with the account's name.
    fn note(&mut self, account: &str, r: &OwnedResponse) {
        match r {
            Response::MailboxData(MailboxDatum::Exists(_)) => self.new_data = true,
            Response::MailboxData(MailboxDatum::Recent(n)) if *n > 0 => self.new_data = true,
            Response::Data { outcome, .. } if matches!(outcome.code, Some(ResponseCode::Alert)) => {
                let text = outcome.information.as_deref().unwrap_or("");
                tracing::warn!(account = %account, alert = %printable(text), "server alert");
            }
            _ => {}
        }
    }
}

/// Server text as a log value: control characters (a hostile server's escape sequences) as
/// `?`, cut to [`ALERT_CHARS`] characters.
fn printable(text: &str) -> String {
    text.chars()
        .take(ALERT_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The COPYUID response code among a command's responses (tagged or untagged), expanded.
fn copy_uid(responses: &[OwnedResponse]) -> Option<CopyUid> {
    use async_imap::imap_proto::rfc4315::UidSetMember;
    let expand = |set: &[UidSetMember]| -> Vec<u32> {
        let mut out = Vec::new();
        for m in set {
            match m {
                UidSetMember::Uid(u) => out.push(*u),
                UidSetMember::UidRange(r) => {
                    let (a, b) = (*r.start(), *r.end());
                    out.extend(a.min(b)..=a.max(b));
                }
            }
        }
        out
    };
    responses.iter().find_map(|r| match r {
        Response::Data { outcome, .. } | Response::Done { outcome, .. } => match &outcome.code {
            Some(ResponseCode::CopyUid(v, src, dst)) => CopyUid::new(*v, expand(src), expand(dst)),
            _ => None,
        },
        _ => None,
    })
}

/// For [`Session::run_keeping`]: all but the expunge notices (`EXPUNGE`, `VANISHED`), which
/// say only that messages went: what a `UID MOVE` or `UID EXPUNGE` was sent to do.
fn not_expunge(r: &OwnedResponse) -> bool {
    !matches!(r, Response::Expunge(_) | Response::Vanished { .. })
}

/// The label of a command for errors: its name, never its arguments (LOGIN has a password).
fn command_label(command: &str) -> String {
    let mut words = command.split_whitespace();
    let first = words.next().unwrap_or("").to_ascii_uppercase();
    if first == "UID" {
        format!("UID {}", words.next().unwrap_or("").to_ascii_uppercase())
    } else {
        first
    }
}

impl Session {
    pub(crate) fn new(transport: Transport, account: String) -> Session {
        Session {
            transport,
            account,
            capabilities: HashSet::new(),
            delimiter: None,
            selected: None,
            hints: Hints::default(),
            broken: false,
            set_chars: MAX_SET_CHARS,
            dovecot: false,
        }
    }

    /// The longest UID set (in characters) to put on one command line: [`MAX_SET_CHARS`], or
    /// [`LONG_SET_CHARS`] on a server whose greeting says it is Dovecot, which takes 64 KiB
    /// lines unless its administrator lowered `imap_max_line_length`.
    pub fn set_chars(&self) -> usize {
        self.set_chars
    }

    /// Called with the greeting's text: a Dovecot gets the long line budget.
    pub(crate) fn note_greeting(&mut self, text: &str) {
        if text.to_ascii_lowercase().contains("dovecot") {
            self.set_chars = LONG_SET_CHARS;
            self.dovecot = true;
        }
    }

    /// Whether the greeting said the server is Dovecot (whose cache the pass primes before
    /// a header search: `crate::pass`).
    pub fn is_dovecot(&self) -> bool {
        self.dovecot
    }

    /// The server answered `BAD` to a line longer than [`MAX_SET_CHARS`]: from now on this
    /// session keeps to that budget. Returns whether the budget was long until now (so the
    /// caller resends the set in shorter lines).
    pub(crate) fn line_refused(&mut self, set_len: usize) -> bool {
        if set_len <= MAX_SET_CHARS {
            return false;
        }
        if self.set_chars > MAX_SET_CHARS {
            tracing::info!(
                account = %self.account,
                refused = set_len,
                now = MAX_SET_CHARS,
                "the server refused a long command line; using shorter lines on this connection"
            );
            self.set_chars = MAX_SET_CHARS;
        }
        true
    }

    pub(crate) fn transport_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// The account this session belongs to.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The mailbox currently selected (config form).
    pub fn selected(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// Run any command, read every response to its tagged one, check the status. Returns the
    /// untagged responses (the tagged one last). EXISTS/RECENT also set the new-mail hint
    /// ([`take_new_data`](Self::take_new_data)); an `[ALERT]` is logged.
    pub async fn run_command(&mut self, command: &str) -> Result<Vec<OwnedResponse>, ImapError> {
        self.run_keeping(command, |_| true).await
    }

    /// As [`run_command`](Self::run_command), but an untagged response `keep` refuses is
    /// noted and dropped as it arrives instead of returned: a `UID MOVE` or `UID EXPUNGE` of
    /// 250,000 messages is answered by as many `EXPUNGE`s (30 MB held, for nothing).
    async fn run_keeping(
        &mut self,
        command: &str,
        keep: fn(&OwnedResponse) -> bool,
    ) -> Result<Vec<OwnedResponse>, ImapError> {
        self.ensure_usable()?;
        let label = command_label(command);
        let Session {
            transport,
            hints,
            account,
            ..
        } = self;
        let responses = async {
            let tag = transport.send(command).await?;
            wait_tagged_with(transport, &tag, &label, |r| {
                hints.note(account, r);
                keep(r)
            })
            .await
        }
        .await;
        let responses = responses.map_err(|e| self.poison(e));
        let responses = match responses {
            Ok(r) => r,
            Err(e) => {
                if let ImapError::No { .. } | ImapError::Bad { .. } = &e {
                    tracing::debug!(account = %self.account, command = %label, error = %e, "command failed");
                }
                return Err(e);
            }
        };
        Ok(responses)
    }

    /// Whether the connection is still in step (no timeout, EOF or garbage seen).
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    pub(crate) fn ensure_usable(&self) -> Result<(), ImapError> {
        if self.broken {
            return Err(ImapError::ConnectionLost(Some(
                "the connection failed earlier; reconnect".into(),
            )));
        }
        Ok(())
    }

    /// Remember a connection-fatal error so later commands fail fast.
    pub(crate) fn poison(&mut self, e: ImapError) -> ImapError {
        if e.is_connection_fatal() {
            self.broken = true;
        }
        e
    }

    /// Whether EXISTS/RECENT arrived since the last call (and reset the flag).
    pub fn take_new_data(&mut self) -> bool {
        std::mem::take(&mut self.hints.new_data)
    }

    pub(crate) fn push_unsolicited(&mut self, r: &OwnedResponse) {
        self.hints.note(&self.account, r);
    }

    /// Ask for CAPABILITY again (done after STARTTLS and after login).
    pub async fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let responses = self.run_command("CAPABILITY").await?;
        self.capabilities = capability_names(&responses).into_iter().collect();
        Ok(())
    }

    /// The capabilities (upper-cased), as of the last refresh.
    pub fn capabilities(&self) -> &HashSet<String> {
        &self.capabilities
    }

    /// Case-insensitive capability test (`"MOVE"`, `"UIDPLUS"`, `"X-GM-EXT-1"`).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.contains(&name.to_ascii_uppercase())
    }

    /// Gmail (X-GM-EXT-1): `trash` goes to `\Trash`, `label` uses X-GM-LABELS.
    pub fn is_gmail(&self) -> bool {
        self.has_capability("X-GM-EXT-1")
    }

    /// The server's hierarchy delimiter (`LIST "" ""`), asked once per session.
    pub async fn delimiter(&mut self) -> Result<Option<char>, ImapError> {
        if let Some(d) = self.delimiter {
            return Ok(d);
        }
        let responses = self.run_command("LIST \"\" \"\"").await?;
        let d = responses.iter().find_map(|r| match r {
            Response::MailboxData(MailboxDatum::List(l)) => {
                Some(l.delimiter.as_deref().and_then(|d| d.chars().next()))
            }
            _ => None,
        });
        let d = d.unwrap_or(Some('/'));
        self.delimiter = Some(d);
        Ok(d)
    }

    /// A config-form name as a quoted wire argument.
    pub async fn wire_arg(&mut self, name: &str) -> Result<String, ImapError> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Ok("INBOX".into());
        }
        let delim = self.delimiter().await?;
        let wire = name::to_wire(name, delim)?;
        super::auth::quote(&wire).ok_or(ImapError::InvalidArgument("mailbox name"))
    }

    /// SELECT (read-write).
    pub async fn select(&mut self, mailbox: &str) -> Result<MailboxInfo, ImapError> {
        self.open("SELECT", mailbox).await
    }

    /// EXAMINE (read-only: flags do not change, `\Recent` is kept).
    pub async fn examine(&mut self, mailbox: &str) -> Result<MailboxInfo, ImapError> {
        self.open("EXAMINE", mailbox).await
    }

    async fn open(&mut self, verb: &str, mailbox: &str) -> Result<MailboxInfo, ImapError> {
        let arg = self.wire_arg(mailbox).await?;
        self.selected = None;
        let responses = self.run_command(&format!("{verb} {arg}")).await?;
        let mut info = MailboxInfo {
            read_only: verb == "EXAMINE",
            ..MailboxInfo::default()
        };
        for r in &responses {
            match r {
                Response::MailboxData(MailboxDatum::Exists(n)) => info.exists = *n,
                Response::Data { outcome, .. } | Response::Done { outcome, .. } => {
                    match &outcome.code {
                        Some(ResponseCode::UidValidity(v)) => info.uid_validity = Some(*v),
                        Some(ResponseCode::UidNext(v)) => info.uid_next = Some(*v),
                        Some(ResponseCode::HighestModSeq(v)) => info.highest_modseq = Some(*v),
                        Some(ResponseCode::ReadOnly) => info.read_only = true,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        // Whatever SELECT said about EXISTS is the baseline, not news.
        self.hints = Hints::default();
        self.selected = Some(mailbox.to_string());
        Ok(info)
    }

    /// `UID SEARCH <criteria>`: the matching UIDs, ascending. `criteria` is raw IMAP syntax.
    pub async fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>, ImapError> {
        let responses = self.run_command(&format!("UID SEARCH {criteria}")).await?;
        let mut uids: Vec<u32> = responses
            .iter()
            .filter_map(|r| match r {
                Response::MailboxData(MailboxDatum::Search(ids)) => Some(ids.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// `UID FETCH <set> <items>`: one item per message, its responses merged by UID (see
    /// [`merge_by_uid`]; unsolicited flag updates of other messages may be among them: match
    /// by UID, and check that an item holds what was asked for). Nothing sets `\Seen` here
    /// unless `items` says `BODY[...]` instead of `BODY.PEEK[...]`.
    pub async fn uid_fetch(
        &mut self,
        uid_set: &str,
        items: &str,
    ) -> Result<Vec<FetchedItem>, ImapError> {
        let responses = self
            .run_command(&format!("UID FETCH {uid_set} {items}"))
            .await?;
        Ok(merge_by_uid(responses))
    }

    /// Sends `UID FETCH <set> <items>` without waiting for the answer (pipelining: the server
    /// reads the next messages while the client works on the last ones). Returns the tag to
    /// hand to [`finish_uid_fetch`](Self::finish_uid_fetch). Every fetch started must be
    /// finished, in the order started, before any other command is sent.
    pub async fn start_uid_fetch(
        &mut self,
        uid_set: &str,
        items: &str,
    ) -> Result<String, ImapError> {
        self.ensure_usable()?;
        let sent = self
            .transport
            .send(&format!("UID FETCH {uid_set} {items}"))
            .await;
        sent.map_err(|e| self.poison(e))
    }

    /// The answer to a fetch [`start_uid_fetch`](Self::start_uid_fetch) sent: as
    /// [`uid_fetch`](Self::uid_fetch) returns it.
    pub async fn finish_uid_fetch(&mut self, tag: &str) -> Result<Vec<FetchedItem>, ImapError> {
        self.ensure_usable()?;
        let responses = wait_tagged(&mut self.transport, tag, "UID FETCH").await;
        let responses = responses.map_err(|e| self.poison(e))?;
        responses
            .iter()
            .for_each(|r| self.hints.note(&self.account, r));
        Ok(merge_by_uid(responses))
    }

    /// `UID STORE <set> <query>`, e.g. `+FLAGS.SILENT (\Seen)`. A NO is an error.
    pub async fn uid_store(&mut self, uid_set: &str, query: &str) -> Result<(), ImapError> {
        self.run_keeping(&format!("UID STORE {uid_set} {query}"), not_expunge)
            .await
            .map(|_| ())
    }

    /// `UID COPY <set> <mailbox>`; the server's COPYUID (UIDPLUS), when it sent one.
    pub async fn uid_copy(
        &mut self,
        uid_set: &str,
        mailbox: &str,
    ) -> Result<Option<CopyUid>, ImapError> {
        let arg = self.wire_arg(mailbox).await?;
        let responses = self
            .run_keeping(&format!("UID COPY {uid_set} {arg}"), not_expunge)
            .await?;
        Ok(copy_uid(&responses))
    }

    /// `UID MOVE <set> <mailbox>` (RFC 6851); `Unsupported` without the MOVE capability. The
    /// server's COPYUID (RFC 6851 sends it untagged before the expunges), when it sent one.
    pub async fn uid_move(
        &mut self,
        uid_set: &str,
        mailbox: &str,
    ) -> Result<Option<CopyUid>, ImapError> {
        if !self.has_capability("MOVE") {
            return Err(ImapError::Unsupported("MOVE"));
        }
        let arg = self.wire_arg(mailbox).await?;
        let responses = self
            .run_keeping(&format!("UID MOVE {uid_set} {arg}"), not_expunge)
            .await?;
        Ok(copy_uid(&responses))
    }

    /// Add Gmail labels (`UID STORE <set> +X-GM-LABELS (...)`); labels are config-form names
    /// (`/` hierarchy, UTF-8) sent in modified UTF-7 as Gmail expects. `Unsupported` without
    /// X-GM-EXT-1.
    pub async fn uid_add_gmail_labels(
        &mut self,
        uid_set: &str,
        labels: &[String],
    ) -> Result<(), ImapError> {
        self.uid_gmail_labels(uid_set, true, labels).await
    }

    /// Add (`add`) or remove Gmail labels: `UID STORE <set> +X-GM-LABELS.SILENT (...)` or
    /// `-X-GM-LABELS.SILENT`, as [`uid_add_gmail_labels`](Self::uid_add_gmail_labels).
    pub async fn uid_gmail_labels(
        &mut self,
        uid_set: &str,
        add: bool,
        labels: &[String],
    ) -> Result<(), ImapError> {
        if !self.is_gmail() {
            return Err(ImapError::Unsupported("X-GM-LABELS (not a Gmail server)"));
        }
        let mut quoted = Vec::with_capacity(labels.len());
        for l in labels {
            let wire = name::mutf7_encode(l);
            quoted.push(super::auth::quote(&wire).ok_or(ImapError::InvalidArgument("label"))?);
        }
        let sign = if add { '+' } else { '-' };
        self.run_command(&format!(
            "UID STORE {uid_set} {sign}X-GM-LABELS.SILENT ({})",
            quoted.join(" ")
        ))
        .await
        .map(|_| ())
    }

    /// `UID EXPUNGE <set>` (UIDPLUS): removes exactly those messages, never a mailbox-wide
    /// EXPUNGE. `Unsupported` without UIDPLUS.
    pub async fn uid_expunge(&mut self, uid_set: &str) -> Result<(), ImapError> {
        if !self.has_capability("UIDPLUS") {
            return Err(ImapError::Unsupported("UIDPLUS"));
        }
        self.run_keeping(&format!("UID EXPUNGE {uid_set}"), not_expunge)
            .await
            .map(|_| ())
    }

    /// NOOP: keeps the connection alive and collects pending EXISTS/EXPUNGE.
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        self.run_command("NOOP").await.map(|_| ())
    }

    /// LOGOUT; the BYE before the tagged OK is expected, and so is the server closing right after.
    pub async fn logout(mut self) -> Result<(), ImapError> {
        match self.run_command("LOGOUT").await {
            Ok(_) | Err(ImapError::ConnectionLost(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A session on one end of a pipe; the other end answers each command line with
    /// `answer(tag)`.
    fn scripted(answer: fn(&str) -> String) -> Session {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n @ 1..) = server.read(&mut buf).await {
                let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                let tag = line.split(' ').next().unwrap_or_default().to_owned();
                if server.write_all(answer(&tag).as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        let t = Transport::new(Box::new(client), std::time::Duration::from_secs(5));
        let mut s = Session::new(t, "a".into());
        s.capabilities
            .extend(["MOVE".to_owned(), "UIDPLUS".to_owned()]);
        s.delimiter = Some(Some('/'));
        s
    }

    #[tokio::test]
    async fn a_move_keeps_its_copyuid_and_drops_the_expunges() {
        let mut s = scripted(|tag| {
            let mut a = "* OK [COPYUID 9 1:3 11:13] moving\r\n".to_owned();
            a += &"* 1 EXPUNGE\r\n".repeat(3);
            a + "* 5 EXISTS\r\n" + tag + " OK moved\r\n"
        });
        let copied = s
            .uid_move("1:3", "Archive")
            .await
            .unwrap()
            .expect("COPYUID");
        assert_eq!(copied.uid_validity, 9);
        assert_eq!(copied.pairs, [(1, 11), (2, 12), (3, 13)]);
        let kept = s.run_keeping("UID EXPUNGE 4", not_expunge).await.unwrap();
        assert!(
            kept.iter()
                .all(|r| !matches!(r, Response::Expunge(_) | Response::Vanished { .. })),
            "{kept:?}"
        );
        assert!(kept.iter().any(|r| matches!(r, Response::MailboxData(_))));
        assert!(s.take_new_data());
    }

    /// The log lines written while the returned guard lives (this thread only).
    fn captured() -> (
        std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
        tracing::subscriber::DefaultGuard,
    ) {
        #[derive(Clone)]
        struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines(Default::default());
        let out = lines.0.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || lines.clone())
            .with_ansi(false)
            .finish();
        (out, tracing::subscriber::set_default(subscriber))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_server_alert_reaches_the_log_with_its_account_and_without_control_characters() {
        let (lines, _guard) = captured();
        let mut s = scripted(|tag| {
            format!("* OK [ALERT] Mailbox 95% full\x1b[2J, clean up\r\n{tag} OK done\r\n")
        });
        s.noop().await.unwrap();
        let mut s = scripted(|tag| format!("* 3 EXISTS\r\n{tag} OK done\r\n"));
        s.noop().await.unwrap();
        assert!(s.take_new_data());
        let log = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        let alerts: Vec<&str> = log.lines().filter(|l| l.contains("server alert")).collect();
        assert_eq!(alerts.len(), 1, "{log}");
        assert!(alerts[0].contains("WARN"), "{log}");
        assert!(alerts[0].contains("account=a"), "{log}");
        assert!(
            alerts[0].contains("Mailbox 95% full?[2J, clean up"),
            "{log}"
        );
        assert!(!log.contains('\x1b'), "{log}");
    }

    #[test]
    fn alert_text_is_cut_and_made_printable() {
        assert_eq!(printable("a\tb\x07c"), "a?b?c");
        assert_eq!(printable(&"x".repeat(1000)).len(), ALERT_CHARS);
    }

    #[test]
    fn labels_never_carry_arguments() {
        for (cmd, want) in [
            ("LOGIN \"me\" \"secret\"", "LOGIN"),
            ("uid store 1:3 +FLAGS (\\Seen)", "UID STORE"),
            ("SELECT \"INBOX\"", "SELECT"),
        ] {
            assert_eq!(command_label(cmd), want);
        }
    }
}
