//! The rules engine alone: the 30-rule set of the sweep scenario evaluated in-process on views
//! of generated messages (a mix, not one message as in `benches/rules.rs`), and the cost of
//! building those views from header blocks.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use imapsort::rules::{EvalContext, MessageFacts, MessageView};

use super::corpus::Message;

/// Evaluations per second and views built per second.
pub struct EngineResult {
    pub evaluations_per_s: f64,
    pub views_per_s: f64,
    /// Share of messages some rule matched (a sanity check of the mix).
    pub matched_share: f64,
}

fn header_block(bytes: &[u8]) -> &[u8] {
    memchr::memmem::find(bytes, b"\r\n\r\n").map_or(bytes, |i| &bytes[..i + 4])
}

fn facts(m: &Message) -> MessageFacts {
    MessageFacts {
        flags: if m.seen {
            vec!["\\Seen".into()]
        } else {
            vec![]
        },
        size: m.bytes.len() as u64,
        received: jiff::Timestamp::try_from(m.received)
            .ok()
            .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC)),
    }
}

pub fn measure(yaml: &str, dir: &Path, mail: &[Message]) -> EngineResult {
    let path = dir.join("engine.yaml");
    std::fs::write(&path, yaml).expect("write config");
    let config = imapsort::config::load(&path).expect("the 30-rule set loads");
    let rules = &config.rules;

    let start = Instant::now();
    let views: Vec<MessageView> = mail
        .iter()
        .map(|m| MessageView::parse(header_block(&m.bytes), facts(m)))
        .collect();
    let views_per_s = views.len() as f64 / start.elapsed().as_secs_f64();

    let watch = vec![imapsort::vocab::MailboxName::inbox()];
    let ctx = EvalContext {
        account: Some("bench"),
        mailbox: &imapsort::vocab::MailboxName::inbox(),
        watch: &watch,
        trigger: None,
        now: jiff::Timestamp::now(),
        trash: "Trash",
        archive: "Archive",
        delimiter: Some('/'),
        applied: None,
    };
    let matched = views
        .iter()
        .filter(|v| !rules.evaluate(v, &ctx).matched.is_empty())
        .count();
    // IMAPSORT_BENCH_ENGINE_PASSES=N: exactly N passes over the views instead of 2 s, so an
    // instruction count (callgrind) is reproducible.
    let passes: Option<u64> = std::env::var("IMAPSORT_BENCH_ENGINE_PASSES")
        .ok()
        .and_then(|v| v.parse().ok());
    let total = views.len() as u64;
    let start = Instant::now();
    let mut n = 0u64;
    while passes.map_or(start.elapsed() < Duration::from_secs(2), |p| n < p * total) {
        for v in &views {
            black_box(rules.evaluate(black_box(v), &ctx));
        }
        n += views.len() as u64;
    }
    EngineResult {
        evaluations_per_s: n as f64 / start.elapsed().as_secs_f64(),
        views_per_s,
        matched_share: matched as f64 / views.len().max(1) as f64,
    }
}
