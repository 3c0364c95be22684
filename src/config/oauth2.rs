//! An account's `oauth2:` block (with `auth: oauth2`): provider, client, scopes, endpoints.
//!
//! The provider fills in what the user leaves out: Microsoft's endpoints for a tenant and its
//! IMAP scope with `offline_access`; Google's endpoints and `https://mail.google.com/`. A
//! `custom` provider names every URL itself. Endpoint URLs must be `https`, except on a
//! loopback address (a token server on the same machine, as in the tests).

use super::diag::Diags;
use super::node::Node;
use super::password::{FileFacts, password};
use super::read::{self, MapKind};
use super::types::{AuthMechanism, OAuth2, Provider};

const OAUTH2_KEYS: &[&str] = &[
    "provider",
    "client_id",
    "client_secret",
    "tenant",
    "scopes",
    "token_url",
    "device_url",
    "authorize_url",
    "mechanism",
];

const PROVIDERS: &[(&str, Provider)] = &[
    ("microsoft", Provider::Microsoft),
    ("google", Provider::Google),
    ("custom", Provider::Custom),
];

const MECHANISMS: &[(&str, AuthMechanism)] = &[
    ("xoauth2", AuthMechanism::XOAuth2),
    ("oauthbearer", AuthMechanism::OAuthBearer),
];

/// Microsoft's IMAP scope; `offline_access` is what makes it hand out a refresh token.
pub const MICROSOFT_SCOPES: &[&str] = &[
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "offline_access",
];
/// Google's only scope that allows IMAP.
pub const GOOGLE_SCOPES: &[&str] = &["https://mail.google.com/"];
const MICROSOFT_LOGIN: &str = "https://login.microsoftonline.com";
const GOOGLE_AUTHORIZE: &str = "https://accounts.google.com/o/oauth2/v2/auth";
const GOOGLE_TOKEN: &str = "https://oauth2.googleapis.com/token";

/// Read the `oauth2:` block of account `account`; returns the settings and the SASL mechanism.
pub(crate) fn oauth2(
    d: &mut Diags,
    node: &Node,
    facts: &FileFacts,
    account: Option<&str>,
) -> Option<(OAuth2, AuthMechanism)> {
    let kind = MapKind {
        noun: "key",
        context: " in oauth2",
        allowed: OAUTH2_KEYS,
        quiet: &[],
    };
    let f = read::fields(d, node, "oauth2", &kind)?;
    let errors_before = d.error_count();
    let provider_node = f.get("provider");
    let provider = f
        .require(d, "provider", "microsoft, google or custom")
        .and_then(|n| read::choice(d, n, "provider", PROVIDERS));
    let client_id = f
        .require(
            d,
            "client_id",
            "the application (client) ID of the app registered with the provider (see docs/configuration.md)",
        )
        .and_then(|n| read::text(d, n, "client_id"));
    let client_secret = f
        .get("client_secret")
        .and_then(|n| password(d, n, facts, "client_secret"));
    let mechanism = match f.get("mechanism") {
        Some(n) => read::choice(d, n, "mechanism", MECHANISMS),
        None => Some(AuthMechanism::XOAuth2),
    };
    let scopes = f.get("scopes").and_then(|n| scopes(d, n));
    let url = |d: &mut Diags, key: &str| f.get(key).and_then(|n| endpoint(d, n, key));
    let token_url = url(d, "token_url");
    let device_url = url(d, "device_url");
    let authorize_url = url(d, "authorize_url");
    let tenant = f.get("tenant").and_then(|n| tenant(d, n));

    let provider = provider?;
    if provider != Provider::Microsoft
        && let Some(n) = f.get("tenant")
    {
        d.error(
            n.span,
            format!(
                "tenant: only for provider microsoft (this is {})",
                provider.name()
            ),
        );
    }
    let (token_url, device_url, authorize_url, default_scopes, params) = match provider {
        Provider::Microsoft => {
            let base = format!(
                "{MICROSOFT_LOGIN}/{}/oauth2/v2.0",
                tenant.as_deref().unwrap_or("common")
            );
            (
                token_url.or_else(|| Some(format!("{base}/token"))),
                device_url.or_else(|| Some(format!("{base}/devicecode"))),
                authorize_url.or_else(|| Some(format!("{base}/authorize"))),
                MICROSOFT_SCOPES,
                Vec::new(),
            )
        }
        Provider::Google => {
            if let Some(n) = f.get("device_url") {
                d.error(
                    n.span,
                    "device_url: Google's device login does not allow the IMAP scope (https://mail.google.com/); leave it out and sign in with the browser",
                );
            }
            (
                token_url.or_else(|| Some(GOOGLE_TOKEN.to_owned())),
                None,
                authorize_url.or_else(|| Some(GOOGLE_AUTHORIZE.to_owned())),
                GOOGLE_SCOPES,
                // A refresh token only comes with offline access; `consent` makes Google send
                // a new one on every login, not only the first.
                vec![
                    ("access_type".to_owned(), "offline".to_owned()),
                    ("prompt".to_owned(), "consent".to_owned()),
                ],
            )
        }
        Provider::Custom => {
            if f.get("token_url").is_none() {
                d.error(
                    f.span,
                    "provider custom needs token_url (the token endpoint)",
                );
            }
            if f.get("device_url").is_none() && f.get("authorize_url").is_none() {
                d.error(
                    f.span,
                    "provider custom needs device_url (device login) or authorize_url (browser login), or both",
                );
            }
            (token_url, device_url, authorize_url, &[][..], Vec::new())
        }
    };
    if d.error_count() != errors_before {
        return None;
    }
    let scopes = scopes.unwrap_or_else(|| default_scopes.iter().map(|s| (*s).to_owned()).collect());
    let token_file = facts
        .state_dir
        .join("oauth2")
        .join(format!("{}.json", account?));
    Some((
        OAuth2 {
            provider,
            client_id: client_id?,
            client_secret,
            scopes,
            token_url: token_url?,
            device_url,
            authorize_url,
            authorize_params: params,
            token_file,
            span: provider_node.map_or(f.span, |n| n.span),
        },
        mechanism?,
    ))
}

/// `scopes:` as a list (or one string); each scope is one token without spaces.
fn scopes(d: &mut Diags, node: &Node) -> Option<Vec<String>> {
    let list = read::text_list(d, node, "scopes")?;
    let mut ok = true;
    for (s, span) in &list {
        if s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        {
            d.error(
                *span,
                format!("scopes: {s:?} is not one scope (no spaces, quotes or backslashes); write each scope as its own list item"),
            );
            ok = false;
        }
    }
    ok.then(|| list.into_iter().map(|(s, _)| s).collect())
}

/// A Microsoft tenant: `common`, `organizations`, `consumers`, a domain or a GUID.
fn tenant(d: &mut Diags, node: &Node) -> Option<String> {
    let s = read::text(d, node, "tenant")?;
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        d.error(
            node.span,
            format!("tenant: {s:?} is not a tenant name (common, organizations, consumers, a domain or a directory ID)"),
        );
        return None;
    }
    Some(s)
}

/// An endpoint URL: `https://HOST/...`, or `http://` to a loopback address only.
fn endpoint(d: &mut Diags, node: &Node, key: &str) -> Option<String> {
    let s = read::text(d, node, key)?;
    match check_endpoint(&s) {
        Ok(()) => Some(s),
        Err(why) => {
            d.error(node.span, format!("{key}: {why}"));
            None
        }
    }
}

/// Why `url` cannot be a token or authorization endpoint, if it cannot.
pub(crate) fn check_endpoint(url: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        return Err(format!("{url:?} has no host"));
    };
    if url.contains('#') {
        return Err(format!(
            "{url:?} has a fragment (#...), which an endpoint must not have"
        ));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(format!(
            "{url:?} is plain http; tokens are sent only over https (http only to a loopback address)"
        )),
        _ => Err(format!("{url:?} must start with https://")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        for (url, ok) in [
            ("https://login.example.com/token", true),
            ("https://login.example.com:8443/oauth2/token?x=1", true),
            ("http://127.0.0.1:8080/token", true),
            ("http://127.9.0.1/token", true),
            ("http://[::1]:80/token", true),
            ("http://localhost/token", true),
            ("http://login.example.com/token", false),
            ("ftp://login.example.com/token", false),
            ("login.example.com/token", false),
            ("https:///token", false),
            ("https://login.example.com/token#frag", false),
            ("not a url", false),
        ] {
            assert_eq!(
                check_endpoint(url).is_ok(),
                ok,
                "{url}: {:?}",
                check_endpoint(url)
            );
        }
    }
}
