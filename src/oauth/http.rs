//! Form-encoded POSTs to OAuth endpoints (RFC 6749 §3.2, RFC 8628 §3.1) and their JSON
//! replies. Blocking (ureq): callers on the async runtime use `spawn_blocking`.
//!
//! TLS is verified as for IMAP: rustls with the ring provider, the system's roots plus the
//! account's `ca_file` (self-hosted servers often run their identity provider under the same
//! private CA); Mozilla's roots (webpki-roots) when the system has none. Redirects are not
//! followed (a token request is never re-sent elsewhere).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use super::OAuthError;

/// The longest a token request may take, connect to last byte.
const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// An HTTP client for one account's endpoints.
#[derive(Debug, Clone)]
pub struct Http {
    /// Holds the TLS configuration and keeps connections for reuse.
    agent: ureq::Agent,
}

/// A reply that is OAuth: a success object or an error object.
#[derive(Debug)]
pub(crate) enum Answer {
    /// 2xx with a JSON object.
    Ok(serde_json::Map<String, Value>),
    /// 4xx with `{"error": ..., "error_description": ...}` (RFC 6749 §5.2).
    Error {
        error: String,
        description: Option<String>,
    },
}

/// A request that got no OAuth answer.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What happened, for messages.
    pub message: String,
    /// Whether the request may have reached the server (so a refresh token in it may have
    /// been used up).
    pub maybe_sent: bool,
    /// Whether trying again later can help.
    pub transient: bool,
}

/// A successful token response (RFC 6749 §5.1).
pub struct TokenReply {
    pub access_token: SecretString,
    /// Present when the server issued (or rotated) a refresh token.
    pub refresh_token: Option<SecretString>,
    /// Seconds the access token lives, when the server says.
    pub expires_in: Option<u64>,
}

impl std::fmt::Debug for TokenReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReply")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl Http {
    /// A client trusting the system roots plus `ca_file`.
    pub fn new(ca_file: Option<&Path>) -> Result<Http, OAuthError> {
        let system = crate::trust::system_roots();
        let extra = match ca_file {
            Some(path) => {
                crate::trust::ca_file_certs(path).map_err(|e| OAuthError::Tls(e.to_string()))?
            }
            None => Vec::new(),
        };
        let roots = if system.is_empty() && extra.is_empty() {
            RootCerts::WebPki
        } else {
            let all: Vec<Certificate<'static>> = system
                .iter()
                .chain(extra.iter())
                .map(|der| Certificate::from_der(der.as_ref()).to_owned())
                .collect();
            RootCerts::Specific(Arc::new(all))
        };
        let tls = TlsConfig::builder()
            .root_certs(roots)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(REQUEST_LIMIT))
            .user_agent(concat!("imapsort/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Http { agent })
    }

    /// POST `form` to `url` and read the JSON reply.
    pub(crate) fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Answer, Failure> {
        let response = self
            .agent
            .post(url)
            .header("Accept", "application/json")
            .send_form(form.iter().copied());
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return Err(failure(&e)),
        };
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(|e| Failure {
                message: format!("reading the reply (HTTP {status}): {}", short(&e)),
                maybe_sent: true,
                transient: true,
            })?;
        let json: Option<serde_json::Map<String, Value>> = serde_json::from_str(&body).ok();
        match (status, json) {
            (200..=299, Some(obj)) => Ok(Answer::Ok(obj)),
            (400..=499, Some(obj)) if obj.get("error").is_some_and(Value::is_string) => {
                Ok(Answer::Error {
                    error: obj["error"].as_str().unwrap_or_default().to_owned(),
                    description: obj
                        .get("error_description")
                        .and_then(Value::as_str)
                        .map(|d| d.chars().take(300).collect()),
                })
            }
            (status, _) => Err(Failure {
                message: format!("HTTP {status} without an OAuth reply"),
                maybe_sent: true,
                transient: status >= 500 || status == 429 || status == 408,
            }),
        }
    }
}

/// Classify a ureq error: did the request get out, and may retrying help?
fn failure(e: &ureq::Error) -> Failure {
    use ureq::Timeout;
    let (maybe_sent, transient) = match e {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => (false, true),
        ureq::Error::Timeout(Timeout::Resolve | Timeout::Connect | Timeout::SendRequest) => {
            (false, true)
        }
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            ) =>
        {
            (false, true)
        }
        // Certificate problems do not pass by themselves, and nothing was sent.
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => (false, false),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => (false, false),
        _ => (true, true),
    };
    Failure {
        message: short(e),
        maybe_sent,
        transient,
    }
}

/// An error's text without anything that could echo a request body.
fn short(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    text.chars().take(300).collect()
}

impl Answer {
    /// A token response, or why it is not one.
    pub(crate) fn into_tokens(self) -> Result<TokenReply, (String, Option<String>)> {
        match self {
            Answer::Error { error, description } => Err((error, description)),
            Answer::Ok(mut obj) => {
                let access = match obj.remove("access_token") {
                    Some(Value::String(s)) if !s.is_empty() => SecretString::from(s),
                    _ => {
                        return Err((
                            "invalid_response".into(),
                            Some("the reply holds no access_token".into()),
                        ));
                    }
                };
                let refresh = match obj.remove("refresh_token") {
                    Some(Value::String(s)) if !s.is_empty() => Some(SecretString::from(s)),
                    _ => None,
                };
                Ok(TokenReply {
                    access_token: access,
                    refresh_token: refresh,
                    expires_in: seconds(obj.get("expires_in")),
                })
            }
        }
    }
}

/// A number of seconds, written as a JSON number or (by some servers) a string.
pub(crate) fn seconds(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn obj(text: &str) -> Answer {
        Answer::Ok(serde_json::from_str(text).unwrap())
    }

    #[test]
    fn token_replies() {
        let t = obj(
            r#"{"access_token":"A","token_type":"Bearer","expires_in":"3599","refresh_token":"R"}"#,
        )
        .into_tokens()
        .unwrap();
        assert_eq!(t.access_token.expose_secret(), "A");
        assert_eq!(t.refresh_token.unwrap().expose_secret(), "R");
        assert_eq!(t.expires_in, Some(3599));
        let t = obj(r#"{"access_token":"A","expires_in":60}"#)
            .into_tokens()
            .unwrap();
        assert!(t.refresh_token.is_none());
        assert_eq!(t.expires_in, Some(60));
        assert!(obj(r#"{"token_type":"Bearer"}"#).into_tokens().is_err());
    }

    #[test]
    fn debug_hides_tokens() {
        let t = obj(r#"{"access_token":"SECRET-A","refresh_token":"SECRET-R"}"#)
            .into_tokens()
            .unwrap();
        assert!(!format!("{t:?}").contains("SECRET"));
    }
}
