//! The account's poller: watched mailboxes beyond `max_connections` (STATUS, then a catch-up
//! where UIDNEXT moved), and mailboxes that only sweep rules name. It holds a connection only
//! while it has such work; a reload that gives it work wakes it.

use std::time::Duration;

use tokio::time::Instant;

use super::Stats;
use super::heartbeat::sleep_away;
use super::pass::{self, PassError};
use super::worker::{Served, Worker, WorkerKind, chain};
use crate::imap::Session;

impl Worker {
    /// Mailboxes the poller looks after now: the polled watched ones, plus those that only
    /// sweep rules name (read from the live rules, so a reload can add one).
    fn poller_mailboxes(&self, polled: &[String]) -> (Vec<String>, Vec<String>) {
        let live = self.live();
        let sweep_only: Vec<String> = pass::sweep_mailboxes(&live.rules, &self.account)
            .into_iter()
            .filter(|m| !self.account.watch.contains(m))
            .collect();
        (polled.to_vec(), sweep_only)
    }

    pub(super) fn poller_has_work(&self) -> bool {
        match &self.kind {
            WorkerKind::Poller(polled) => {
                let (p, s) = self.poller_mailboxes(polled);
                !p.is_empty() || !s.is_empty()
            }
            WorkerKind::Idle(_) => true,
        }
    }

    /// An idle poller waits for a reload that gives it work. Returns false when cancelled.
    pub(super) async fn wait_for_poller_work(&mut self) -> bool {
        let mut live = self.shared.live.clone();
        loop {
            tokio::select! {
                _ = self.token.cancelled() => return false,
                changed = live.changed() => {
                    if changed.is_err() {
                        return false;
                    }
                    if self.poller_has_work() {
                        return true;
                    }
                }
                _ = sleep_away(&self.hb, Duration::from_secs(3600)) => {}
            }
        }
    }

    /// Poller: every `poll_interval`, STATUS each polled mailbox and catch up where UIDNEXT
    /// moved; sweep the sweep-only mailboxes when due.
    pub(super) async fn serve_poller(
        &mut self,
        session: &mut Session,
        polled: &[String],
    ) -> Served {
        let mut conn = match pass::Conn::new(session, &self.account).await {
            Ok(c) => c,
            Err(e) => return Served::Lost(e),
        };
        let mut next_sweep = Instant::now();
        loop {
            self.hb.beat();
            if self.token.is_cancelled() {
                return Served::Cancelled;
            }
            let live = self.live();
            let (polled, sweep_only) = self.poller_mailboxes(polled);
            if polled.is_empty() && sweep_only.is_empty() {
                return Served::NoWork;
            }
            for mailbox in &polled {
                let ctx = self.pass_ctx(&live, mailbox);
                let polled = tokio::select! {
                    _ = self.token.cancelled() => return Served::Abandoned,
                    r = pass::poll(session, &mut conn, &ctx) => r,
                };
                match polled {
                    Ok(()) => {}
                    Err(PassError::Imap(e)) if !e.is_connection_fatal() => {
                        tracing::warn!(account = self.name(), mailbox = %mailbox, error = %chain(&e), "cannot poll mailbox");
                    }
                    Err(e) => return e.into(),
                }
            }
            self.link.success();
            self.link.state_failing(false);
            if Instant::now() >= next_sweep {
                for mailbox in polled.iter().chain(&sweep_only) {
                    if !pass::has_sweep_rules(&live.rules, &self.account, mailbox) {
                        continue;
                    }
                    if sweep_only.contains(mailbox) {
                        // A destination no rule has filled yet (Newsletters before the first
                        // newsletter) has nothing to sweep.
                        match session.exists(mailbox).await {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::debug!(account = self.name(), mailbox = %mailbox, "sweep skipped: the mailbox does not exist yet");
                                continue;
                            }
                            Err(e) => return Served::Lost(e),
                        }
                    }
                    let ctx = self.pass_ctx(&live, mailbox);
                    let selected = tokio::select! {
                        _ = self.token.cancelled() => return Served::Abandoned,
                        r = pass::select(session, &ctx) => r,
                    };
                    let swept = match selected {
                        Ok(sel) => pass::sweep(session, &mut conn, &ctx, &sel).await,
                        Err(e) => Err(e),
                    };
                    match swept {
                        Ok(()) => Stats::bump(&self.shared.stats.sweeps),
                        Err(PassError::Imap(e)) if !e.is_connection_fatal() => {
                            tracing::warn!(account = self.name(), mailbox = %mailbox, error = %chain(&e), "cannot sweep mailbox");
                        }
                        Err(e) => return e.into(),
                    }
                }
                next_sweep = Instant::now() + live.settings.sweep_interval;
            }
            let wake = if polled.is_empty() {
                next_sweep
            } else {
                next_sweep.min(Instant::now() + self.account.poll_interval)
            };
            self.sleep_until(wake).await;
            if self.token.is_cancelled() {
                return Served::Cancelled;
            }
            if let Err(e) = session.noop().await {
                return Served::Lost(e);
            }
        }
    }
}
