use super::*;
use crate::imap::uidset::CopyUid;
use crate::rules::FinalAction;

fn uid(n: u32) -> Uid {
    Uid::new(n).unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[derive(Default)]
struct P {
    add: &'static [&'static str],
    remove: &'static [&'static str],
    labels: &'static [&'static str],
    copy: &'static [&'static str],
    fin: Option<(FinalKind, Option<&'static str>)>,
}

impl P {
    fn plan(&self) -> Plan {
        Plan {
            add_flags: strings(self.add),
            remove_flags: strings(self.remove),
            add_labels: strings(self.labels),
            copy: strings(self.copy),
            final_action: self.fin.map(|(action, m)| FinalAction {
                action,
                mailbox: m.map(String::from),
            }),
        }
    }
}

/// A step written as the command it becomes, for readable expectations.
fn show(step: &Step) -> String {
    match step {
        Step::Flags { uids, add, flags } => {
            format!(
                "STORE {uids} {}FLAGS ({})",
                if *add { "+" } else { "-" },
                flags.join(" ")
            )
        }
        Step::Labels { uids, labels } => format!("LABELS {uids} ({})", labels.join(" ")),
        Step::Unlabel { uids, labels } => format!("UNLABEL {uids} ({})", labels.join(" ")),
        Step::Copy { uids, mailbox } => format!("COPY {uids} {mailbox}"),
        Step::Move { uids, mailbox } => format!("MOVE {uids} {mailbox}"),
        Step::Delete { uids } => format!("DELETE {uids}"),
    }
}

const ALL_CAPS: ServerCaps = ServerCaps {
    move_: true,
    uidplus: true,
    gmail: false,
};

#[test]
fn plans_merge_into_few_commands_in_plan_order() {
    use FinalKind::*;
    struct Case {
        name: &'static str,
        plans: Vec<(u32, P)>,
        caps: ServerCaps,
        want: &'static [&'static str],
        refused: &'static [u32],
    }
    let cases = vec![
        Case {
            name: "empty plans add nothing",
            plans: vec![(1, P::default()), (2, P::default())],
            caps: ALL_CAPS,
            want: &[],
            refused: &[],
        },
        Case {
            name: "same flag set shares a store, in any order",
            plans: vec![
                (
                    1,
                    P {
                        add: &["\\Seen", "work"],
                        ..P::default()
                    },
                ),
                (
                    2,
                    P {
                        add: &["work", "\\Seen"],
                        ..P::default()
                    },
                ),
                (
                    3,
                    P {
                        add: &["\\Seen"],
                        ..P::default()
                    },
                ),
                (
                    4,
                    P {
                        add: &["\\Seen", "work"],
                        ..P::default()
                    },
                ),
            ],
            caps: ALL_CAPS,
            want: &[
                "STORE 3 +FLAGS (\\Seen)",
                "STORE 1:2,4 +FLAGS (\\Seen work)",
            ],
            refused: &[],
        },
        Case {
            name: "flags, removals, copies, then moves per destination",
            plans: vec![
                (
                    5,
                    P {
                        fin: Some((Move, Some("Lists/a"))),
                        add: &["\\Seen"],
                        ..P::default()
                    },
                ),
                (
                    6,
                    P {
                        fin: Some((Move, Some("Lists/b"))),
                        ..P::default()
                    },
                ),
                (
                    7,
                    P {
                        fin: Some((Archive, Some("Archive/2026"))),
                        copy: &["Acc"],
                        ..P::default()
                    },
                ),
                (
                    8,
                    P {
                        fin: Some((Move, Some("Lists/a"))),
                        remove: &["\\Flagged"],
                        ..P::default()
                    },
                ),
                (
                    9,
                    P {
                        fin: Some((Trash, Some("Trash"))),
                        copy: &["Acc", "Backup"],
                        ..P::default()
                    },
                ),
            ],
            caps: ALL_CAPS,
            want: &[
                "STORE 5 +FLAGS (\\Seen)",
                "STORE 8 -FLAGS (\\Flagged)",
                "COPY 7,9 Acc",
                "COPY 9 Backup",
                "MOVE 7 Archive/2026",
                "MOVE 5,8 Lists/a",
                "MOVE 6 Lists/b",
                "MOVE 9 Trash",
            ],
            refused: &[],
        },
        Case {
            name: "deletes share one step",
            plans: vec![
                (
                    3,
                    P {
                        fin: Some((Delete, None)),
                        ..P::default()
                    },
                ),
                (
                    1,
                    P {
                        fin: Some((Delete, None)),
                        ..P::default()
                    },
                ),
            ],
            caps: ALL_CAPS,
            want: &["DELETE 1,3"],
            refused: &[],
        },
        Case {
            name: "labels on gmail",
            plans: vec![
                (
                    1,
                    P {
                        labels: &["Work", "Receipts"],
                        ..P::default()
                    },
                ),
                (
                    2,
                    P {
                        labels: &["Receipts", "Work"],
                        ..P::default()
                    },
                ),
            ],
            caps: ServerCaps {
                gmail: true,
                ..ALL_CAPS
            },
            want: &["LABELS 1:2 (Receipts Work)"],
            refused: &[],
        },
        Case {
            name: "labels without gmail are refused, the rest still runs",
            plans: vec![(
                1,
                P {
                    labels: &["Work"],
                    fin: Some((Move, Some("X"))),
                    ..P::default()
                },
            )],
            caps: ALL_CAPS,
            want: &["MOVE 1 X"],
            refused: &[1],
        },
    ];
    for case in cases {
        let plans: Vec<(Uid, Plan)> = case
            .plans
            .iter()
            .map(|(u, p)| (uid(*u), p.plan()))
            .collect();
        let refs: Vec<(Uid, &Plan)> = plans.iter().map(|(u, p)| (*u, p)).collect();
        let program = group(&refs, case.caps);
        let got: Vec<String> = program.steps.iter().map(show).collect();
        assert_eq!(got, case.want, "{}", case.name);
        let refused: Vec<u32> = program.refused.iter().map(|(u, _)| u.get()).collect();
        assert_eq!(refused, case.refused, "{}", case.name);
    }
}

// ---- the executor against a scripted fake --------------------------------------------------

#[derive(Debug, PartialEq)]
struct FakeError {
    text: String,
    lost: bool,
    /// The destination does not exist (`NO [TRYCREATE]`).
    missing: bool,
}

impl std::fmt::Display for FakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Records commands; fails those whose text contains one of `fail_on`. COPY and MOVE to a
/// mailbox in `gone` fail as missing (`TRYCREATE`); ENSURE of it creates it again, unless it
/// is in `gone_again`, where it vanishes again at once.
#[derive(Default)]
struct Fake {
    log: Vec<String>,
    fail_on: Vec<&'static str>,
    lose_connection_on: Option<&'static str>,
    gone: Vec<String>,
    gone_again: Vec<&'static str>,
    /// `ensure_mailbox` reports the mailbox created (else it existed: a STATUS fences it).
    creates: bool,
    /// STATUS of a mailbox in `gone` fails as missing too (it was deleted before the batch's
    /// fence, not between the fence and the command).
    status_sees_gone: bool,
    /// The UID the next copy gets (COPYUID answers count up from 1000).
    next_copy: u32,
}

impl Fake {
    fn answer_for_mailbox(&mut self, cmd: String, mailbox: &str) -> Result<(), FakeError> {
        if self.gone.iter().any(|g| g == mailbox) {
            self.log.push(cmd.clone());
            return Err(FakeError {
                text: format!("NO [TRYCREATE] {cmd}"),
                lost: false,
                missing: true,
            });
        }
        self.answer(cmd)
    }

    /// A COPYUID for `uids`, as a server numbers the copies.
    fn copy_uid(&mut self, uids: &UidSet) -> Option<CopyUid> {
        let source: Vec<u32> = uids.iter().map(|u| u.get()).collect();
        let first = 1000 + self.next_copy;
        self.next_copy += source.len() as u32;
        let dest = (first..first + source.len() as u32).collect();
        CopyUid::new(7, source, dest)
    }

    fn answer(&mut self, cmd: String) -> Result<(), FakeError> {
        if let Some(mailbox) = cmd.strip_prefix("ENSURE ")
            && !self.gone_again.contains(&mailbox)
        {
            self.gone.retain(|g| g != mailbox);
        }
        let lost = self.lose_connection_on.is_some_and(|p| cmd.contains(p));
        let fail = lost || self.fail_on.iter().any(|p| cmd.contains(p));
        self.log.push(cmd.clone());
        if fail {
            Err(FakeError {
                text: format!("NO [{cmd}]"),
                lost,
                missing: false,
            })
        } else {
            Ok(())
        }
    }
}

impl ImapTarget for Fake {
    type Error = FakeError;

    async fn store_flags(
        &mut self,
        uids: &UidSet,
        add: bool,
        flags: &[String],
    ) -> Result<(), FakeError> {
        let sign = if add { '+' } else { '-' };
        self.answer(format!(
            "UID STORE {uids} {sign}FLAGS.SILENT ({})",
            flags.join(" ")
        ))
    }
    async fn add_labels(&mut self, uids: &UidSet, labels: &[String]) -> Result<(), FakeError> {
        self.answer(format!(
            "UID STORE {uids} +X-GM-LABELS ({})",
            labels.join(" ")
        ))
    }
    async fn remove_labels(&mut self, uids: &UidSet, labels: &[String]) -> Result<(), FakeError> {
        self.answer(format!(
            "UID STORE {uids} -X-GM-LABELS ({})",
            labels.join(" ")
        ))
    }
    async fn copy(&mut self, uids: &UidSet, mailbox: &str) -> Result<Option<CopyUid>, FakeError> {
        self.answer_for_mailbox(format!("UID COPY {uids} {mailbox}"), mailbox)?;
        Ok(self.copy_uid(uids))
    }
    async fn mv(&mut self, uids: &UidSet, mailbox: &str) -> Result<Option<CopyUid>, FakeError> {
        self.answer_for_mailbox(format!("UID MOVE {uids} {mailbox}"), mailbox)?;
        Ok(self.copy_uid(uids))
    }
    async fn uid_expunge(&mut self, uids: &UidSet) -> Result<(), FakeError> {
        self.answer(format!("UID EXPUNGE {uids}"))
    }
    async fn ensure_mailbox(&mut self, mailbox: &str) -> Result<bool, FakeError> {
        self.answer(format!("ENSURE {mailbox}"))?;
        Ok(self.creates)
    }
    async fn uid_next(&mut self, mailbox: &str) -> Result<(Option<u32>, Option<u32>), FakeError> {
        if self.status_sees_gone {
            self.answer_for_mailbox(format!("STATUS {mailbox}"), mailbox)?;
        } else {
            self.answer(format!("STATUS {mailbox}"))?;
        }
        Ok((Some(7), Some(100)))
    }
    fn is_connection_lost(err: &FakeError) -> bool {
        err.lost
    }
    fn is_missing_mailbox(err: &FakeError) -> bool {
        err.missing
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn run_plans(caps: ServerCaps, fake: &mut Fake, plans: Vec<(u32, P)>) -> Vec<Outcome> {
    let plans: Vec<(Uid, Plan)> = plans.iter().map(|(u, p)| (uid(*u), p.plan())).collect();
    let refs: Vec<(Uid, &Plan)> = plans.iter().map(|(u, p)| (*u, p)).collect();
    let program = group(&refs, caps);
    block_on(Executor::new(caps).run(fake, &program))
}

fn errors(outcomes: &[Outcome]) -> Vec<(u32, bool)> {
    outcomes.iter().map(|o| (o.uid.get(), o.done())).collect()
}

#[test]
fn move_uses_move_when_offered() {
    let mut fake = Fake::default();
    let out = run_plans(
        ALL_CAPS,
        &mut fake,
        vec![
            (
                1,
                P {
                    add: &["\\Seen"],
                    fin: Some((FinalKind::Move, Some("A"))),
                    ..P::default()
                },
            ),
            (
                2,
                P {
                    fin: Some((FinalKind::Move, Some("A"))),
                    ..P::default()
                },
            ),
        ],
    );
    assert_eq!(
        fake.log,
        [
            "UID STORE 1 +FLAGS.SILENT (\\Seen)",
            "ENSURE A",
            "UID MOVE 1:2 A"
        ]
    );
    assert_eq!(errors(&out), [(1, true), (2, true)]);
}

#[test]
fn move_without_move_copies_marks_and_expunges_exactly_those_uids() {
    let caps = ServerCaps {
        move_: false,
        ..ALL_CAPS
    };
    let mut fake = Fake::default();
    let out = run_plans(
        caps,
        &mut fake,
        vec![(
            4,
            P {
                fin: Some((FinalKind::Trash, Some("Trash"))),
                ..P::default()
            },
        )],
    );
    assert_eq!(
        fake.log,
        [
            "ENSURE Trash",
            "STATUS Trash",
            "UID COPY 4 Trash",
            "UID STORE 4 +FLAGS.SILENT (\\Deleted)",
            "UID EXPUNGE 4"
        ]
    );
    assert_eq!(errors(&out), [(4, true)]);
}

#[test]
fn without_uidplus_the_message_stays_deleted_with_a_warning() {
    let caps = ServerCaps {
        move_: false,
        uidplus: false,
        gmail: false,
    };
    let mut fake = Fake::default();
    let out = run_plans(
        caps,
        &mut fake,
        vec![(
            4,
            P {
                fin: Some((FinalKind::Delete, None)),
                ..P::default()
            },
        )],
    );
    assert_eq!(fake.log, ["UID STORE 4 +FLAGS.SILENT (\\Deleted)"]);
    assert!(out[0].done());
    assert_eq!(out[0].warnings.len(), 1, "{:?}", out[0]);
    assert!(!fake.log.iter().any(|c| c.contains("EXPUNGE")));
}

#[test]
fn one_failing_destination_does_not_fail_the_others() {
    let mut fake = Fake {
        // Moves to two mailboxes go as copies plus one shared expunge: the copy fails.
        fail_on: vec!["COPY 2 Bad"],
        ..Fake::default()
    };
    let out = run_plans(
        ALL_CAPS,
        &mut fake,
        vec![
            (
                1,
                P {
                    fin: Some((FinalKind::Move, Some("Good"))),
                    ..P::default()
                },
            ),
            (
                2,
                P {
                    fin: Some((FinalKind::Move, Some("Bad"))),
                    ..P::default()
                },
            ),
            (
                3,
                P {
                    fin: Some((FinalKind::Move, Some("Good"))),
                    ..P::default()
                },
            ),
        ],
    );
    assert_eq!(errors(&out), [(1, true), (2, false), (3, true)]);
    assert!(
        out[1].error.as_deref().unwrap().contains("move to Bad"),
        "{:?}",
        out[1]
    );
}

#[test]
fn a_failed_copy_keeps_the_message_in_place() {
    let mut fake = Fake {
        fail_on: vec!["COPY 1 Acc"],
        ..Fake::default()
    };
    let out = run_plans(
        ALL_CAPS,
        &mut fake,
        vec![
            (
                1,
                P {
                    copy: &["Acc"],
                    fin: Some((FinalKind::Move, Some("X"))),
                    ..P::default()
                },
            ),
            (
                2,
                P {
                    fin: Some((FinalKind::Move, Some("X"))),
                    ..P::default()
                },
            ),
        ],
    );
    assert_eq!(
        fake.log,
        [
            "ENSURE Acc",
            "STATUS Acc",
            "UID COPY 1 Acc",
            "ENSURE X",
            "UID MOVE 2 X"
        ]
    );
    assert_eq!(errors(&out), [(1, false), (2, true)]);
}

#[test]
fn a_mailbox_that_cannot_be_created_fails_only_its_messages() {
    let mut fake = Fake {
        fail_on: vec!["ENSURE Nope"],
        ..Fake::default()
    };
    let out = run_plans(
        ALL_CAPS,
        &mut fake,
        vec![
            (
                1,
                P {
                    fin: Some((FinalKind::Move, Some("Nope"))),
                    ..P::default()
                },
            ),
            (
                2,
                P {
                    fin: Some((FinalKind::Move, Some("Yes"))),
                    ..P::default()
                },
            ),
        ],
    );
    assert_eq!(
        fake.log,
        [
            "ENSURE Nope",
            "ENSURE Yes",
            "STATUS Yes",
            "UID COPY 2 Yes",
            "UID STORE 2 +FLAGS.SILENT (\\Deleted)",
            "UID EXPUNGE 2"
        ]
    );
    assert_eq!(errors(&out), [(1, false), (2, true)]);
}

#[test]
fn after_the_connection_is_lost_nothing_more_is_sent() {
    let mut fake = Fake {
        lose_connection_on: Some("STORE"),
        ..Fake::default()
    };
    let out = run_plans(
        ALL_CAPS,
        &mut fake,
        vec![
            (
                1,
                P {
                    add: &["a"],
                    ..P::default()
                },
            ),
            (
                2,
                P {
                    fin: Some((FinalKind::Move, Some("X"))),
                    ..P::default()
                },
            ),
        ],
    );
    assert_eq!(fake.log, ["UID STORE 1 +FLAGS.SILENT (a)"]);
    assert_eq!(errors(&out), [(1, false), (2, false)]);
    assert!(out[1].error.as_deref().unwrap().contains("not attempted"));
}

#[test]
fn labels_without_gmail_fail_the_message_but_it_still_moves() {
    let mut fake = Fake::default();
    let out = run_plans(
        ALL_CAPS,
        &mut fake,
        vec![(
            1,
            P {
                labels: &["L"],
                fin: Some((FinalKind::Move, Some("X"))),
                ..P::default()
            },
        )],
    );
    assert_eq!(fake.log, ["ENSURE X", "UID MOVE 1 X"]);
    assert!(out[0].error.as_deref().unwrap().contains("X-GM-EXT-1"));
}

#[test]
fn each_destination_is_ensured_once_per_session() {
    let caps = ALL_CAPS;
    let mut exec = Executor::new(caps);
    let mut fake = Fake::default();
    let plan = P {
        fin: Some((FinalKind::Move, Some("X"))),
        ..P::default()
    }
    .plan();
    for n in 1..=2 {
        let program = group(&[(uid(n), &plan)], caps);
        block_on(exec.run(&mut fake, &program));
    }
    assert_eq!(fake.log, ["ENSURE X", "UID MOVE 1 X", "UID MOVE 2 X"]);
}

/// A destination deleted (or renamed) by another client after this session ensured it (here
/// after the batch's fence read its UIDNEXT): the NO that says it is missing drops it from the
/// session's knowledge, it is created again and the command retried once; for moves, copies,
/// and the copy half of a shared expunge.
#[test]
fn a_destination_gone_since_it_was_ensured_is_created_again_and_retried_once() {
    let move_to = |m: &'static str| P {
        fin: Some((FinalKind::Move, Some(m))),
        ..P::default()
    };
    let copy_to = |m: &'static [&'static str]| P {
        copy: m,
        ..P::default()
    };
    type Case = (&'static str, ServerCaps, Vec<(u32, P)>, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            "move",
            ALL_CAPS,
            vec![(2, move_to("X"))],
            vec!["UID MOVE 2 X", "ENSURE X", "UID MOVE 2 X"],
        ),
        (
            "copy",
            ALL_CAPS,
            vec![(2, copy_to(&["X"]))],
            vec!["STATUS X", "UID COPY 2 X", "ENSURE X", "UID COPY 2 X"],
        ),
        (
            "move without MOVE",
            ServerCaps {
                move_: false,
                ..ALL_CAPS
            },
            vec![(2, move_to("X"))],
            vec![
                "STATUS X",
                "UID COPY 2 X",
                "ENSURE X",
                "UID COPY 2 X",
                "UID STORE 2 +FLAGS.SILENT (\\Deleted)",
                "UID EXPUNGE 2",
            ],
        ),
        (
            "moves sharing one expunge",
            ALL_CAPS,
            vec![(2, move_to("X")), (3, move_to("Y"))],
            vec![
                "STATUS X",
                "ENSURE Y",
                "STATUS Y",
                "UID COPY 2 X",
                "ENSURE X",
                "UID COPY 2 X",
                "UID COPY 3 Y",
                "UID STORE 2:3 +FLAGS.SILENT (\\Deleted)",
                "UID EXPUNGE 2:3",
            ],
        ),
    ];
    for (name, caps, plans, want) in cases {
        let mut exec = Executor::new(caps);
        let mut fake = Fake::default();
        // X was ensured by an earlier batch of this session...
        let first = group(&[(uid(1), &copy_to(&["X"]).plan())], caps);
        block_on(exec.run(&mut fake, &first));
        // ...and another client deleted it since.
        fake.gone.push("X".into());
        fake.log.clear();
        let plans: Vec<(Uid, Plan)> = plans.iter().map(|(u, p)| (uid(*u), p.plan())).collect();
        let refs: Vec<(Uid, &Plan)> = plans.iter().map(|(u, p)| (*u, p)).collect();
        let out = block_on(exec.run(&mut fake, &group(&refs, caps)));
        assert_eq!(fake.log, want, "{name}");
        assert!(out.iter().all(Outcome::done), "{name}: {out:?}");
        // The session knows X again: the next copy is fenced and goes out, not ensured again.
        fake.log.clear();
        let next = group(&[(uid(9), &copy_to(&["X"]).plan())], caps);
        block_on(exec.run(&mut fake, &next));
        assert_eq!(fake.log, ["STATUS X", "UID COPY 9 X"], "{name}");
    }

    // Gone again right after it was created: one retry, then the failure is reported.
    let mut exec = Executor::new(ALL_CAPS);
    let mut fake = Fake {
        gone: vec!["X".into()],
        gone_again: vec!["X"],
        ..Fake::default()
    };
    let out = block_on(exec.run(
        &mut fake,
        &group(&[(uid(4), &move_to("X").plan())], ALL_CAPS),
    ));
    assert_eq!(
        fake.log,
        ["ENSURE X", "UID MOVE 4 X", "ENSURE X", "UID MOVE 4 X"]
    );
    assert!(
        out[0].error.as_deref().unwrap().contains("TRYCREATE"),
        "{out:?}"
    );
}

/// Regression: a copy destination this session had ensured, deleted by another client before
/// the next batch, failed that batch's fence (STATUS: no such mailbox), and the copy was
/// refused unsent as "could not be prepared", in every later batch too, since the session
/// still took the mailbox for ensured. The fence's NO now drops it, and it is made again.
#[test]
fn a_copy_destination_gone_before_its_fence_is_created_again() {
    let copy_to = |m: &'static [&'static str]| P {
        copy: m,
        ..P::default()
    };
    let move_to = |m: &'static str| P {
        fin: Some((FinalKind::Move, Some(m))),
        ..P::default()
    };
    type Case = (&'static str, ServerCaps, P, Vec<&'static str>);
    let no_move = ServerCaps {
        move_: false,
        ..ALL_CAPS
    };
    let cases: Vec<Case> = vec![
        (
            "copy",
            ALL_CAPS,
            copy_to(&["X"]),
            vec!["STATUS X", "ENSURE X", "STATUS X", "UID COPY 2 X"],
        ),
        (
            "move without MOVE",
            no_move,
            move_to("X"),
            vec![
                "STATUS X",
                "ENSURE X",
                "STATUS X",
                "UID COPY 2 X",
                "UID STORE 2 +FLAGS.SILENT (\\Deleted)",
                "UID EXPUNGE 2",
            ],
        ),
    ];
    for (name, caps, plan, want) in cases {
        let mut exec = Executor::new(caps);
        let mut fake = Fake {
            status_sees_gone: true,
            ..Fake::default()
        };
        let first = group(&[(uid(1), &copy_to(&["X"]).plan())], caps);
        block_on(exec.run(&mut fake, &first));
        fake.gone.push("X".into());
        fake.log.clear();
        let plan = plan.plan();
        let out = block_on(exec.run(&mut fake, &group(&[(uid(2), &plan)], caps)));
        assert_eq!(fake.log, want, "{name}");
        assert!(out.iter().all(Outcome::done), "{name}: {out:?}");
    }

    // Cannot be made again: the copy fails, unsent, and says why.
    let mut exec = Executor::new(ALL_CAPS);
    let mut fake = Fake {
        status_sees_gone: true,
        ..Fake::default()
    };
    block_on(exec.run(
        &mut fake,
        &group(&[(uid(1), &copy_to(&["X"]).plan())], ALL_CAPS),
    ));
    fake.gone.push("X".into());
    fake.fail_on.push("ENSURE X");
    fake.log.clear();
    let out = block_on(exec.run(
        &mut fake,
        &group(&[(uid(2), &copy_to(&["X"]).plan())], ALL_CAPS),
    ));
    assert_eq!(fake.log, ["STATUS X", "ENSURE X"]);
    assert!(!out[0].done(), "{out:?}");
}

#[test]
fn long_uid_sets_are_sent_in_several_commands() {
    let mut fake = Fake::default();
    let plans: Vec<(u32, P)> = (1..=30_000)
        .filter(|n| n % 2 == 1)
        .map(|n| {
            (
                n,
                P {
                    add: &["\\Seen"],
                    ..P::default()
                },
            )
        })
        .collect();
    let out = run_plans(ALL_CAPS, &mut fake, plans);
    assert!(fake.log.len() > 1);
    assert!(fake.log.iter().all(|c| c.len() < MAX_SET_CHARS + 100));
    assert_eq!(out.len(), 15_000);
    assert!(out.iter().all(Outcome::done));
}

#[test]
fn commands_merge_across_messages_known_to_be_gone() {
    // 1:10 exist except 7 (never did); the plans move 2,4,6 to A and 3,5,8 to B, flag 1,9.
    // MOVE per destination (without UIDPLUS moves do not share an expunge).
    let caps = ServerCaps {
        uidplus: false,
        ..ALL_CAPS
    };
    let mut universe = Universe {
        existing: "1:6,8:10".parse().unwrap(),
        known: (uid(1), uid(10)),
    };
    let mut fake = Fake::default();
    let mv = |m: &'static str| P {
        fin: Some((FinalKind::Move, Some(m))),
        ..P::default()
    };
    let plans: Vec<(Uid, Plan)> = [
        (
            1,
            P {
                add: &["f"],
                ..P::default()
            },
        ),
        (2, mv("A")),
        (3, mv("B")),
        (4, mv("A")),
        (5, mv("B")),
        (6, mv("A")),
        (8, mv("B")),
        (
            9,
            P {
                add: &["f"],
                ..P::default()
            },
        ),
    ]
    .iter()
    .map(|(u, p)| (uid(*u), p.plan()))
    .collect();
    let refs: Vec<(Uid, &Plan)> = plans.iter().map(|(u, p)| (*u, p)).collect();
    let program = group(&refs, caps);
    let out = block_on(Executor::new(caps).run_within(&mut fake, &program, Some(&mut universe)));
    assert_eq!(
        fake.log,
        [
            // 1 and 9 are separated by existing messages that are not flagged.
            "UID STORE 1,9 +FLAGS.SILENT (f)",
            "ENSURE A",
            "UID MOVE 2,4,6 A",
            "ENSURE B",
            // 4 and 6 are gone now, 7 never existed: one range.
            "UID MOVE 3:8 B",
        ]
    );
    assert!(out.outcomes.iter().all(Outcome::done));
    assert_eq!(universe.existing.to_string(), "1,9:10");
}

#[test]
fn a_failed_move_keeps_its_messages_in_the_universe() {
    // MOVE per destination (without UIDPLUS moves do not share an expunge).
    let caps = ServerCaps {
        uidplus: false,
        ..ALL_CAPS
    };
    let mut universe = Universe {
        existing: "1:4".parse().unwrap(),
        known: (uid(1), uid(4)),
    };
    let mut fake = Fake {
        fail_on: vec!["MOVE 2 A"],
        ..Fake::default()
    };
    let plans: Vec<(Uid, Plan)> = [(2, "A"), (1, "B"), (3, "B")]
        .iter()
        .map(|(u, m)| {
            let p = P {
                fin: Some((FinalKind::Move, Some(*m))),
                ..P::default()
            };
            (uid(*u), p.plan())
        })
        .collect();
    let refs: Vec<(Uid, &Plan)> = plans.iter().map(|(u, p)| (*u, p)).collect();
    let program = group(&refs, caps);
    block_on(Executor::new(caps).run_within(&mut fake, &program, Some(&mut universe)));
    // 2 is still there, so 1 and 3 must not be merged over it.
    assert_eq!(fake.log.last().unwrap(), "UID MOVE 1,3 B");
    assert_eq!(universe.existing.to_string(), "2,4");
}

#[test]
fn moves_to_several_mailboxes_share_one_expunge() {
    let mut fake = Fake {
        fail_on: vec!["COPY 3 B"],
        ..Fake::default()
    };
    let mv = |m: &'static str| P {
        fin: Some((FinalKind::Move, Some(m))),
        ..P::default()
    };
    let out = run_plans(
        ALL_CAPS,
        &mut fake,
        vec![(1, mv("A")), (2, mv("A")), (3, mv("B")), (5, mv("C"))],
    );
    // The failed copy keeps message 3 out of the expunge: it stays where it was.
    assert_eq!(
        fake.log,
        [
            "ENSURE A",
            "STATUS A",
            "ENSURE B",
            "STATUS B",
            "ENSURE C",
            "STATUS C",
            "UID COPY 1:2 A",
            "UID COPY 3 B",
            "UID COPY 5 C",
            "UID STORE 1:2,5 +FLAGS.SILENT (\\Deleted)",
            "UID EXPUNGE 1:2,5"
        ]
    );
    assert_eq!(errors(&out), [(1, true), (2, true), (3, false), (5, true)]);
}

#[test]
fn moves_on_gmail_stay_moves_even_to_several_mailboxes() {
    let caps = ServerCaps {
        gmail: true,
        ..ALL_CAPS
    };
    let mut fake = Fake::default();
    let mv = |m: &'static str| P {
        fin: Some((FinalKind::Move, Some(m))),
        ..P::default()
    };
    run_plans(caps, &mut fake, vec![(1, mv("A")), (2, mv("B"))]);
    assert_eq!(
        fake.log,
        ["ENSURE A", "UID MOVE 1 A", "ENSURE B", "UID MOVE 2 B"]
    );
}

#[test]
fn messages_without_a_message_id_move_atomically_even_when_moves_share_an_expunge() {
    let mv = |m: &'static str| P {
        fin: Some((FinalKind::Move, Some(m))),
        ..P::default()
    };
    let plans: Vec<(Uid, Plan)> = [(1, mv("A")), (2, mv("A")), (3, mv("B"))]
        .iter()
        .map(|(u, p)| (uid(*u), p.plan()))
        .collect();
    let refs: Vec<(Uid, &Plan)> = plans.iter().map(|(u, p)| (*u, p)).collect();
    let mut program = group(&refs, ALL_CAPS);
    program.atomic = "2".parse().unwrap();
    let mut fake = Fake::default();
    let out = block_on(Executor::new(ALL_CAPS).run(&mut fake, &program));
    assert_eq!(
        fake.log,
        [
            // Both destinations prepared (fenced) before the first command.
            "ENSURE A",
            "STATUS A",
            "ENSURE B",
            "STATUS B",
            "UID MOVE 2 A",
            "UID COPY 1 A",
            "UID COPY 3 B",
            "UID STORE 1,3 +FLAGS.SILENT (\\Deleted)",
            "UID EXPUNGE 1,3"
        ]
    );
    assert_eq!(errors(&out), [(1, true), (2, true), (3, true)]);
}

#[test]
fn prepare_fences_every_destination_copied_into_and_only_those() {
    // A copy, moves that share an expunge, a flag: the copy's and the moves' destinations
    // are fenced (created ones at UIDNEXT 1, existing ones by STATUS); nothing else is.
    let plans: Vec<(Uid, Plan)> = [
        (
            1,
            P {
                copy: &["Acc"],
                ..P::default()
            },
        ),
        (
            2,
            P {
                fin: Some((FinalKind::Move, Some("A"))),
                ..P::default()
            },
        ),
        (
            3,
            P {
                fin: Some((FinalKind::Move, Some("B"))),
                ..P::default()
            },
        ),
        (
            4,
            P {
                add: &["f"],
                ..P::default()
            },
        ),
    ]
    .iter()
    .map(|(u, p)| (uid(*u), p.plan()))
    .collect();
    let refs: Vec<(Uid, &Plan)> = plans.iter().map(|(u, p)| (*u, p)).collect();
    let program = group(&refs, ALL_CAPS);
    let mut exec = Executor::new(ALL_CAPS);
    let mut fake = Fake::default();
    let fences = block_on(exec.prepare(&mut fake, &program));
    let got: Vec<(String, Option<u32>, u32)> = fences
        .iter()
        .map(|f| (f.mailbox.clone(), f.uid_validity, f.uid_next))
        .collect();
    let want = |m: &str| (m.to_string(), Some(7), 100);
    assert_eq!(got, [want("A"), want("Acc"), want("B")]);
    let mut created = Fake {
        creates: true,
        ..Fake::default()
    };
    let fences = block_on(Executor::new(ALL_CAPS).prepare(&mut created, &program));
    assert!(
        fences
            .iter()
            .all(|f| f.uid_next == 1 && f.uid_validity.is_none())
    );
    assert!(
        !created.log.iter().any(|c| c.starts_with("STATUS")),
        "{:?}",
        created.log
    );
    // Moves with MOVE to one mailbox are atomic: no fence.
    let single: Vec<(Uid, Plan)> = vec![(
        uid(9),
        P {
            fin: Some((FinalKind::Move, Some("A"))),
            ..P::default()
        }
        .plan(),
    )];
    let refs: Vec<(Uid, &Plan)> = single.iter().map(|(u, p)| (*u, p)).collect();
    assert!(exec.copy_destinations(&group(&refs, ALL_CAPS)).is_empty());
}

#[test]
fn a_copy_based_step_to_an_unfenced_destination_is_never_sent() {
    // The fence could not be taken (STATUS failed): the copy is not sent, so a crash can
    // never leave a copy that recovery has no fence to find by.
    let mut fake = Fake {
        fail_on: vec!["STATUS Acc"],
        ..Fake::default()
    };
    let out = run_plans(
        ALL_CAPS,
        &mut fake,
        vec![(
            1,
            P {
                copy: &["Acc"],
                ..P::default()
            },
        )],
    );
    assert_eq!(fake.log, ["ENSURE Acc", "STATUS Acc"]);
    assert_eq!(errors(&out), [(1, false)]);
}

#[test]
fn copyuid_answers_come_back_per_command() {
    let plans: Vec<(Uid, Plan)> = [
        (
            1,
            P {
                copy: &["Acc"],
                ..P::default()
            },
        ),
        (
            2,
            P {
                copy: &["Acc"],
                fin: Some((FinalKind::Move, Some("A"))),
                ..P::default()
            },
        ),
    ]
    .iter()
    .map(|(u, p)| (uid(*u), p.plan()))
    .collect();
    let refs: Vec<(Uid, &Plan)> = plans.iter().map(|(u, p)| (*u, p)).collect();
    let program = group(&refs, ALL_CAPS);
    let mut exec = Executor::new(ALL_CAPS);
    let mut fake = Fake::default();
    block_on(exec.prepare(&mut fake, &program));
    let run = block_on(exec.run_within(&mut fake, &program, None));
    let got: Vec<(String, Vec<(u32, u32)>)> = run
        .copied
        .iter()
        .map(|c| (c.mailbox.clone(), c.uids.pairs.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("Acc".to_string(), vec![(1, 1000), (2, 1001)]),
            ("A".to_string(), vec![(2, 1002)])
        ]
    );
}

/// Prepares and runs `program` with `run_ahead`, keeping every run it was told.
fn run_telling(fake: &mut Fake, program: &Program) -> (Run, bool, Vec<Run>) {
    let mut exec = Executor::new(ALL_CAPS);
    block_on(exec.prepare(fake, program));
    let mut told: Vec<Run> = Vec::new();
    let (run, as_told) = {
        let mut ahead = |expected: &Run| told.push(expected.clone());
        block_on(exec.run_ahead(fake, program, None, &mut ahead))
    };
    (run, as_told, told)
}

/// `run_ahead`'s caller is told the run's outcome before the shared removal (or a closing
/// move), and afterwards whether it went as told: yes when it succeeded, no when its EXPUNGE
/// (or the move) failed.
#[test]
fn the_outcome_is_told_before_the_shared_removal_and_confirmed_after() {
    let mv = |m: &'static str| P {
        fin: Some((FinalKind::Move, Some(m))),
        ..P::default()
    };
    let plans: Vec<(Uid, Plan)> = [(1, mv("A")), (2, mv("A")), (3, mv("B")), (5, mv("C"))]
        .iter()
        .map(|(u, p)| (uid(*u), p.plan()))
        .collect();
    let refs: Vec<(Uid, &Plan)> = plans.iter().map(|(u, p)| (*u, p)).collect();
    let program = group(&refs, ALL_CAPS);
    for expunge_fails in [false, true] {
        let mut fake = Fake {
            fail_on: if expunge_fails {
                vec!["COPY 3 B", "UID EXPUNGE"]
            } else {
                vec!["COPY 3 B"]
            },
            ..Fake::default()
        };
        let (run, as_told, told) = run_telling(&mut fake, &program);
        // Told once, after the copies: what the removal brings is not in it.
        assert_eq!(told.len(), 1, "{told:?}");
        let expected = &told[0];
        assert_eq!(expected.copied.len(), 2, "the COPYUIDs of A and C");
        assert_eq!(
            errors(&expected.outcomes),
            [(3, false)],
            "only the failed copy"
        );
        if expunge_fails {
            assert!(!as_told, "the EXPUNGE failed");
            assert_ne!(&run, expected);
            assert_eq!(
                errors(&run.outcomes),
                [(1, false), (2, false), (3, false), (5, false)]
            );
        } else {
            assert!(as_told);
            assert_eq!(&run, expected, "what was told is what came");
        }
    }
    // Without a shared removal (one destination: one UID MOVE) it is told before the move,
    // without the move's COPYUID (which comes after, in the run); a failed move is not as told.
    let one: Vec<(Uid, Plan)> = vec![(uid(1), mv("A").plan()), (uid(2), mv("A").plan())];
    let refs: Vec<(Uid, &Plan)> = one.iter().map(|(u, p)| (*u, p)).collect();
    let program = group(&refs, ALL_CAPS);
    for move_fails in [false, true] {
        let mut fake = Fake {
            fail_on: if move_fails { vec!["MOVE"] } else { vec![] },
            ..Fake::default()
        };
        let (run, as_told, told) = run_telling(&mut fake, &program);
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(
            told[0],
            Run::default(),
            "nothing failed, nothing placed yet"
        );
        assert_eq!(as_told, !move_fails, "{run:?}");
        if move_fails {
            assert_eq!(errors(&run.outcomes), [(1, false), (2, false)]);
        } else {
            assert!(run.outcomes.is_empty());
            assert_eq!(
                run.copied.len(),
                1,
                "the move's COPYUID, after what was told"
            );
        }
    }
}
