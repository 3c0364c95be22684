//! The device login (RFC 8628): ask the device endpoint for a user code, show where to enter
//! it, poll the token endpoint until the user approves, denies, or the code expires.
//! Blocking; `imapsort login` runs it on the main thread.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::OAuthError;
use super::http::{Answer, Http, TokenReply, seconds};
use crate::config::OAuth2;

/// RFC 8628 §3.5: the default polling interval, and what `slow_down` adds to it.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// When the server does not say how long its code lives.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(900);

/// The device endpoint's answer (RFC 8628 §3.2).
pub struct Authorization {
    /// Where the user goes (Microsoft's older endpoints say `verification_url`).
    pub verification_uri: String,
    /// The same with the code filled in, when the server offers it.
    pub verification_uri_complete: Option<String>,
    /// What the user types there.
    pub user_code: String,
    /// What the client polls with; never shown.
    device_code: SecretString,
    /// How long the codes live.
    pub expires_in: Duration,
    /// How long to wait between polls (grows on `slow_down`).
    pub interval: Duration,
}

/// How a device login ended.
#[derive(Debug)]
pub enum Outcome {
    Approved(TokenReply),
    /// `access_denied`: the user said no.
    Denied(Option<String>),
    /// `expired_token`, or the code's lifetime passed.
    Expired,
}

/// Ask the device endpoint for codes.
pub fn authorize(
    http: &Http,
    oauth: &OAuth2,
    client_secret: Option<&SecretString>,
) -> Result<Authorization, OAuthError> {
    let Some(url) = oauth.device_url.as_deref() else {
        return Err(OAuthError::Refused {
            url: oauth.token_url.clone(),
            error: "no device endpoint".into(),
            description: None,
        });
    };
    let scope = oauth.scopes.join(" ");
    let mut form = vec![("client_id", oauth.client_id.as_str())];
    if !scope.is_empty() {
        form.push(("scope", scope.as_str()));
    }
    if let Some(s) = client_secret {
        form.push(("client_secret", s.expose_secret()));
    }
    let endpoint = |message: String, transient| OAuthError::Endpoint {
        url: url.to_owned(),
        message,
        transient,
    };
    let mut obj = match http.post_form(url, &form) {
        Ok(Answer::Ok(obj)) => obj,
        Ok(Answer::Error { error, description }) => {
            return Err(OAuthError::Refused {
                url: url.to_owned(),
                error,
                description,
            });
        }
        Err(f) => return Err(endpoint(f.message, f.transient)),
    };
    let mut text = |key: &str| match obj.remove(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    let device_code = text("device_code");
    let user_code = text("user_code");
    let verification_uri = text("verification_uri").or_else(|| text("verification_url"));
    let complete = text("verification_uri_complete");
    let (Some(device_code), Some(user_code), Some(verification_uri)) =
        (device_code, user_code, verification_uri)
    else {
        return Err(endpoint(
            "the reply lacks device_code, user_code or verification_uri".into(),
            false,
        ));
    };
    Ok(Authorization {
        verification_uri,
        verification_uri_complete: complete,
        user_code,
        device_code: SecretString::from(device_code),
        expires_in: seconds(obj.get("expires_in"))
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LIFETIME),
        interval: seconds(obj.get("interval"))
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_INTERVAL),
    })
}

/// Poll the token endpoint until the login ends. `sleep` waits (injected for tests).
pub fn poll(
    http: &Http,
    oauth: &OAuth2,
    client_secret: Option<&SecretString>,
    auth: &mut Authorization,
    sleep: &mut dyn FnMut(Duration),
) -> Result<Outcome, OAuthError> {
    let deadline = Instant::now() + auth.expires_in;
    let url = &oauth.token_url;
    loop {
        sleep(auth.interval);
        if Instant::now() >= deadline {
            return Ok(Outcome::Expired);
        }
        let mut form = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", auth.device_code.expose_secret()),
            ("client_id", oauth.client_id.as_str()),
        ];
        if let Some(s) = client_secret {
            form.push(("client_secret", s.expose_secret()));
        }
        let answer = match http.post_form(url, &form) {
            Ok(a) => a,
            // A network hiccup while the user is busy signing in: keep polling.
            Err(f) if f.transient => {
                tracing::debug!(error = %f.message, "polling the token endpoint failed; trying again");
                continue;
            }
            Err(f) => {
                return Err(OAuthError::Endpoint {
                    url: url.clone(),
                    message: f.message,
                    transient: false,
                });
            }
        };
        match answer.into_tokens() {
            Ok(reply) => return Ok(Outcome::Approved(reply)),
            Err((error, description)) => match error.as_str() {
                "authorization_pending" => {}
                "slow_down" => auth.interval += SLOW_DOWN_STEP,
                "access_denied" => return Ok(Outcome::Denied(description)),
                "expired_token" => return Ok(Outcome::Expired),
                _ => {
                    return Err(OAuthError::Refused {
                        url: url.clone(),
                        error,
                        description,
                    });
                }
            },
        }
    }
}
