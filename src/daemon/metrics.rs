//! What the daemon tells the outside world: the Prometheus series of `/metrics` and the
//! per-account health of `/health` (served by [`super::http`]).
//!
//! [`Metrics`] is one registry (prometheus-client) plus the health table, cloned into every
//! worker. A worker holds a [`Link`]: its account's counters, resolved once, and its share of
//! the account's connection state. The daemon calls a handful of methods:
//!
//! ```text
//! Link::connecting / up / idle     the worker wants a connection / holds one / wants none
//! Link::error(kind, text)          errors_total{kind}, last_error (kind `state`: the worker
//!                                  found the state database not writable)
//! Link::success                    last_success (a login or a pass that went through)
//! Link::processed(trigger, n)      messages_processed_total (every message a pass examined)
//! Link::result(result, trigger)    rule_matches_total, actions_total, push_latency_seconds
//! Link::exists_seen / pass_done    the EXISTS a push latency is measured from
//! Metrics::reload(ok)              config_reloads_total
//! Metrics::set_accounts(..)        the accounts (and rules) a reload kept; the rest is dropped
//! Metrics::health(&Health)         /health: connected from the links, `degraded` also while
//!                                  the daemon's Health has the account (state not writable)
//! ```
//!
//! Label values are only account and rule names from the configuration, and fixed words
//! (`trigger`, `action`, `kind`, `result`), so the number of series is bounded by the
//! configuration. A reload that removes an account or a rule removes its series: Prometheus
//! then sees them end, and nothing that is gone keeps a series alive.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;

use super::status::Health;
use crate::pass::MessageResult;
use crate::rules::{FinalKind, Plan};

/// Buckets of `push_latency_seconds`: 5 ms to 30 s.
const PUSH_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Which rules ran (`trigger` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    New,
    Sweep,
}

impl Trigger {
    pub fn label(self) -> &'static str {
        match self {
            Trigger::New => "new",
            Trigger::Sweep => "sweep",
        }
    }
}

/// What went wrong (`kind` label of `errors_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The server could not be reached, TLS failed, or the connection broke.
    Connect,
    /// The server refused the login, or the password or token could not be had.
    Auth,
    /// A command was refused or failed (a plan not carried out, a mailbox not selectable).
    Command,
    /// The state database could not be read or written.
    State,
}

impl ErrorKind {
    fn label(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Auth => "auth",
            ErrorKind::Command => "command",
            ErrorKind::State => "state",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabel {
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    account: String,
    trigger: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    account: String,
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    account: String,
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    account: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

const TRIGGERS: [Trigger; 2] = [Trigger::New, Trigger::Sweep];
const ACTIONS: [&str; 8] = [
    "move", "copy", "flag", "unflag", "trash", "archive", "delete", "label",
];
const KINDS: [ErrorKind; 4] = [
    ErrorKind::Connect,
    ErrorKind::Auth,
    ErrorKind::Command,
    ErrorKind::State,
];

/// The series, by name.
struct Series {
    processed: Family<TriggerLabels, Counter>,
    rule_matches: Family<RuleLabels, Counter>,
    actions: Family<ActionLabels, Counter>,
    errors: Family<KindLabels, Counter>,
    account_connected: Family<AccountLabel, Gauge>,
    connections: Family<AccountLabel, Gauge>,
    push_latency: Histogram,
    reloads: Family<ResultLabel, Counter>,
}

/// One account's health, and the connection state its workers report.
#[derive(Debug, Default)]
struct AccountState {
    /// Workers holding a connection.
    up: i64,
    /// Workers that want a connection and have none (connecting, or waiting to retry).
    down: i64,
    /// The most recent error, kept after recovery (`last_success` tells which came last).
    last_error: Option<String>,
    last_success: Option<Timestamp>,
}

impl AccountState {
    /// Every worker that wants a connection has one.
    fn connected(&self) -> bool {
        self.down == 0
    }
}

struct Inner {
    registry: Registry,
    series: Series,
    /// By account name; only configured accounts (of this shard) are here.
    accounts: Mutex<BTreeMap<String, AccountState>>,
    /// The rule names of the configuration in force (for dropping removed rules' series).
    rules: Mutex<Vec<String>>,
    /// Where `/metrics` is served, once bound.
    listening: Mutex<Option<SocketAddr>>,
}

/// The daemon's metrics and health. Cheap to clone; every clone is the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// `/health` as JSON.
#[derive(Debug, Serialize)]
pub struct HealthReport {
    /// `ok` when every account is connected and can write its state, else `degraded`.
    pub status: &'static str,
    pub accounts: BTreeMap<String, AccountHealth>,
}

#[derive(Debug, Serialize)]
pub struct AccountHealth {
    pub connected: bool,
    pub last_error: Option<String>,
    /// RFC 3339, UTC.
    pub last_success: Option<String>,
}

impl HealthReport {
    /// Every account connected: HTTP 200 (503 otherwise).
    pub fn all_connected(&self) -> bool {
        self.accounts.values().all(|a| a.connected)
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("imapsort");
        let series = Series {
            processed: Family::default(),
            rule_matches: Family::default(),
            actions: Family::default(),
            errors: Family::default(),
            account_connected: Family::default(),
            connections: Family::default(),
            push_latency: Histogram::new(PUSH_BUCKETS),
            reloads: Family::default(),
        };
        registry.register(
            "messages_processed",
            "Messages a pass examined (new mail, or a mailbox swept)",
            series.processed.clone(),
        );
        registry.register(
            "rule_matches",
            "Messages a rule matched",
            series.rule_matches.clone(),
        );
        registry.register(
            "actions",
            "Actions carried out on messages",
            series.actions.clone(),
        );
        registry.register("errors", "Errors by kind", series.errors.clone());
        registry.register(
            "account_connected",
            "1 while every connection the account wants is up",
            series.account_connected.clone(),
        );
        registry.register(
            "connections",
            "IMAP connections open",
            series.connections.clone(),
        );
        registry.register(
            "push_latency_seconds",
            "From the server's EXISTS to the new message's plan carried out",
            series.push_latency.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads by result",
            series.reloads.clone(),
        );
        let build_info: Family<VersionLabel, Gauge> = Family::default();
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The running version", build_info);
        for result in ["ok", "error"] {
            series.reloads.get_or_create_owned(&ResultLabel { result });
        }
        Metrics {
            inner: Arc::new(Inner {
                registry,
                series,
                accounts: Mutex::new(BTreeMap::new()),
                rules: Mutex::new(Vec::new()),
                listening: Mutex::new(None),
            }),
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The health of every account now: connected as the workers report it, degraded also
    /// while the daemon's [`Health`] says the account cannot write its state.
    pub fn health(&self, state: &Health) -> HealthReport {
        let accounts = self.accounts();
        let mut ok = true;
        let out = accounts
            .iter()
            .map(|(name, s)| {
                ok &= s.connected() && !state.is_degraded(name);
                let health = AccountHealth {
                    connected: s.connected(),
                    last_error: s.last_error.clone(),
                    last_success: s
                        .last_success
                        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                };
                (name.clone(), health)
            })
            .collect();
        HealthReport {
            status: if ok { "ok" } else { "degraded" },
            accounts: out,
        }
    }

    /// Where `/metrics` is served, once the listener is bound.
    pub fn listening_on(&self) -> Option<SocketAddr> {
        *self.inner.listening.lock().expect("metrics lock")
    }

    pub(crate) fn set_listening(&self, addr: SocketAddr) {
        *self.inner.listening.lock().expect("metrics lock") = Some(addr);
    }

    /// The accounts and rules of the configuration in force. Accounts and rules no longer in
    /// it lose their series and their health entry; new accounts get zeroed series.
    pub fn set_accounts<'a>(
        &self,
        accounts: impl IntoIterator<Item = &'a str>,
        rules: impl IntoIterator<Item = &'a str>,
    ) {
        let keep: Vec<String> = accounts.into_iter().map(str::to_owned).collect();
        let new_rules: Vec<String> = rules.into_iter().map(str::to_owned).collect();
        let s = &self.inner.series;
        let mut table = self.accounts();
        let mut old_rules = self.inner.rules.lock().expect("metrics lock");
        let removed: Vec<String> = table
            .keys()
            .filter(|name| !keep.contains(name))
            .cloned()
            .collect();
        for name in &removed {
            table.remove(name);
            self.forget_account(name, &old_rules);
        }
        for name in &keep {
            for rule in old_rules.iter().filter(|r| !new_rules.contains(r)) {
                s.rule_matches.remove(&RuleLabels {
                    account: name.clone(),
                    rule: rule.clone(),
                });
            }
            if !table.contains_key(name) {
                table.insert(name.clone(), AccountState::default());
                self.zero_account(name);
            }
        }
        *old_rules = new_rules;
        drop(old_rules);
        for (name, state) in table.iter() {
            self.publish(name, state);
        }
    }

    /// A reload ended: applied (`ok`) or refused (`error`).
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.inner
            .series
            .reloads
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// A worker's handle for `account`; it starts out wanting a connection.
    pub fn link(&self, account: &str) -> Link {
        let s = &self.inner.series;
        let label = |trigger: Trigger| TriggerLabels {
            account: account.to_owned(),
            trigger: trigger.label(),
        };
        // A counter outside the registry for an account that is not configured (any more).
        let counter = |trigger| {
            if self.configured(account) {
                s.processed.get_or_create_owned(&label(trigger))
            } else {
                Counter::default()
            }
        };
        let link = Link {
            metrics: self.clone(),
            account: account.to_owned(),
            state: Mutex::new(LinkState::Off),
            processed: [counter(Trigger::New), counter(Trigger::Sweep)],
            exists_at: Mutex::new(None),
        };
        link.connecting();
        link
    }

    /// Whether `name` is an account of the configuration in force: series are made only for
    /// those, so a worker of a removed account that has not ended yet brings none back.
    fn configured(&self, name: &str) -> bool {
        self.accounts().contains_key(name)
    }

    fn accounts(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, AccountState>> {
        self.inner.accounts.lock().expect("metrics lock")
    }

    /// Every series of a new account at zero, so a scrape shows it before anything happened.
    fn zero_account(&self, name: &str) {
        let s = &self.inner.series;
        let account = || name.to_owned();
        for trigger in TRIGGERS {
            s.processed.get_or_create_owned(&TriggerLabels {
                account: account(),
                trigger: trigger.label(),
            });
        }
        for action in ACTIONS {
            s.actions.get_or_create_owned(&ActionLabels {
                account: account(),
                action,
            });
        }
        for kind in KINDS {
            s.errors.get_or_create_owned(&KindLabels {
                account: account(),
                kind: kind.label(),
            });
        }
    }

    fn forget_account(&self, name: &str, rules: &[String]) {
        let s = &self.inner.series;
        let account = || name.to_owned();
        for trigger in TRIGGERS {
            s.processed.remove(&TriggerLabels {
                account: account(),
                trigger: trigger.label(),
            });
        }
        for rule in rules {
            s.rule_matches.remove(&RuleLabels {
                account: account(),
                rule: rule.clone(),
            });
        }
        for action in ACTIONS {
            s.actions.remove(&ActionLabels {
                account: account(),
                action,
            });
        }
        for kind in KINDS {
            s.errors.remove(&KindLabels {
                account: account(),
                kind: kind.label(),
            });
        }
        s.account_connected
            .remove(&AccountLabel { account: account() });
        s.connections.remove(&AccountLabel { account: account() });
    }

    /// The account's gauges from its state.
    fn publish(&self, name: &str, state: &AccountState) {
        let s = &self.inner.series;
        let label = AccountLabel {
            account: name.to_owned(),
        };
        s.connections.get_or_create(&label).set(state.up);
        s.account_connected
            .get_or_create(&label)
            .set(i64::from(state.connected()));
    }

    /// Change one account's state and republish its gauges; an account not (or no longer)
    /// configured is left alone.
    fn update(&self, name: &str, f: impl FnOnce(&mut AccountState)) {
        let mut table = self.accounts();
        if let Some(state) = table.get_mut(name) {
            f(state);
            self.publish(name, state);
        }
    }
}

/// What one worker's connection is doing, for the account's `connected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkState {
    /// No connection wanted (a poller without work, or the worker ended).
    Off,
    /// A connection wanted and not up (connecting, or waiting to retry).
    Down,
    /// A connection up.
    Up,
}

/// One worker's part of the metrics and health. Dropping it takes its connection state back.
pub struct Link {
    metrics: Metrics,
    account: String,
    state: Mutex<LinkState>,
    /// `messages_processed_total` for `new` and `sweep`, resolved once.
    processed: [Counter; 2],
    /// When the server's EXISTS woke the worker, until the pass after it is done.
    exists_at: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("account", &self.account)
            .finish()
    }
}

impl Link {
    fn set(&self, to: LinkState) {
        let mut state = self.state.lock().expect("metrics lock");
        let from = std::mem::replace(&mut *state, to);
        if from == to {
            return;
        }
        self.metrics.update(&self.account, |s| {
            match from {
                LinkState::Up => s.up -= 1,
                LinkState::Down => s.down -= 1,
                LinkState::Off => {}
            }
            match to {
                LinkState::Up => s.up += 1,
                LinkState::Down => s.down += 1,
                LinkState::Off => {}
            }
        });
    }

    /// The worker wants a connection and has none (connecting, or waiting to retry).
    pub fn connecting(&self) {
        self.set(LinkState::Down);
    }

    /// The worker logged in.
    pub fn up(&self) {
        self.set(LinkState::Up);
        self.success();
    }

    /// The worker holds no connection and wants none.
    pub fn idle(&self) {
        self.set(LinkState::Off);
    }

    /// Something went wrong: counted, and remembered as the account's last error.
    pub fn error(&self, kind: ErrorKind, text: &str) {
        if !self.metrics.configured(&self.account) {
            return;
        }
        let s = &self.metrics.inner.series;
        s.errors
            .get_or_create(&KindLabels {
                account: self.account.clone(),
                kind: kind.label(),
            })
            .inc();
        self.metrics.update(&self.account, |state| {
            state.last_error = Some(text.to_owned());
        });
    }

    /// A login or a pass went through.
    pub fn success(&self) {
        self.metrics.update(&self.account, |s| {
            s.last_success = Some(Timestamp::now());
        });
    }

    /// A pass of the rules of `trigger` examined `n` messages (those the server's search
    /// ruled out included).
    pub fn processed(&self, trigger: Trigger, n: u64) {
        let i = match trigger {
            Trigger::New => 0,
            Trigger::Sweep => 1,
        };
        self.processed[i].inc_by(n);
    }

    /// The server's EXISTS woke the worker now: the next pass's results are push latency.
    pub fn exists_seen(&self) {
        let mut at = self.exists_at.lock().expect("metrics lock");
        at.get_or_insert_with(Instant::now);
    }

    /// The passes after an EXISTS are over.
    pub fn pass_done(&self) {
        *self.exists_at.lock().expect("metrics lock") = None;
    }

    /// A message the rules matched, after its commands ran.
    pub fn result(&self, r: &MessageResult, trigger: Trigger) {
        if !self.metrics.configured(&self.account) {
            return;
        }
        let s = &self.metrics.inner.series;
        for rule in &r.rules {
            s.rule_matches
                .get_or_create(&RuleLabels {
                    account: self.account.clone(),
                    rule: rule.clone(),
                })
                .inc();
        }
        if r.error.is_some() || !r.done {
            return;
        }
        for (action, n) in actions(&r.plan) {
            s.actions
                .get_or_create(&ActionLabels {
                    account: self.account.clone(),
                    action,
                })
                .inc_by(n);
        }
        if trigger == Trigger::New
            && let Some(at) = *self.exists_at.lock().expect("metrics lock")
        {
            s.push_latency.observe(at.elapsed().as_secs_f64());
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.set(LinkState::Off);
    }
}

/// The actions a plan carried out, by `action` label: one per kind of flag change, label
/// change and terminal action, one per copy.
fn actions(plan: &Plan) -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    if !plan.add_flags.is_empty() {
        out.push(("flag", 1));
    }
    if !plan.remove_flags.is_empty() {
        out.push(("unflag", 1));
    }
    if !plan.add_labels.is_empty() {
        out.push(("label", 1));
    }
    if !plan.copy.is_empty() {
        out.push(("copy", plan.copy.len() as u64));
    }
    if let Some(f) = &plan.final_action {
        out.push((
            match f.action {
                FinalKind::Move => "move",
                FinalKind::Archive => "archive",
                FinalKind::Trash => "trash",
                FinalKind::Delete => "delete",
            },
            1,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::uidset::Uid;
    use crate::rules::FinalAction;

    /// The value of one sample line (`name{labels} value`), if present.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    }

    fn result(rules: &[&str], plan: Plan, done: bool) -> MessageResult {
        MessageResult {
            uid: Uid::new(7).unwrap(),
            message_id: None,
            rules: rules.iter().map(|r| r.to_string()).collect(),
            plan,
            warnings: vec![],
            done,
            error: None,
        }
    }

    #[test]
    fn every_series_of_the_contract_is_there_with_its_type() {
        let m = Metrics::new();
        m.set_accounts(["personal"], ["lists"]);
        let link = m.link("personal");
        // rule_matches_total has a series only for (account, rule) pairs that matched once:
        // every pair at zero would be accounts x rules series for little use.
        link.result(&result(&["lists"], Plan::default(), true), Trigger::New);
        let text = m.encode();
        for (name, kind) in [
            ("imapsort_messages_processed_total", "counter"),
            ("imapsort_rule_matches_total", "counter"),
            ("imapsort_actions_total", "counter"),
            ("imapsort_errors_total", "counter"),
            ("imapsort_account_connected", "gauge"),
            ("imapsort_connections", "gauge"),
            ("imapsort_push_latency_seconds", "histogram"),
            ("imapsort_config_reloads_total", "counter"),
            ("imapsort_build_info", "gauge"),
        ] {
            assert!(
                text.lines().any(|l| l == format!("# TYPE {name} {kind}")),
                "no {kind} {name} in\n{text}"
            );
        }
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            sample(
                &text,
                &format!("imapsort_build_info{{version=\"{version}\"}}")
            ),
            Some(1.0)
        );
        for series in [
            "imapsort_messages_processed_total{account=\"personal\",trigger=\"new\"}",
            "imapsort_messages_processed_total{account=\"personal\",trigger=\"sweep\"}",
            "imapsort_actions_total{account=\"personal\",action=\"move\"}",
            "imapsort_actions_total{account=\"personal\",action=\"label\"}",
            "imapsort_errors_total{account=\"personal\",kind=\"connect\"}",
            "imapsort_errors_total{account=\"personal\",kind=\"state\"}",
            "imapsort_config_reloads_total{result=\"ok\"}",
            "imapsort_config_reloads_total{result=\"error\"}",
            "imapsort_account_connected{account=\"personal\"}",
            "imapsort_connections{account=\"personal\"}",
        ] {
            assert_eq!(sample(&text, series), Some(0.0), "{series} in\n{text}");
        }
    }

    #[test]
    fn results_count_matches_actions_and_push_latency() {
        let m = Metrics::new();
        m.set_accounts(["a"], ["lists", "flag"]);
        let link = m.link("a");
        link.processed(Trigger::New, 3);
        link.processed(Trigger::Sweep, 10);
        let plan = Plan {
            add_flags: vec!["$x".into(), "\\Seen".into()],
            copy: vec!["A".into(), "B".into()],
            final_action: Some(FinalAction {
                action: FinalKind::Move,
                mailbox: Some("Lists/x".into()),
            }),
            ..Plan::default()
        };
        link.exists_seen();
        link.result(
            &result(&["flag", "lists"], plan.clone(), true),
            Trigger::New,
        );
        link.pass_done();
        // Not carried out: the rules matched, no action counts.
        link.result(&result(&["lists"], plan, false), Trigger::New);
        let text = m.encode();
        let get = |s: &str| sample(&text, s).unwrap_or_else(|| panic!("{s} in\n{text}"));
        assert_eq!(
            get("imapsort_messages_processed_total{account=\"a\",trigger=\"new\"}"),
            3.0
        );
        assert_eq!(
            get("imapsort_messages_processed_total{account=\"a\",trigger=\"sweep\"}"),
            10.0
        );
        assert_eq!(
            get("imapsort_rule_matches_total{account=\"a\",rule=\"lists\"}"),
            2.0
        );
        assert_eq!(
            get("imapsort_rule_matches_total{account=\"a\",rule=\"flag\"}"),
            1.0
        );
        assert_eq!(
            get("imapsort_actions_total{account=\"a\",action=\"flag\"}"),
            1.0
        );
        assert_eq!(
            get("imapsort_actions_total{account=\"a\",action=\"copy\"}"),
            2.0
        );
        assert_eq!(
            get("imapsort_actions_total{account=\"a\",action=\"move\"}"),
            1.0
        );
        assert_eq!(
            get("imapsort_actions_total{account=\"a\",action=\"unflag\"}"),
            0.0
        );
        // One observation: the second result came after pass_done.
        assert_eq!(get("imapsort_push_latency_seconds_count"), 1.0);
    }

    #[test]
    fn an_account_is_connected_when_every_worker_that_wants_a_connection_has_one() {
        let m = Metrics::new();
        m.set_accounts(["a"], []);
        let idle = m.link("a");
        let poller = m.link("a");
        assert!(!m.health(&Health::default()).accounts["a"].connected);
        idle.up();
        assert!(
            !m.health(&Health::default()).accounts["a"].connected,
            "the poller is still connecting"
        );
        poller.idle();
        let h = m.health(&Health::default());
        assert!(h.accounts["a"].connected && h.all_connected());
        assert_eq!(h.status, "ok");
        assert!(h.accounts["a"].last_success.is_some());
        let text = m.encode();
        assert_eq!(
            sample(&text, "imapsort_connections{account=\"a\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "imapsort_account_connected{account=\"a\"}"),
            Some(1.0)
        );

        idle.error(ErrorKind::Connect, "connection refused");
        idle.connecting();
        let h = m.health(&Health::default());
        assert!(!h.all_connected());
        assert_eq!(h.status, "degraded");
        assert_eq!(
            h.accounts["a"].last_error.as_deref(),
            Some("connection refused")
        );
        let text = m.encode();
        assert_eq!(
            sample(
                &text,
                "imapsort_errors_total{account=\"a\",kind=\"connect\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "imapsort_account_connected{account=\"a\"}"),
            Some(0.0)
        );
        assert_eq!(
            sample(&text, "imapsort_connections{account=\"a\"}"),
            Some(0.0)
        );

        // A worker that ends takes its state with it.
        drop(idle);
        assert!(m.health(&Health::default()).all_connected());
    }

    #[test]
    fn a_state_database_that_cannot_be_written_makes_the_status_degraded() {
        let m = Metrics::new();
        m.set_accounts(["a"], []);
        let link = m.link("a");
        link.up();
        let state = Health::default();
        state.set_degraded("a", "disk full".into());
        let h = m.health(&state);
        assert!(h.all_connected(), "still connected: HTTP 200");
        assert_eq!(h.status, "degraded");
        state.recovered("a");
        assert_eq!(m.health(&state).status, "ok");
    }

    #[test]
    fn a_reload_drops_the_series_of_removed_accounts_and_rules() {
        let m = Metrics::new();
        m.set_accounts(["a", "b"], ["keep", "gone"]);
        let a = m.link("a");
        a.result(
            &result(&["keep", "gone"], Plan::default(), true),
            Trigger::New,
        );
        let b = m.link("b");
        b.error(ErrorKind::Auth, "no");
        drop(b);
        m.set_accounts(["a", "c"], ["keep"]);
        m.reload(true);
        let text = m.encode();
        assert!(!text.contains("account=\"b\""), "{text}");
        assert!(!text.contains("rule=\"gone\""), "{text}");
        assert!(
            text.contains("imapsort_rule_matches_total{account=\"a\",rule=\"keep\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("imapsort_connections{account=\"c\"} 0"),
            "{text}"
        );
        assert_eq!(
            sample(&text, "imapsort_config_reloads_total{result=\"ok\"}"),
            Some(1.0)
        );
        let h = m.health(&Health::default());
        assert_eq!(h.accounts.keys().collect::<Vec<_>>(), ["a", "c"]);
        // A worker of a removed account that lingers changes nothing.
        let late = m.link("b");
        late.up();
        assert!(!m.health(&Health::default()).accounts.contains_key("b"));
    }
}
