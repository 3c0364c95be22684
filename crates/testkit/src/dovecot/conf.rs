//! The `dovecot.conf` the launcher writes: every path inside the instance directory.

use std::fmt::Write as _;

use super::{Dovecot, current_user_name, running_as_root};

/// The post-login capabilities of Dovecot 2.3.19, so single ones can be left out
/// (`imap_capability` replaces the whole list; there is no "minus" syntax).
const DEFAULT_CAPS: &[&str] = &[
    "IMAP4rev1",
    "SASL-IR",
    "LOGIN-REFERRALS",
    "ID",
    "ENABLE",
    "IDLE",
    "SORT",
    "SORT=DISPLAY",
    "THREAD=REFERENCES",
    "THREAD=REFS",
    "THREAD=ORDEREDSUBJECT",
    "MULTIAPPEND",
    "URL-PARTIAL",
    "CATENATE",
    "UNSELECT",
    "CHILDREN",
    "NAMESPACE",
    "UIDPLUS",
    "LIST-EXTENDED",
    "I18NLEVEL=1",
    "CONDSTORE",
    "QRESYNC",
    "ESEARCH",
    "ESORT",
    "SEARCHRES",
    "WITHIN",
    "CONTEXT=SEARCH",
    "LIST-STATUS",
    "BINARY",
    "MOVE",
    "SNIPPET=FUZZY",
    "PREVIEW=FUZZY",
    "PREVIEW",
    "STATUS=SIZE",
    "SAVEDATE",
    "LITERAL+",
    "NOTIFY",
    "SPECIAL-USE",
];

impl Dovecot {
    /// The complete configuration for the current ports and options.
    pub(super) fn config_text(&self) -> String {
        let d = self.dir.path().display();
        let (uid, gid) = self.mail_owner;
        let root = running_as_root(self.dir.path());
        let name = self
            .dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "imapsort".into());
        let layout = if self.opts.separator == '/' {
            ":LAYOUT=fs"
        } else {
            ""
        };
        let mut c = String::new();
        let _ = writeln!(
            c,
            "# Written by imapsort-testkit's private-Dovecot launcher."
        );
        let _ = writeln!(c, "instance_name = {name}");
        let _ = writeln!(c, "base_dir = {d}/run");
        let _ = writeln!(c, "state_dir = {d}/state");
        let _ = writeln!(c, "log_path = {d}/dovecot.log");
        let _ = writeln!(c, "info_log_path = {d}/dovecot.log");
        let _ = writeln!(c, "protocols = imap");
        let _ = writeln!(c, "listen = 127.0.0.1");
        let _ = writeln!(c, "ssl = yes");
        let _ = writeln!(c, "ssl_cert = <{d}/cert.pem");
        let _ = writeln!(c, "ssl_key = <{d}/key.pem");
        let _ = writeln!(c, "disable_plaintext_auth = no");
        let mut mechanisms = String::from("plain login");
        if self.opts.oauth2_introspection_url.is_some() {
            mechanisms.push_str(" xoauth2 oauthbearer");
        }
        for m in &self.opts.extra_mechanisms {
            mechanisms.push(' ');
            mechanisms.push_str(m);
        }
        let _ = writeln!(c, "auth_mechanisms = {mechanisms}");
        let _ = writeln!(c, "auth_failure_delay = 0");
        let _ = writeln!(c, "mail_location = maildir:~/Maildir{layout}");
        let _ = writeln!(c, "first_valid_uid = {uid}\nlast_valid_uid = {uid}");
        let _ = writeln!(c, "first_valid_gid = {gid}\nlast_valid_gid = {gid}");
        if root {
            let _ = writeln!(c, "default_internal_user = dovecot");
            let _ = writeln!(c, "default_login_user = dovenull");
        } else {
            let me = current_user_name().unwrap_or_else(|| uid.to_string());
            let _ = writeln!(c, "default_internal_user = {me}");
            let _ = writeln!(c, "default_login_user = {me}");
        }
        // Passdbs are asked in order: the extra ones (say oauth2) first, for their mechanisms.
        let mut passwd_file = format!("  driver = passwd-file\n  args = scheme=PLAIN {d}/passwd\n");
        if self.opts.oauth2_introspection_url.is_some() {
            // Tokens first, and only for the token mechanisms (DESIGN.md's recipe).
            let _ = writeln!(
                c,
                "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {d}/oauth2.conf\n}}"
            );
        }
        if !self.opts.extra_passdb.is_empty() {
            c.push_str(self.opts.extra_passdb.trim_end());
            c.push('\n');
        }
        if !self.opts.extra_passdb.is_empty() || self.opts.oauth2_introspection_url.is_some() {
            passwd_file.push_str("  mechanisms = plain login\n");
        }
        let _ = writeln!(c, "passdb {{\n{passwd_file}}}");
        let _ = writeln!(
            c,
            "userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/home/%u\n}}"
        );
        let _ = writeln!(
            c,
            "service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {}\n    ssl = yes\n  }}\n}}",
            self.imap_port, self.imaps_port
        );
        let _ = writeln!(
            c,
            "namespace inbox {{\n  inbox = yes\n  separator = {}",
            self.opts.separator
        );
        for (mailbox, use_) in [
            ("Trash", "\\Trash"),
            ("Archive", "\\Archive"),
            ("Junk", "\\Junk"),
            ("Sent", "\\Sent"),
            ("Drafts", "\\Drafts"),
        ] {
            let _ = writeln!(
                c,
                "  mailbox {mailbox} {{\n    special_use = {use_}\n    auto = subscribe\n  }}"
            );
        }
        let _ = writeln!(c, "}}");
        let mut imap_plugins = String::new();
        if let Some(kib) = self.opts.quota_kib {
            let _ = writeln!(c, "mail_plugins = $mail_plugins quota");
            let _ = writeln!(
                c,
                "plugin {{\n  quota = maildir:User quota\n  quota_rule = *:storage={kib}K\n}}"
            );
            imap_plugins.push_str(" imap_quota");
        }
        let _ = writeln!(c, "protocol imap {{\n  mail_max_userip_connections = 1000");
        if !imap_plugins.is_empty() {
            let _ = writeln!(c, "  mail_plugins = $mail_plugins{imap_plugins}");
        }
        if !self.opts.disable_caps.is_empty() {
            let caps: Vec<&str> = DEFAULT_CAPS
                .iter()
                .copied()
                .filter(|cap| {
                    !self
                        .opts
                        .disable_caps
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(cap))
                })
                .collect();
            let _ = writeln!(c, "  imap_capability = {}", caps.join(" "));
        }
        let _ = writeln!(c, "}}");
        c.push_str(&self.opts.extra_conf);
        c.push('\n');
        c
    }

    /// The oauth2 passdb's settings file, when tokens are checked: every login asks the
    /// introspection endpoint (no auth cache), so an expired or revoked token is refused.
    pub(super) fn oauth2_conf_text(&self) -> Option<String> {
        let url = self.opts.oauth2_introspection_url.as_deref()?;
        Some(format!(
            "introspection_mode = post\nintrospection_url = {url}\nusername_attribute = username\nactive_attribute = active\nactive_value = true\nforce_introspection = yes\n"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Dovecot, DovecotOptions, make_dir};
    use std::path::PathBuf;

    /// A handle that was never launched, to look at the configuration it would write.
    fn unlaunched(opts: DovecotOptions) -> Dovecot {
        Dovecot {
            child: None,
            dir: make_dir().unwrap(),
            imap_port: 1143,
            imaps_port: 1993,
            mail_owner: (8, 8),
            opts,
            binary: PathBuf::from("/usr/sbin/dovecot"),
        }
    }

    #[test]
    fn by_default_one_passwd_file_passdb_answers_plain_and_login() {
        let text = unlaunched(DovecotOptions::default()).config_text();
        assert!(text.contains("auth_mechanisms = plain login\n"), "{text}");
        assert_eq!(text.matches("passdb {").count(), 1, "{text}");
        assert!(!text.contains("mechanisms = plain login\n  "), "{text}");
    }

    #[test]
    fn extra_passdbs_come_first_and_leave_plain_login_to_the_passwd_file() {
        let oauth2 = "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = /x/oauth2.conf\n}\n";
        let text = unlaunched(DovecotOptions {
            extra_passdb: oauth2.into(),
            extra_mechanisms: vec!["xoauth2".into(), "oauthbearer".into()],
            extra_conf: "mail_debug = yes\n".into(),
            ..DovecotOptions::default()
        })
        .config_text();
        assert!(
            text.contains("auth_mechanisms = plain login xoauth2 oauthbearer\n"),
            "{text}"
        );
        let extra = text.find("driver = oauth2").unwrap();
        let passwd = text.find("driver = passwd-file").unwrap();
        assert!(extra < passwd, "{text}");
        let passwd_block = &text[passwd..text[passwd..].find('}').unwrap() + passwd];
        assert!(passwd_block.contains("mechanisms = plain login"), "{text}");
        assert!(text.ends_with("mail_debug = yes\n\n"), "{text}");
    }
}
