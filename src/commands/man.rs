//! `imapsort man`: the manual page imapsort(1), in roff, from the clap definitions.
//!
//! One self-contained page: clap_mangen renders the top level; each subcommand gets a
//! subsection with its synopsis and options (clap_mangen's own SUBCOMMANDS section would point
//! at imapsort-check(1) and friends, pages we do not ship). The hand-written sections at the
//! end (exit status, environment, files) follow RULES.md.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Exit;

/// Writes the page to `out`.
pub fn run(out: &mut dyn Write) -> anyhow::Result<Exit> {
    out.write_all(render()?.as_bytes())?;
    out.flush()?;
    Ok(Exit::Ok)
}

/// The whole page as roff source. Deterministic (no date), so a copy can be checked in.
pub fn render() -> std::io::Result<String> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone()).manual("imapsort manual");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;

    writeln!(page, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // Global options are described once, above; hide their per-command copies.
        let local = sub
            .clone()
            .mut_args(|a| if a.is_global_set() { a.hide(true) } else { a });
        let sub_man = clap_mangen::Man::new(local);
        writeln!(page, ".SS \"imapsort {}\"", sub.get_name())?;
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            writeln!(page, "{}", escape(&about.to_string()))?;
        }
        writeln!(page, ".PP")?;
        page.extend(section_body(|w| sub_man.render_synopsis_section(w))?);
        if sub
            .get_arguments()
            .any(|a| !a.is_hide_set() && !a.is_global_set())
        {
            writeln!(page, ".PP")?;
            page.extend(section_body(|w| sub_man.render_options_section(w))?);
        }
    }
    page.extend_from_slice(TRAILER.as_bytes());
    man.render_version_section(&mut page)?;
    let page = String::from_utf8(page).map_err(std::io::Error::other)?;
    // Each clap_mangen render call starts with the same two-line preamble; keep one.
    Ok(format!("{PREAMBLE}{}", page.replace(PREAMBLE, "")))
}

/// The string-definition preamble roff (the `roff` crate) puts before every rendered piece.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// A section rendered by clap_mangen, without the preamble and its `.SH` heading line.
fn section_body(
    render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    render(&mut buf)?;
    let text = String::from_utf8(buf).map_err(std::io::Error::other)?;
    let mut text = text.replace(PREAMBLE, "");
    if text.starts_with(".SH") {
        let end = text.find('\n').map_or(text.len(), |i| i + 1);
        text.replace_range(..end, "");
    }
    Ok(text.into_bytes())
}

/// Escapes text for a roff text line: backslashes, and a leading `.` or `'`.
fn escape(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.replace('\\', "\\e");
            if line.starts_with(['.', '\'']) {
                format!("\\&{line}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const TRAILER: &str = r#".SH "EXIT STATUS"
.TP
.B 0
success (also: the daemon stopped on SIGTERM or SIGINT)
.TP
.B 2
usage error
.TP
.B 65
bad input data
.TP
.B 66
a message file could not be read (\fBtest\fR)
.TP
.B 69
a server could not be reached or logged in to (also: an \fBauth: oauth2\fR account must sign in again with \fBimapsort login\fR)
.TP
.B 70
internal error
.TP
.B 71
the daemon cannot listen on \fBsettings.metrics_listen\fR (address in use, or not an address of this host)
.TP
.B 74
the state database cannot be written (\fBsweep\fR then changes nothing on the server; the file is named)
.TP
.B 75
try again later: another imapsort process kept a mailbox longer than \fB\-\-wait\fR (\fBsweep\fR), or the sign-in code expired (\fBlogin\fR)
.TP
.B 77
the user refused the sign-in (\fBlogin\fR)
.TP
.B 78
the configuration is invalid
.SH ENVIRONMENT
.TP
.B IMAPSORT_CONFIG
the configuration file when \fB\-c\fR is not given
.TP
.B IMAPSORT_LOG
log filter in RUST_LOG syntax (default \fBinfo\fR), e.g. \fBimapsort=debug,info\fR
.TP
.B IMAPSORT_METRICS_LISTEN
\fBrun\fR: where to serve /metrics and /health, instead of \fBsettings.metrics_listen\fR (as \fB\-\-metrics\-listen\fR)
.TP
.B STATE_DIRECTORY
where the state database lives, unless \fBsettings.state_dir\fR says otherwise (set by systemd's \fBStateDirectory=\fR)
.TP
.B CREDENTIALS_DIRECTORY
relative \fBpassword: { file: NAME }\fR paths are read from here (set by systemd's \fBLoadCredential=\fR)
.TP
.B JOURNAL_STREAM
when it names stderr, logs go to journald with their fields
.TP
.B NOTIFY_SOCKET, WATCHDOG_USEC
systemd readiness, reload and watchdog notification
.SH FILES
.TP
.I $XDG_CONFIG_HOME/imapsort/config.yaml, /etc/imapsort/config.yaml
the configuration (rules, accounts, settings)
.TP
.I $STATE_DIRECTORY/state.sqlite3, ~/.local/state/imapsort/state.sqlite3
the state database: last handled UIDs, applied rules, the action journal
.TP
.I $STATE_DIRECTORY/oauth2/ACCOUNT.json
an \fBauth: oauth2\fR account's refresh token and cached access token (mode 0600), written by \fBimapsort login\fR
.SH "SEE ALSO"
.BR systemctl (1),
.BR journalctl (1),
.BR sqlite3 (1)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_every_subcommand_and_its_options() {
        let page = render().unwrap();
        assert!(page.contains("\n.TH imapsort 1 "), "{}", &page[..80]);
        for sub in Cli::command().get_subcommands() {
            let heading = format!(".SS \"imapsort {}\"", sub.get_name());
            assert!(page.contains(&heading), "{heading} missing");
        }
        for option in [
            "\\-\\-dry\\-run",
            "\\-\\-received",
            "\\-\\-log\\-format",
            "IMAPSORT_LOG",
        ] {
            assert!(page.contains(option), "{option} missing");
        }
        assert!(
            !page.contains("imapsort\\-check(1)"),
            "points at pages we do not ship"
        );
    }

    /// The Debian package ships docs/man/imapsort.1; it must match what `imapsort man` prints.
    #[test]
    fn the_shipped_page_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/man/imapsort.1");
        let shipped = std::fs::read_to_string(path).unwrap();
        assert!(
            shipped == render().unwrap(),
            "docs/man/imapsort.1 is stale: run `cargo run -- man > docs/man/imapsort.1`"
        );
    }

    #[test]
    fn escape_protects_control_lines() {
        let cases = [
            ("plain", "plain"),
            (".starts with a dot", "\\&.starts with a dot"),
            ("'quote", "\\&'quote"),
            ("a\\b", "a\\eb"),
            ("one\n.two", "one\n\\&.two"),
        ];
        for (text, want) in cases {
            assert_eq!(escape(text), want);
        }
    }
}
