//! The rule sets of the sweep scenarios, in imapsort's YAML and as the equivalent imapfilter
//! Lua. Equivalent means: run on the same mailbox, both leave the same messages in the same
//! mailboxes with the same `\Flagged` state (the harness checks this after every run).
//!
//! Where imapfilter has no counterpart it is spelled out: a regex needs `match_*` (PCRE, made
//! case-insensitive with `(?i)` as imapsort's regexes are), the `{list_id}` template becomes one
//! line per list, and `Archive/{year}` one line per year.

use std::fmt::Write as _;

use super::corpus::LISTS;

/// One rule in both languages.
pub struct Rule {
    /// The YAML list item, indented for `rules:`.
    pub yaml: String,
    /// Lua statements doing the same to `a.INBOX`.
    pub lua: String,
}

fn rule(yaml: &str, lua: &str) -> Rule {
    Rule {
        yaml: yaml.to_owned(),
        lua: lua.to_owned(),
    }
}

/// `from: ADDRESS` -> `move: MAILBOX`.
fn from_move(name: &str, addr: &str, mailbox: &str) -> Rule {
    Rule {
        yaml: format!(
            "  - name: {name}\n    when: {{ from: {addr} }}\n    then: {{ move: \"{mailbox}\" }}\n"
        ),
        lua: format!("a.INBOX:contain_from('{addr}'):move_messages(a['{mailbox}'])"),
    }
}

/// `subject: { regex }` -> `move`.
fn subject_regex(name: &str, re: &str, mailbox: &str) -> Rule {
    Rule {
        yaml: format!(
            "  - name: {name}\n    when: {{ subject: {{ regex: '{re}' }} }}\n    then: {{ move: \"{mailbox}\" }}\n"
        ),
        lua: format!(
            "a.INBOX:match_subject('(?i){}'):move_messages(a['{mailbox}'])",
            re.replace('\\', "\\\\")
        ),
    }
}

/// Scenario 1: the sender 30 % of the mail comes from.
pub fn single() -> Vec<Rule> {
    vec![from_move(
        "github",
        "notifications@github.example",
        "Dev/GitHub",
    )]
}

/// Scenario 2: thirty rules of the kinds people write.
pub fn thirty() -> Vec<Rule> {
    let mut lists_lua = String::new();
    for id in LISTS {
        let _ = writeln!(
            lists_lua,
            "a.INBOX:contain_field('List-Id', '{id}'):move_messages(a['Lists/{id}'])"
        );
    }
    let mut years_lua = String::from("local old = a.INBOX:is_older(365) * a.INBOX:is_seen()\n");
    for y in 2018..2028 {
        let _ = writeln!(
            years_lua,
            "old:arrived_since('01-Jan-{y}'):arrived_before('01-Jan-{}'):move_messages(a['Archive/{y}'])",
            y + 1
        );
    }
    vec![
        from_move("github", "notifications@github.example", "Dev/GitHub"),
        rule(
            "  - name: ci failures\n    when: { all: [{ from: ci@build.example }, { subject: { regex: 'build #[0-9]+ (failed|errored)' } }] }\n    then: [{ flag: \\Flagged }, { move: Dev/CI }]\n",
            "local bad = a.INBOX:contain_from('ci@build.example'):match_subject('(?i)build #[0-9]+ (failed|errored)')\nbad:mark_flagged()\nbad:move_messages(a['Dev/CI'])",
        ),
        from_move("ci", "ci@build.example", "Dev/CI"),
        from_move("jira", "jira@corp.example", "Dev/Jira"),
        subject_regex("alerts", "^\\[(alerts|ops)\\]", "Ops/Alerts"),
        subject_regex("security", "security (advisory|notice) [0-9]{4}", "Security"),
        rule(
            "  - name: invoices\n    when: { subject: { regex: 'invoice #[0-9]+' } }\n    then: [{ flag: $Invoice }, { move: Finance/Invoices }]\n",
            "local inv = a.INBOX:match_subject('(?i)invoice #[0-9]+')\ninv:add_flags({'$Invoice'})\ninv:move_messages(a['Finance/Invoices'])",
        ),
        rule(
            "  - name: billing\n    when: { from: { regex: '(billing|payments)@[a-z]+\\.example' } }\n    then: { move: Finance/Billing }\n",
            "a.INBOX:match_from('(?i)(billing|payments)@[a-z]+\\\\.example'):move_messages(a['Finance/Billing'])",
        ),
        from_move("bank", "statements@bank.example", "Finance/Bank"),
        subject_regex("shipping", "(shipped|delivered|out for delivery)", "Shopping/Shipping"),
        rule(
            "  - name: receipts\n    when: { subject: receipt }\n    then: { move: Shopping/Receipts }\n",
            "a.INBOX:contain_subject('receipt'):move_messages(a['Shopping/Receipts'])",
        ),
        from_move("weekly", "news@nl-weekly.example", "Newsletters/Weekly"),
        from_move("medium", "digest@medium.example", "Newsletters/Medium"),
        from_move("substack", "hello@substack.example", "Newsletters/Substack"),
        rule(
            "  - name: marketing\n    when: { header: { name: X-Mailer, regex: 'mailchimp|sendgrid' } }\n    then: { move: Newsletters/Marketing }\n",
            "a.INBOX:match_field('X-Mailer', '(?i)mailchimp|sendgrid'):move_messages(a['Newsletters/Marketing'])",
        ),
        from_move("social", "notify@social.example", "Social"),
        from_move("friends", "updates@friends.example", "Social"),
        from_move("travel", "booking@travel.example", "Travel"),
        from_move("school", "office@school.example", "Family/School"),
        subject_regex("calendar", "^(invitation|accepted|declined):", "Calendar"),
        rule(
            "  - name: team\n    when: { to: { regex: 'team-[a-z]+@corp\\.example' } }\n    then: { move: Work/Team }\n",
            "a.INBOX:match_to('(?i)team-[a-z]+@corp\\\\.example'):move_messages(a['Work/Team'])",
        ),
        rule(
            "  - name: audit\n    when: { cc: { regex: 'audit[0-9]*@corp\\.example' } }\n    then: { move: Work/Audit }\n",
            "a.INBOX:match_cc('(?i)audit[0-9]*@corp\\\\.example'):move_messages(a['Work/Audit'])",
        ),
        Rule {
            yaml: "  - name: lists\n    when: { list_id: { exists: true } }\n    then: { move: \"Lists/{list_id}\" }\n".into(),
            lua: lists_lua,
        },
        rule(
            "  - name: boss\n    when: { from: boss@corp.example }\n    then: { flag: \\Flagged }\n",
            "a.INBOX:contain_from('boss@corp.example'):mark_flagged()",
        ),
        rule(
            "  - name: urgent\n    when: { subject: urgent }\n    then: { flag: \\Flagged }\n",
            "a.INBOX:contain_subject('urgent'):mark_flagged()",
        ),
        rule(
            "  - name: meetings\n    when: { all: [{ subject: meeting }, { seen: false }] }\n    then: { flag: \\Flagged }\n",
            "(a.INBOX:contain_subject('meeting') * a.INBOX:is_unseen()):mark_flagged()",
        ),
        rule(
            "  - name: large\n    when: { size: { over: 100K } }\n    then: { move: Large }\n",
            "a.INBOX:is_larger(102400):move_messages(a['Large'])",
        ),
        Rule {
            yaml: "  - name: old read\n    when: { all: [{ older_than: 365d }, { seen: true }] }\n    then: { archive: \"Archive/{year}\" }\n".into(),
            lua: years_lua,
        },
        rule(
            "  - name: old unread\n    when: { all: [{ older_than: 730d }, { seen: false }] }\n    then: { move: Archive/Unread }\n",
            "(a.INBOX:is_older(730) * a.INBOX:is_unseen()):move_messages(a['Archive/Unread'])",
        ),
        rule(
            "  - name: bulk\n    when: { header: { name: Precedence, contains: bulk } }\n    then: { move: Newsletters/Bulk }\n",
            "a.INBOX:contain_field('Precedence', 'bulk'):move_messages(a['Newsletters/Bulk'])",
        ),
    ]
}

/// The imapsort configuration file for one account on the private server.
pub fn imapsort_yaml(port: u16, user: &str, state_dir: &std::path::Path, rules: &[Rule]) -> String {
    let mut y = format!(
        "settings:\n  state_dir: {}\naccounts:\n  - name: bench\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    \
         allow_insecure: true\n    username: {user}\n    password: pass\nrules:\n",
        state_dir.display()
    );
    for r in rules {
        y.push_str(&r.yaml);
    }
    y
}

/// The imapfilter configuration doing the same.
pub fn imapfilter_lua(port: u16, user: &str, rules: &[Rule]) -> String {
    let mut l = String::from(
        "options.timeout = 600\noptions.create = true\noptions.subscribe = true\n\
         options.info = false\noptions.certificates = false\noptions.starttls = false\n",
    );
    let _ = writeln!(
        l,
        "a = IMAP {{ server = '127.0.0.1', port = {port}, username = '{user}', password = 'pass' }}"
    );
    // `;` after each: a statement starting with `(` would otherwise call the previous one's
    // result.
    for r in rules {
        let _ = writeln!(l, "{};", r.lua);
    }
    l
}
