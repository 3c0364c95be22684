//! Opening a mailbox before acting on it, the same in the daemon and in `imapsort sweep`:
//! SELECT, and the mailbox's row in the state database checked against what the server says.
//!
//! - No row yet (first contact of any imapsort process with this mailbox): the row starts
//!   under the server's UIDVALIDITY, its last handled UID set by `first_start` — everything
//!   now in the mailbox (`new`) or nothing (`all`). Whichever process comes first writes it,
//!   so a daemon started after a sweep does not take the mailbox for new again.
//! - Another UIDVALIDITY (the server renumbered the mailbox): the row is reset the same way
//!   and the applied records of the mailbox's old life are forgotten (their UIDs now name
//!   other messages). A sweep keeps its state too; it does not run stateless.

use crate::config::{Account, FirstStart};
use crate::imap::{ImapError, MailboxInfo, Session};
use crate::state::{StateError, Store};
use crate::vocab::{MailboxName, UidValidity};

/// A selected mailbox and its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// What SELECT said.
    pub info: MailboxInfo,
    pub uid_validity: UidValidity,
    /// Every UID up to this one is handled (new mail starts above it).
    pub last_uid: u32,
    /// Why the row was (re)started, if it was.
    pub started: Option<Started>,
}

/// Why a mailbox's state row was (re)started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    /// No process had seen the mailbox before.
    First,
    /// The server renumbered it; this was the UIDVALIDITY before.
    Renumbered(UidValidity),
}

/// Why a mailbox could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot select mailbox {mailbox}")]
    Imap {
        mailbox: MailboxName,
        #[source]
        source: ImapError,
    },
    #[error("the state database could not be read or written")]
    State(#[source] StateError),
    #[error("the server sent no UIDVALIDITY for {0}, so no state can be kept for it")]
    NoUidValidity(MailboxName),
}

/// SELECT `mailbox` and bring its state row in line with the server (see the module doc).
pub async fn open(
    session: &mut Session,
    store: &Store,
    account: &Account,
    mailbox: &MailboxName,
) -> Result<Opened, OpenError> {
    let imap = |source| OpenError::Imap {
        mailbox: mailbox.clone(),
        source,
    };
    let info = session.select(mailbox).await.map_err(imap)?;
    let uid_validity = info
        .uid_validity
        .and_then(UidValidity::new)
        .ok_or_else(|| OpenError::NoUidValidity(mailbox.clone()))?;
    let (name, key) = (account.name.clone(), mailbox.clone());
    let known = store
        .call(move |db| db.mailbox(&name, &key))
        .await
        .map_err(OpenError::State)?;
    let started = match known {
        Some(s) if s.uid_validity == uid_validity => {
            return Ok(Opened {
                info,
                uid_validity,
                last_uid: s.last_uid,
                started: None,
            });
        }
        Some(old) => Started::Renumbered(old.uid_validity),
        None => Started::First,
    };
    let start = starting_uid(session, account.first_start, &info)
        .await
        .map_err(imap)?;
    let (name, key) = (account.name.clone(), mailbox.clone());
    store
        .call(move |db| db.reset_mailbox_at(&name, &key, uid_validity, start))
        .await
        .map_err(OpenError::State)?;
    match started {
        Started::Renumbered(old) => tracing::warn!(
            account = %account.name,
            mailbox = %mailbox,
            old = old.get(),
            new = uid_validity.get(),
            "UIDVALIDITY changed: the server renumbered the mailbox; its state is reset"
        ),
        Started::First => tracing::info!(
            account = %account.name,
            mailbox = %mailbox,
            first_start = ?account.first_start,
            last_uid = start,
            "first start of this mailbox"
        ),
    }
    Ok(Opened {
        info,
        uid_validity,
        last_uid: start,
        started: Some(started),
    })
}

/// SELECT `mailbox` and read, without writing, whether the state knows it under the
/// server's UIDVALIDITY (a dry run): SELECT's answer, and that UIDVALIDITY when it does.
pub async fn look(
    session: &mut Session,
    store: Option<&Store>,
    account: &str,
    mailbox: &MailboxName,
) -> Result<(MailboxInfo, Option<UidValidity>), OpenError> {
    let info = session
        .select(mailbox)
        .await
        .map_err(|source| OpenError::Imap {
            mailbox: mailbox.clone(),
            source,
        })?;
    let (Some(store), Some(given)) = (store, info.uid_validity.and_then(UidValidity::new)) else {
        return Ok((info, None));
    };
    let (name, key) = (account.to_owned(), mailbox.clone());
    match store.call(move |db| db.mailbox(&name, &key)).await {
        Ok(Some(s)) if s.uid_validity == given => Ok((info, Some(given))),
        Ok(_) | Err(StateError::NoDatabase { .. }) => Ok((info, None)),
        Err(e) => Err(OpenError::State(e)),
    }
}

/// The last handled UID to start from: everything now in the mailbox (`new`) or nothing
/// (`all`).
async fn starting_uid(
    session: &mut Session,
    first: FirstStart,
    info: &MailboxInfo,
) -> Result<u32, ImapError> {
    if first == FirstStart::All {
        return Ok(0);
    }
    if let Some(next) = info.uid_next {
        return Ok(next.saturating_sub(1));
    }
    // No UIDNEXT: the highest UID present (`UID *`), or 0 in an empty mailbox.
    if info.exists == 0 {
        return Ok(0);
    }
    Ok(session
        .uid_search("UID *")
        .await?
        .into_iter()
        .max()
        .unwrap_or(0))
}
