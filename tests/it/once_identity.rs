//! Exact crash identity (issue 11, item 8): a copy or move interrupted at any command is
//! settled by the next run without losing the original or repeating the copy, also for
//! messages without a Message-ID, destinations that already hold the same message (same
//! Message-ID, same size), and a server without MOVE.
//!
//! Every crash point is reproduced exactly through the real `imapsort sweep`: a proxy cuts
//! the connection at one command, either before the server sees it or after the server ran
//! it and answered (the answer never arrives). The sweep ends (exit 69) with its journal
//! intents open; the next sweep must settle them and finish the work exactly once; a third
//! sweep must change nothing.

use crate::support::once_util;
use std::path::Path;

use crate::support::once_util::cutter::{Cut, Cutter, When};
use crate::support::once_util::{Via, at, census_now, places, shown};
use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};

/// The messages of a scenario.
#[derive(Clone, Copy, Debug)]
enum Mail {
    /// `alpha` and `beta`, each with its own Message-ID.
    WithId,
    /// The same two without a Message-ID.
    NoId,
    /// With Message-IDs, and each destination already holds a message with the same
    /// Message-ID and the same size (an earlier copy of the same message).
    AlreadyThere,
}

/// What the rules do with them.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// `alpha` copied to A, `beta` to B: two `UID COPY`.
    Copy,
    /// `alpha` moved to A, `beta` to B: moves to two mailboxes share one expunge (`UID COPY`
    /// per destination, then `UID STORE +FLAGS.SILENT (\Deleted)` and `UID EXPUNGE`).
    SharedMove,
    /// Both moved to A on a server without MOVE: `UID COPY`, `UID STORE`, `UID EXPUNGE`.
    MoveWithoutMove,
}

fn rules(op: Op) -> &'static str {
    match op {
        Op::Copy => {
            "  - { name: copy alpha, when: { subject: alpha }, then: { copy: A } }\n  \
             - { name: copy beta, when: { subject: beta }, then: { copy: B } }\n"
        }
        Op::SharedMove => {
            "  - { name: move alpha, when: { subject: alpha }, then: { move: A } }\n  \
             - { name: move beta, when: { subject: beta }, then: { move: B } }\n"
        }
        Op::MoveWithoutMove => "  - { name: file, when: { subject: a }, then: { move: A } }\n",
    }
}

fn messages(mail: Mail) -> Vec<Vec<u8>> {
    let id = |s: &str| match mail {
        Mail::NoId => None,
        _ => Some(format!("{s}@once.test")),
    };
    ["alpha", "beta"]
        .iter()
        .map(|s| once_util::message(id(s).as_deref(), s))
        .collect()
}

/// Where everything must be at the end: (subject, [(mailbox, count)]).
fn expected(op: Op, mail: Mail) -> Vec<(&'static str, Vec<(&'static str, usize)>)> {
    let pre = usize::from(matches!(mail, Mail::AlreadyThere));
    match op {
        Op::Copy => vec![
            ("alpha", vec![("A", 1 + pre), ("INBOX", 1)]),
            ("beta", vec![("B", 1 + pre), ("INBOX", 1)]),
        ],
        Op::SharedMove => vec![
            ("alpha", vec![("A", 1 + pre)]),
            ("beta", vec![("B", 1 + pre)]),
        ],
        Op::MoveWithoutMove => vec![
            ("alpha", vec![("A", 1 + pre)]),
            ("beta", vec![("A", 1 + pre)]),
        ],
    }
}

/// The commands a run of `op` sends that change the server, each as a cut point.
fn cuts(op: Op, mail: Mail) -> Vec<Cut> {
    let both = |command: &str, nth| {
        vec![
            Cut::new(command, nth, When::Before),
            Cut::new(command, nth, When::AfterAnswer),
        ]
    };
    let mut out = Vec::new();
    match (op, mail) {
        (Op::Copy, _) => {
            out.extend(both("UID COPY", 1));
            out.extend(both("UID COPY", 2));
        }
        // Messages without a Message-ID are moved by one atomic UID MOVE each.
        (Op::SharedMove, Mail::NoId) => {
            out.extend(both("UID MOVE", 1));
            out.extend(both("UID MOVE", 2));
        }
        (Op::SharedMove, _) => {
            out.extend(both("UID COPY", 1));
            out.extend(both("UID COPY", 2));
            out.extend(both("(\\DELETED)", 1));
            out.extend(both("UID EXPUNGE", 1));
        }
        (Op::MoveWithoutMove, _) => {
            out.extend(both("UID COPY", 1));
            out.extend(both("(\\DELETED)", 1));
            out.extend(both("UID EXPUNGE", 1));
        }
    }
    out
}

fn server(op: Op) -> Option<Dovecot> {
    let mut opts = DovecotOptions::default();
    if matches!(op, Op::MoveWithoutMove) {
        opts.disable_caps = vec!["MOVE".into()];
    }
    crate::support::dovecot::start(opts)
}

/// One crash point: a cut sweep, a settling sweep, an idle sweep; then the census.
fn scenario(op: Op, mail: Mail, cut: Cut) {
    let Some(d) = server(op) else { return };
    let dir = tempfile::tempdir().unwrap();
    let msgs = messages(mail);
    d.seed("user", "INBOX", &msgs).unwrap();
    if matches!(mail, Mail::AlreadyThere) {
        let (a, b) = match op {
            Op::MoveWithoutMove => ("A", "A"),
            _ => ("A", "B"),
        };
        d.seed("user", a, &msgs[..1]).unwrap();
        d.seed("user", b, &msgs[1..]).unwrap();
    }
    let cutter = Cutter::start(d.imap_port());
    let account = once_util::account(&d, "once", Via::Plain(cutter.port), "");
    let state = dir.path().join("state");
    let config = once_util::write_config(dir.path(), &state, "", &account, rules(op));
    let label = format!(
        "{op:?} / {mail:?} / cut {:?} {} #{}",
        cut.when, cut.command, cut.nth
    );

    cutter.arm(cut);
    let first = once_util::sweep(&config, &[]);
    assert_eq!(
        cutter.fired(),
        1,
        "{label}: the cut did not happen\n{}",
        shown(&first)
    );
    cutter.disarm();
    let second = once_util::sweep(&config, &[]);
    assert_eq!(
        second.status.code(),
        Some(0),
        "{label}: settling sweep\n{}",
        shown(&second)
    );
    let rt = once_util::runtime();
    let census = census_now(&rt, &d);
    for (subject, want) in expected(op, mail) {
        assert_eq!(
            places(&census, subject),
            at(&want),
            "{label}: where {subject} is\n--- first ---\n{}\n--- second ---\n{}",
            shown(&first),
            shown(&second)
        );
    }
    let third = once_util::sweep(&config, &[]);
    assert_eq!(third.status.code(), Some(0), "{label}\n{}", shown(&third));
    assert_eq!(
        census_now(&rt, &d),
        census,
        "{label}: a third sweep changed something"
    );
    settled(&state, &label);
}

/// No intent is left open.
fn settled(state: &Path, label: &str) {
    let db = imapsort::state::StateDb::open(state).unwrap();
    let open = db.unfinished_intents("once").unwrap();
    assert!(open.is_empty(), "{label}: intents left open: {open:?}");
}

fn every_cut(op: Op, mail: Mail) {
    for cut in cuts(op, mail) {
        scenario(op, mail, cut);
    }
}

#[test]
fn copies_cut_at_every_command_are_made_exactly_once() {
    every_cut(Op::Copy, Mail::WithId);
}

#[test]
fn copies_of_messages_without_message_id_cut_at_every_command_are_made_exactly_once() {
    every_cut(Op::Copy, Mail::NoId);
}

#[test]
fn copies_into_destinations_holding_the_same_message_are_made_exactly_once() {
    every_cut(Op::Copy, Mail::AlreadyThere);
}

#[test]
fn shared_expunge_moves_cut_at_every_command_end_exactly_once() {
    every_cut(Op::SharedMove, Mail::WithId);
}

#[test]
fn moves_of_messages_without_message_id_cut_at_every_command_end_exactly_once() {
    every_cut(Op::SharedMove, Mail::NoId);
}

#[test]
fn shared_expunge_moves_into_destinations_holding_the_same_message_end_exactly_once() {
    every_cut(Op::SharedMove, Mail::AlreadyThere);
}

#[test]
fn moves_on_a_server_without_move_cut_at_every_command_end_exactly_once() {
    every_cut(Op::MoveWithoutMove, Mail::WithId);
}

#[test]
fn moves_without_message_id_on_a_server_without_move_end_exactly_once() {
    every_cut(Op::MoveWithoutMove, Mail::NoId);
}

#[test]
fn moves_on_a_server_without_move_into_a_mailbox_holding_the_same_message_end_exactly_once() {
    every_cut(Op::MoveWithoutMove, Mail::AlreadyThere);
}
