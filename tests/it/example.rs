//! `rules.example.yaml` is valid and does what its comments say, message by message.

use std::path::Path;

use imapsort::rules::ast::Trigger;
use imapsort::rules::{EvalContext, FinalAction, FinalKind, MessageFacts, MessageView, Plan};

fn config() -> imapsort::config::Config {
    imapsort::config::load(Path::new("rules.example.yaml"))
        .unwrap_or_else(|e| panic!("rules.example.yaml is invalid:\n{e}"))
}

/// Evaluate one message in `mailbox` of the example's account, both triggers.
fn plan_for(raw: &str, flags: &[&str], received: &str, mailbox: &str) -> (Vec<String>, Plan) {
    let config = config();
    let account = &config.accounts[0];
    let view = MessageView::parse(
        raw.as_bytes(),
        MessageFacts {
            flags: flags.iter().map(|f| f.to_string()).collect(),
            size: raw.len() as u64,
            received: Some(received.parse().expect("received")),
        },
    );
    let ctx = EvalContext {
        account: Some(&account.name),
        mailbox,
        watch: &account.watch,
        trigger: None,
        now: "2026-03-10T12:00:00Z".parse().expect("now"),
        trash: "Trash",
        archive: "Archive",
        delimiter: Some('/'),
        applied: None,
    };
    let ev = config.rules.evaluate(&view, &ctx);
    (ev.matched.into_iter().map(|m| m.rule).collect(), ev.plan)
}

fn moved(to: &str) -> Option<FinalAction> {
    Some(FinalAction {
        action: FinalKind::Move,
        mailbox: Some(to.into()),
    })
}

const RECENT: &str = "2026-03-10T09:00:00+01:00[+01:00]";

#[test]
fn the_example_is_valid_and_has_both_triggers() {
    let config = config();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert!(config.rules.len() >= 9);
    assert!(config.rules.has_trigger(Trigger::New));
    assert!(config.rules.has_trigger(Trigger::Sweep));
}

#[test]
fn boss_is_flagged_and_stops() {
    let (matched, plan) = plan_for(
        "From: The Boss <Boss@Work.Example>\nSubject: invoice review\nList-Id: <x.example>\n\n",
        &[],
        RECENT,
        "INBOX",
    );
    assert_eq!(matched, ["boss"]);
    assert_eq!(plan.add_flags, ["\\Flagged"]);
    assert_eq!(plan.final_action, None);
}

#[test]
fn mailing_lists_go_to_their_folders() {
    let (matched, plan) = plan_for(
        "From: ann@contrib.example\nSubject: [dev] hello\nList-Id: Developers <dev.lists.example.org>\n\n",
        &[],
        RECENT,
        "INBOX",
    );
    assert_eq!(matched, ["mailing lists"]);
    assert_eq!(plan.final_action, moved("Lists/dev.lists.example.org"));

    let (_, plan) = plan_for(
        "From: news@example.org\nSubject: release\nList-Id: <announce.example.org>\n\n",
        &[],
        "2025-12-31T23:30:00-05:00[-05:00]",
        "INBOX",
    );
    assert_eq!(plan.final_action, moved("Lists/announce/2025"));
}

#[test]
fn invoices_are_keyworded_and_copied() {
    let (matched, plan) = plan_for(
        "From: shop@store.example\nSubject: Your receipt #1234\n\n",
        &[],
        RECENT,
        "INBOX",
    );
    assert_eq!(matched, ["invoices"]);
    assert_eq!(plan.add_flags, ["$Invoice"]);
    assert_eq!(plan.copy, ["Accounting/2026"]);
    assert_eq!(plan.final_action, None);
}

#[test]
fn notifications_are_sorted_by_domain() {
    let (matched, plan) = plan_for(
        "From: GitHub <notifications@github.com>\nSubject: [repo] PR opened\n\n",
        &[],
        RECENT,
        "INBOX",
    );
    assert_eq!(matched, ["notifications"]);
    assert_eq!(plan.final_action, moved("Notifications/github.com"));

    let (_, plan) = plan_for(
        "From: Monitor <monitor@alerts.example.com>\nSubject: disk\n\n",
        &[],
        RECENT,
        "INBOX",
    );
    assert_eq!(plan.final_action, moved("Notifications/alerts.example.com"));
}

#[test]
fn newsletters_leave_the_inbox() {
    let (matched, plan) = plan_for(
        "From: letters@shop.example\nSubject: spring sale\nList-Unsubscribe: <mailto:u@shop.example>\n\n",
        &[],
        RECENT,
        "INBOX",
    );
    assert_eq!(matched, ["newsletters"]);
    assert_eq!(plan.final_action, moved("Newsletters"));
}

#[test]
fn big_attachments_are_flagged() {
    let mut raw = String::from(
        "From: friend@example.org\nSubject: photos\nContent-Type: multipart/mixed; boundary=b\n\n\
         --b\n\nsee attached\n--b\nContent-Type: image/jpeg\n\
         Content-Disposition: attachment; filename=holiday.jpg\n\n",
    );
    raw.push_str(&"A".repeat(11 << 20));
    raw.push_str("\n--b--\n");
    let (matched, plan) = plan_for(&raw, &[], RECENT, "INBOX");
    assert_eq!(matched, ["big attachments"]);
    assert_eq!(plan.add_flags, ["$Big"]);
}

#[test]
fn old_read_mail_is_archived_by_year_and_flagged_mail_stays() {
    let raw = "From: friend@example.org\nSubject: lunch?\n\n";
    let (matched, plan) = plan_for(
        raw,
        &["\\Seen"],
        "2025-11-02T10:00:00+01:00[+01:00]",
        "INBOX",
    );
    assert_eq!(matched, ["archive read mail older than 30 days"]);
    assert_eq!(
        plan.final_action,
        Some(FinalAction {
            action: FinalKind::Archive,
            mailbox: Some("Archive/2025".into()),
        })
    );
    let (matched, plan) = plan_for(
        raw,
        &["\\Seen", "\\Flagged"],
        "2025-11-02T10:00:00+01:00[+01:00]",
        "INBOX",
    );
    assert!(matched.is_empty(), "{matched:?}");
    assert!(plan.is_empty());
}

#[test]
fn unread_newsletters_expire_in_their_folder() {
    let raw = "From: letters@shop.example\nSubject: old sale\nList-Unsubscribe: <mailto:u@shop.example>\n\n";
    let (matched, plan) = plan_for(raw, &[], "2026-02-01T10:00:00Z[UTC]", "Newsletters");
    assert_eq!(matched, ["expire unread newsletters"]);
    assert_eq!(
        plan.final_action,
        Some(FinalAction {
            action: FinalKind::Trash,
            mailbox: Some("Trash".into()),
        })
    );
}
