//! Access tokens for connections: one cache per token file in the process, shared by every
//! connection of the account.
//!
//! ```text
//! access_token(): cached and >= 60 s left? -> use it
//!                 else (under the refresh lock) the file's access token, if another process
//!                 refreshed; else refresh: POST grant_type=refresh_token
//!                   -> new refresh token? save the file (fsync, rename) BEFORE returning
//!                   -> invalid_grant: "log in again", remembered until the file changes
//! refused(token): the server refused it: the same, skipping that token (once per connection)
//! ```
//!
//! A refresh token the endpoint rotates is sent once: it is marked spent before the request
//! goes out, and a request whose answer was lost leaves it spent (a provider that rotates
//! strictly would revoke the whole sign-in on a second use). Only an endpoint seen not to
//! rotate (Google) gets the same refresh token again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};

use super::OAuthError;
use super::http::Http;
use super::store::{self, Stamp, Tokens};
use crate::config::{Account, OAuth2};

/// An access token is used until less than this remains of its lifetime.
pub const MARGIN: Duration = Duration::from_secs(60);

/// An access token for one connection attempt.
pub struct AccessToken {
    pub secret: SecretString,
    /// Obtained by a refresh for this request (or after a refusal): if the server refuses it
    /// too, refreshing again will not help.
    pub fresh: bool,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("fresh", &self.fresh)
            .finish_non_exhaustive()
    }
}

/// What the process knows about one account's tokens.
#[derive(Default)]
struct Slot {
    /// The access token in use and when it ends (`None`: the server did not say).
    cached: Option<(SecretString, Option<SystemTime>)>,
    /// SHA-256 of refresh tokens that were sent and must not be sent again.
    spent: Vec<[u8; 32]>,
    /// A sign-in is needed: the token file's stamp when that was found, and why.
    dead: Option<(Option<Stamp>, String)>,
    /// Tokens received but not yet saved (the save failed): saved before anything else.
    unsaved: Option<Tokens>,
}

type Slots = Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<Slot>>>>;

fn slot(path: &Path) -> Arc<tokio::sync::Mutex<Slot>> {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    let slots = SLOTS.get_or_init(Slots::default);
    let mut map = slots.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(path.to_path_buf()).or_default().clone()
}

/// An access token for `account` (an `auth: oauth2` one).
pub async fn access_token(account: &Account, config_dir: &Path) -> Result<AccessToken, OAuthError> {
    obtain(account, config_dir, None).await
}

/// The server refused `token`: a different one (refreshed once), or why there is none.
pub async fn refused(
    account: &Account,
    config_dir: &Path,
    token: &AccessToken,
) -> Result<AccessToken, OAuthError> {
    obtain(account, config_dir, Some(token.secret.clone())).await
}

/// Whether the sign-in an error asked for may have happened: the token file changed since.
pub fn login_changed(error: &OAuthError) -> bool {
    match error {
        OAuthError::LoginNeeded {
            token_file, stamp, ..
        } => store::stamp(token_file) != *stamp,
        _ => true,
    }
}

fn valid(expires_at: Option<SystemTime>, now: SystemTime) -> bool {
    expires_at.is_none_or(|t| t > now + MARGIN)
}

fn same(a: &SecretString, b: &SecretString) -> bool {
    a.expose_secret() == b.expose_secret()
}

async fn obtain(
    account: &Account,
    config_dir: &Path,
    refused: Option<SecretString>,
) -> Result<AccessToken, OAuthError> {
    let Some(oauth) = account.credentials.oauth2() else {
        return Err(OAuthError::NotOAuth2(account.name.clone()));
    };
    let slot = slot(&oauth.token_file);
    let mut guard = slot.lock().await;
    if let Some((token, expires_at)) = &guard.cached
        && valid(*expires_at, SystemTime::now())
    {
        match &refused {
            None => {
                return Ok(AccessToken {
                    secret: token.clone(),
                    fresh: false,
                });
            }
            // Another connection refreshed after this one's token was refused.
            Some(r) if !same(r, token) => {
                return Ok(AccessToken {
                    secret: token.clone(),
                    fresh: true,
                });
            }
            Some(_) => {}
        }
    }
    guard.cached = None;
    let mut state = std::mem::take(&mut *guard);
    let job = Job {
        account: account.name.clone(),
        oauth: oauth.clone(),
        ca_file: account.ca_file.clone(),
        config_dir: config_dir.to_path_buf(),
        refused,
    };
    let (state, result) = tokio::task::spawn_blocking(move || {
        let r = job.run(&mut state);
        (state, r)
    })
    .await
    .map_err(|e| OAuthError::Store {
        path: oauth.token_file.clone(),
        message: format!("the token task failed: {e}"),
        source: None,
    })?;
    *guard = state;
    result
}

/// One trip to the file and, if needed, the token endpoint. Blocking.
struct Job {
    account: String,
    oauth: OAuth2,
    ca_file: Option<PathBuf>,
    config_dir: PathBuf,
    /// The token the server refused, never to be handed out again.
    refused: Option<SecretString>,
}

impl Job {
    fn login_needed(&self, slot: &mut Slot, why: String) -> OAuthError {
        let stamp = store::stamp(&self.oauth.token_file);
        slot.dead = Some((stamp, why.clone()));
        OAuthError::LoginNeeded {
            account: self.account.clone(),
            why,
            token_file: self.oauth.token_file.clone(),
            stamp,
            first: true,
        }
    }

    fn run(&self, slot: &mut Slot) -> Result<AccessToken, OAuthError> {
        let path = &self.oauth.token_file;
        if let Some((stamp, why)) = &slot.dead {
            if store::stamp(path) == *stamp {
                return Err(OAuthError::LoginNeeded {
                    account: self.account.clone(),
                    why: why.clone(),
                    token_file: path.clone(),
                    stamp: *stamp,
                    first: false,
                });
            }
            // A new login: every earlier verdict is void.
            slot.dead = None;
        }
        let _lock = store::lock(path)?;
        if let Some(pending) = slot.unsaved.take()
            && let Err(e) = store::save(path, &pending)
        {
            slot.unsaved = Some(pending);
            return Err(e);
        }
        let Some(mut tokens) = store::load(path)? else {
            return Err(self.login_needed(
                slot,
                format!("no sign-in yet: {} does not exist", path.display()),
            ));
        };
        if tokens.client_id != self.oauth.client_id || tokens.token_url != self.oauth.token_url {
            return Err(self.login_needed(
                slot,
                "the stored sign-in was made for another client_id or token_url".into(),
            ));
        }
        if let Some(why) = &tokens.needs_login {
            return Err(self.login_needed(slot, why.clone()));
        }
        let now = SystemTime::now();
        if let Some(access) = &tokens.access_token
            && valid(tokens.expires_at, now)
            && !self.refused.as_ref().is_some_and(|r| same(r, access))
        {
            slot.cached = Some((access.clone(), tokens.expires_at));
            return Ok(AccessToken {
                secret: access.clone(),
                fresh: self.refused.is_some(),
            });
        }
        let Some(refresh) = tokens.refresh_token.clone() else {
            return Err(self.login_needed(slot, "no refresh token is stored".into()));
        };
        let digest = sha256(refresh.expose_secret());
        if slot.spent.contains(&digest) {
            return Err(self.login_needed(
                slot,
                "the refresh token was sent once without an answer, and is not sent twice".into(),
            ));
        }
        let http = Http::new(self.ca_file.as_deref())?;
        let secret = match &self.oauth.client_secret {
            Some(s) => Some(s.resolve(&self.config_dir).map_err(OAuthError::Secret)?),
            None => None,
        };
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose_secret()),
            ("client_id", self.oauth.client_id.as_str()),
        ];
        if let Some(s) = &secret {
            form.push(("client_secret", s.expose_secret()));
        }
        let may_resend = tokens.rotates == Some(false);
        if !may_resend {
            slot.spent.push(digest);
        }
        tracing::debug!(account = %self.account, "refreshing the access token");
        let url = &self.oauth.token_url;
        let answer = match http.post_form(url, &form) {
            Ok(a) => a,
            Err(f) => {
                if !f.maybe_sent {
                    slot.spent.retain(|d| *d != digest);
                }
                return Err(OAuthError::Endpoint {
                    url: url.clone(),
                    message: f.message,
                    transient: f.transient,
                });
            }
        };
        let reply = match answer.into_tokens() {
            Ok(r) => r,
            Err((error, description)) => {
                if error == "invalid_grant" {
                    let why = format!(
                        "the refresh token was refused: invalid_grant{}",
                        description.map(|d| format!(", {d}")).unwrap_or_default()
                    );
                    // Written down, so no process sends the dead token again.
                    tokens.needs_login = Some(why.clone());
                    tokens.access_token = None;
                    if let Err(e) = store::save(path, &tokens) {
                        tracing::warn!(account = %self.account, error = %e, "could not note the refused sign-in in the token file");
                    }
                    return Err(self.login_needed(slot, why));
                }
                // An error reply consumed nothing.
                slot.spent.retain(|d| *d != digest);
                return Err(OAuthError::Refused {
                    url: url.clone(),
                    error,
                    description,
                });
            }
        };
        let rotated = reply
            .refresh_token
            .as_ref()
            .is_some_and(|new| !same(new, &refresh));
        if !rotated {
            // Not rotated: the same refresh token stays valid and may be sent again.
            slot.spent.retain(|d| *d != digest);
        }
        tokens.rotates = Some(rotated);
        if rotated {
            tokens.refresh_token = reply.refresh_token;
        }
        tokens.access_token = Some(reply.access_token.clone());
        tokens.expires_at = reply.expires_in.map(|s| now + Duration::from_secs(s));
        // Saved before the new access token is handed out.
        let expires_at = tokens.expires_at;
        if let Err(e) = store::save(path, &tokens) {
            slot.unsaved = Some(tokens);
            return Err(e);
        }
        tracing::debug!(account = %self.account, rotated, expires_in = ?reply.expires_in, "access token refreshed");
        slot.cached = Some((reply.access_token.clone(), expires_at));
        Ok(AccessToken {
            secret: reply.access_token,
            fresh: true,
        })
    }
}

fn sha256(text: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_of_sixty_seconds() {
        let now = SystemTime::now();
        assert!(valid(None, now));
        assert!(valid(Some(now + Duration::from_secs(61)), now));
        assert!(!valid(Some(now + Duration::from_secs(60)), now));
        assert!(!valid(Some(now + Duration::from_secs(5)), now));
        assert!(!valid(Some(now - Duration::from_secs(5)), now));
    }
}
