//! The IMAP layer: connect (TCP, TLS, STARTTLS, keepalive, timeouts), authenticate, and a
//! session that checks every tagged status and reads every response to its end.
//!
//! Why not async-imap's command methods: reading its 0.12 source shows that FETCH, STORE,
//! SEARCH, LIST, EXPUNGE, CAPABILITY and NOOP end their response stream at the tagged line
//! without looking at its status (a NO is silently "success"), that a connection closing
//! mid-response ends those streams as if complete, and that it logs every command line (LOGIN
//! with the password) at trace level. So this module uses async-imap's parser (imap-proto,
//! re-exported as `async_imap::imap_proto`) and does framing, tags and status checks itself.
//!
//! ```text
//! connect   ConnectOptions -> Session: TCP + TLS/STARTTLS + greeting + LOGIN/AUTHENTICATE
//! session   Session: select/examine, uid_search/uid_fetch/uid_store/uid_copy/uid_move/
//!           uid_expunge, noop, logout
//! list      Session: list/status/create/subscribe/exists/ensure_mailbox; MailboxEntry,
//!           SPECIAL-USE
//! name      mailbox names: config form <-> wire form (delimiter, modified UTF-7)
//! idle      Session::idle(timeout, cancel) -> NewData | Timeout | Cancelled
//! response  reading to a command's tagged status, response codes, capabilities
//! item      FetchedItem: one FETCH response with accessors (header, body, flags, size, ...)
//! error     ImapError with is_transient()
//! ```

pub(crate) mod auth;
pub(crate) mod connect;
pub(crate) mod error;
pub mod fetch;
pub(crate) mod idle;
pub(crate) mod item;
pub(crate) mod list;
pub mod name;
mod response;
pub mod search;
pub(crate) mod session;
pub(crate) mod tls;
pub(crate) mod transport;
pub mod uidset;

pub use connect::{ConnectOptions, connect, connect_account};
pub use error::ImapError;
pub use idle::IdleOutcome;
pub use item::FetchedItem;
pub use list::{MailboxEntry, SpecialUse, resolve_special};
pub use session::{MailboxInfo, MailboxStatus, Session};
