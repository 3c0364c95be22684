//! Arbitrary bytes as a message -> `MessageView::parse` -> `RuleSet::evaluate` with the
//! realistic rule set of `tests/malformed/rules.yaml`, under both triggers. Never panics.
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use imapsort::config::Config;
use imapsort::rules::{EvalContext, MessageFacts, MessageView};
use libfuzzer_sys::fuzz_target;

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    let text = include_str!("../../tests/malformed/rules.yaml");
    imapsort::config::load_str(text, Path::new("rules.yaml")).expect("the fuzz rule set is valid")
});

fuzz_target!(|data: &[u8]| {
    // The first byte picks the flags, so flag conditions are explored too.
    let (selector, raw) = data.split_first().map_or((0, data), |(s, r)| (*s, r));
    let all = [
        "\\Seen",
        "\\Flagged",
        "\\Answered",
        "\\Draft",
        "work",
        "$Invoice",
    ];
    let flags = all
        .iter()
        .enumerate()
        .filter(|(i, _)| selector & (1 << i) != 0)
        .map(|(_, f)| (*f).to_owned())
        .collect();
    let received: jiff::Zoned = "2026-01-15T08:30:00+01:00[+01:00]".parse().unwrap();
    let facts = MessageFacts {
        flags,
        size: raw.len() as u64 * u64::from(selector >> 6).max(1) * 1024,
        received: (selector & 0x40 == 0).then_some(received),
    };
    let view = MessageView::parse(raw, facts);
    let _ = view.message_id();
    let watch = vec![imapsort::vocab::MailboxName::inbox()];
    let now: jiff::Timestamp = "2026-03-10T12:00:00Z".parse().unwrap();
    for trigger in [None, Some(imapsort::rules::ast::Trigger::New)] {
        let ctx = EvalContext {
            account: Some("fuzz"),
            mailbox: &imapsort::vocab::MailboxName::inbox(),
            watch: &watch,
            trigger,
            now,
            trash: "Trash",
            archive: "Archive",
            delimiter: Some('.'),
            applied: None,
        };
        let ev = CONFIG.rules.evaluate(&view, &ctx);
        // Template output must never carry control characters into a mailbox name.
        for m in ev.plan.copy.iter().chain(
            ev.plan
                .final_action
                .iter()
                .filter_map(|f| f.mailbox.as_ref()),
        ) {
            assert!(
                !m.chars().any(char::is_control),
                "control character in {m:?}"
            );
        }
    }
});
