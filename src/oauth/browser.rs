//! The browser login: an authorization code with PKCE (RFC 7636, S256) and `state`, returned
//! to a loopback redirect `http://127.0.0.1:PORT/` (RFC 8252 §7.3). For a machine without a
//! browser, the address the browser ended on elsewhere can be pasted on stdin instead.
//! Blocking; `imapsort login` runs it.

use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

use super::OAuthError;
use super::http::{Http, TokenReply};
use crate::config::OAuth2;

/// RFC 3986 unreserved characters stay; everything else in a query value is escaped.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How long a redirect's request head may take to arrive.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// A browser login under way: the URL to open and what the answer must match.
pub struct Pending {
    /// The authorization request to open in a browser.
    pub url: String,
    /// `http://127.0.0.1:PORT/`, where the browser comes back.
    pub redirect_uri: String,
    /// Must come back unchanged (CSRF protection).
    state: String,
    /// The PKCE secret; only its SHA-256 went out in the URL.
    verifier: SecretString,
    /// The loopback listener.
    listener: TcpListener,
}

/// How a browser login ended.
#[derive(Debug)]
pub enum Outcome {
    /// The authorization code, to be exchanged.
    Code(SecretString),
    /// The provider sent `error=access_denied` (or another error) with our state.
    Denied(String),
    /// Nothing came back in time.
    Expired,
}

/// What one redirect (or pasted address) says, checked against our `state`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Redirect {
    Code(String),
    Error(String),
    /// `state` missing or different: not our request, ignored.
    WrongState,
    /// Neither `code` nor `error` (a favicon request, say).
    Nothing,
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .expect("the system's random source works");
    B64URL.encode(buf)
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(verifier))`.
pub(crate) fn challenge(verifier: &str) -> String {
    B64URL.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// Bind the loopback listener and build the authorization URL.
pub fn prepare(oauth: &OAuth2) -> Result<Pending, OAuthError> {
    let Some(authorize) = oauth.authorize_url.as_deref() else {
        return Err(OAuthError::Refused {
            url: oauth.token_url.clone(),
            error: "no authorization endpoint".into(),
            description: None,
        });
    };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| OAuthError::Store {
        path: "127.0.0.1".into(),
        message: format!("cannot listen for the redirect: {e}"),
        source: Some(e),
    })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let redirect_uri = format!("http://127.0.0.1:{port}/");
    let state = random_token(16);
    let verifier = random_token(32);
    let scope = oauth.scopes.join(" ");
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &oauth.client_id),
        ("redirect_uri", &redirect_uri),
    ];
    if !scope.is_empty() {
        params.push(("scope", &scope));
    }
    let challenge = challenge(&verifier);
    params.extend([
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    for (k, v) in &oauth.authorize_params {
        params.push((k, v));
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
        .collect();
    let sep = if authorize.contains('?') { '&' } else { '?' };
    Ok(Pending {
        url: format!("{authorize}{sep}{}", query.join("&")),
        redirect_uri,
        state,
        verifier: SecretString::from(verifier),
        listener,
    })
}

/// Read `key=value&...` (form encoding: `+` is a space).
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// What an address (a redirect target or a pasted URL) says about our request.
pub(crate) fn interpret(address: &str, state: &str) -> Redirect {
    let address = address.trim();
    let address = address.split('#').next().unwrap_or_default();
    let query = match address.split_once('?') {
        Some((_, q)) => q,
        None if address.contains('=') => address,
        None => return Redirect::Nothing,
    };
    let pairs = query_pairs(query);
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if get("code").is_none() && get("error").is_none() {
        return Redirect::Nothing;
    }
    if get("state") != Some(state) {
        return Redirect::WrongState;
    }
    match (get("code"), get("error")) {
        (_, Some(error)) => {
            let desc = get("error_description")
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            Redirect::Error(format!("{error}{desc}"))
        }
        (Some(code), None) => Redirect::Code(code.to_owned()),
        (None, None) => Redirect::Nothing,
    }
}

/// Things the waiting login hears about.
enum Event {
    /// The listener got our code or error (state already checked).
    Redirect(Redirect),
    /// A line pasted on stdin.
    Pasted(String),
}

impl Pending {
    /// Wait up to `limit` for the browser to come back or an address to be pasted (`stdin`:
    /// a line reader; `None` to listen only). `say` prints progress notes for the user.
    pub fn wait(
        &self,
        stdin: Option<Box<dyn BufRead + Send>>,
        limit: Duration,
        say: &mut dyn FnMut(&str),
    ) -> Outcome {
        let (tx, rx) = mpsc::channel::<Event>();
        let listener = match self.listener.try_clone() {
            Ok(l) => l,
            Err(_) => return Outcome::Expired,
        };
        let state = self.state.clone();
        let redirect_tx = tx.clone();
        std::thread::spawn(move || serve(listener, &state, &redirect_tx));
        if let Some(mut input) = stdin {
            std::thread::spawn(move || {
                let mut line = String::new();
                while matches!(input.read_line(&mut line), Ok(n) if n > 0) {
                    if tx.send(Event::Pasted(std::mem::take(&mut line))).is_err() {
                        break;
                    }
                }
            });
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = match rx.recv_timeout(left) {
                Ok(e) => e,
                Err(_) => return Outcome::Expired,
            };
            let redirect = match event {
                Event::Redirect(r) => r,
                Event::Pasted(line) if line.trim().is_empty() => continue,
                Event::Pasted(line) => match interpret(&line, &self.state) {
                    Redirect::Nothing => {
                        say(
                            "that is not the address the browser ended on (it holds no code=); paste the whole address",
                        );
                        continue;
                    }
                    Redirect::WrongState => {
                        say(
                            "that address belongs to another login (its state does not match); paste the address from this login",
                        );
                        continue;
                    }
                    r => r,
                },
            };
            match redirect {
                Redirect::Code(code) => return Outcome::Code(SecretString::from(code)),
                Redirect::Error(e) => return Outcome::Denied(e),
                Redirect::WrongState | Redirect::Nothing => {}
            }
        }
    }

    /// Exchange the code for tokens (RFC 6749 §4.1.3 with the PKCE verifier).
    pub fn exchange(
        &self,
        http: &Http,
        oauth: &OAuth2,
        client_secret: Option<&SecretString>,
        code: &SecretString,
    ) -> Result<TokenReply, OAuthError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.expose_secret()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("client_id", oauth.client_id.as_str()),
            ("code_verifier", self.verifier.expose_secret()),
        ];
        if let Some(s) = client_secret {
            form.push(("client_secret", s.expose_secret()));
        }
        let url = &oauth.token_url;
        let answer = http
            .post_form(url, &form)
            .map_err(|f| OAuthError::Endpoint {
                url: url.clone(),
                message: f.message,
                transient: f.transient,
            })?;
        answer
            .into_tokens()
            .map_err(|(error, description)| OAuthError::Refused {
                url: url.clone(),
                error,
                description,
            })
    }
}

/// Answer requests on the loopback listener until ours arrives.
fn serve(listener: TcpListener, state: &str, tx: &mpsc::Sender<Event>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let target = read_target(&mut stream);
        let redirect = target
            .as_deref()
            .map_or(Redirect::Nothing, |t| interpret(t, state));
        let (status, body) = match &redirect {
            Redirect::Code(_) => ("200 OK", "imapsort: signed in. You can close this window."),
            Redirect::Error(_) => (
                "200 OK",
                "imapsort: the sign-in was refused. You can close this window.",
            ),
            Redirect::WrongState => (
                "400 Bad Request",
                "imapsort: this answer belongs to another sign-in (state does not match).",
            ),
            Redirect::Nothing => ("404 Not Found", "imapsort: nothing here."),
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.flush();
        if matches!(redirect, Redirect::Code(_) | Redirect::Error(_)) {
            let _ = tx.send(Event::Redirect(redirect));
            return;
        }
    }
}

/// The request target of one HTTP request (parsed with httparse), if it is a GET.
fn read_target(stream: &mut TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(REQUEST_LIMIT)).ok()?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                return (req.method == Some("GET")).then(|| req.path.map(str::to_owned))?;
            }
            Ok(httparse::Status::Partial) if buf.len() < 16 * 1024 => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_challenge() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn redirects_are_checked_against_state() {
        let s = "xyz";
        for (address, want) in [
            ("/?code=abc&state=xyz", Redirect::Code("abc".into())),
            (
                "http://127.0.0.1:4000/?state=xyz&code=a%2Fb+c",
                Redirect::Code("a/b c".into()),
            ),
            (
                "  http://127.0.0.1:4000/?code=abc&state=xyz#frag \n",
                Redirect::Code("abc".into()),
            ),
            ("code=abc&state=xyz", Redirect::Code("abc".into())),
            ("/?code=abc&state=other", Redirect::WrongState),
            ("/?code=abc", Redirect::WrongState),
            (
                "/?error=access_denied&state=xyz",
                Redirect::Error("access_denied".into()),
            ),
            ("/favicon.ico", Redirect::Nothing),
            ("hello", Redirect::Nothing),
        ] {
            assert_eq!(interpret(address, s), want, "{address}");
        }
    }

    #[test]
    fn authorization_url_carries_pkce_and_state() {
        let oauth = OAuth2 {
            provider: crate::config::Provider::Custom,
            client_id: "my app".into(),
            client_secret: None,
            scopes: vec!["imap".into(), "offline_access".into()],
            token_url: "https://t.example/token".into(),
            device_url: None,
            authorize_url: Some("https://t.example/authorize?tenant=x".into()),
            authorize_params: vec![("prompt".into(), "consent".into())],
            token_file: "/nonexistent".into(),
            span: crate::rules::ast::Span { line: 1, column: 1 },
        };
        let p = prepare(&oauth).unwrap();
        let (base, query) = p.url.split_once("?").unwrap();
        assert_eq!(base, "https://t.example/authorize");
        let pairs = query_pairs(query);
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("tenant").as_deref(), Some("x"));
        assert_eq!(get("client_id").as_deref(), Some("my app"));
        assert_eq!(get("scope").as_deref(), Some("imap offline_access"));
        assert_eq!(get("redirect_uri"), Some(p.redirect_uri.clone()));
        assert!(p.redirect_uri.starts_with("http://127.0.0.1:"));
        assert_eq!(get("code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(
            get("code_challenge"),
            Some(challenge(p.verifier.expose_secret()))
        );
        assert_eq!(get("state"), Some(p.state.clone()));
        assert_eq!(get("prompt").as_deref(), Some("consent"));
        assert!(!p.url.contains(p.verifier.expose_secret()));
    }
}
