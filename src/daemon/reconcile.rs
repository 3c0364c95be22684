//! The daemon's side of [`crate::reconcile`]: its open intents read and the result written
//! through the shared [`Store`](super::store::Store).

use crate::imap::Session;
use crate::reconcile::{intents_of, record, settle_intents};

use super::pass::{Ctx, PassError, Selected};

/// Settle this mailbox's open intents; the mailbox is selected again afterwards.
pub(crate) async fn reconcile(
    session: &mut Session,
    ctx: &Ctx<'_>,
    sel: &Selected,
) -> Result<(), PassError> {
    let account = ctx.account.name.clone();
    let intents = ctx
        .store
        .call(move |db| db.unfinished_intents(&account))
        .await?;
    let mine = intents_of(intents, ctx.mailbox);
    if mine.is_empty() {
        return Ok(());
    }
    let settled = settle_intents(session, ctx.mailbox, sel.uid_validity, &mine, ctx.rules).await?;
    let n = settled.len();
    let (account, mailbox, validity) = (
        ctx.account.name.clone(),
        ctx.mailbox.clone(),
        sel.uid_validity,
    );
    ctx.store
        .call(move |db| record(db, &account, &mailbox, validity, &settled))
        .await?;
    tracing::info!(account = %ctx.account.name, mailbox = %ctx.mailbox, intents = n, "settled actions a restart interrupted");
    Ok(())
}
