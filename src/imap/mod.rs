//! The IMAP layer.

pub mod search;
pub mod uidset;
