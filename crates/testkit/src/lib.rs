//! Development tools for imapsort, never part of the installed program.
//!
//! - [`dovecot`]: a private Dovecot on loopback (configuration, throwaway certificates, free
//!   ports, seeding mail straight into Maildir), started by the integration tests, the
//!   benchmarks and the demo.
//!
//! The crate does not depend on `imapsort`: it knows Dovecot, Maildir and modified UTF-7, not
//! the program under test, so the tests exercise imapsort from the outside and the product
//! crate carries none of this (`cargo tree -e normal -p imapsort` lists neither rcgen nor
//! tempfile).

#![forbid(unsafe_code)]

pub mod dovecot;
mod mutf7;
