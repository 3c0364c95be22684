//! A small OAuth 2.0 authorization server on 127.0.0.1:0 for the tests (tiny_http, one
//! thread): device authorization (RFC 8628), authorization code with PKCE S256 (RFC 7636),
//! refresh with strict rotation (a refresh token used twice revokes its whole family),
//! introspection for Dovecot's oauth2 passdb (RFC 7662) and revocation (RFC 7009).
//!
//! The test plays the user: `approve(user_code, user)` / `deny(user_code)` for the device
//! flow; `/authorize` signs in `browser_user` at once and redirects with the code. Every
//! secret the server hands out is remembered in `issued()`, so a test can look for each one
//! in logs and output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;

pub const CLIENT_ID: &str = "imapsort-test-client";

/// One family of tokens descending from one sign-in.
#[derive(Debug, Default)]
struct Family {
    user: String,
    revoked: bool,
}

#[derive(Debug)]
struct Device {
    user_code: String,
    /// `None` pending, `Some(Ok(user))` approved, `Some(Err(()))` denied.
    decision: Option<Result<String, ()>>,
    expires: Instant,
    /// Already redeemed for tokens.
    done: bool,
}

#[derive(Debug)]
struct Code {
    user: String,
    redirect_uri: String,
    challenge: String,
    used: bool,
}

/// Everything the server knows; tests read it through [`AuthServer`].
#[derive(Debug, Default)]
pub struct State {
    families: Vec<Family>,
    /// access token -> (family, expires)
    access: HashMap<String, (usize, Instant)>,
    /// refresh token -> (family, used)
    refresh: HashMap<String, (usize, bool)>,
    devices: HashMap<String, Device>,
    codes: HashMap<String, Code>,
    /// Every token, code and device code handed out.
    pub issued: Vec<String>,
    /// How long access tokens live, as the server says (`expires_in`) and enforces.
    pub access_ttl: Duration,
    /// Device flow: interval and lifetime handed out; `slow_down` on the second poll.
    pub device_interval: u64,
    pub device_ttl: Duration,
    pub slow_down_once: bool,
    /// When each device-flow poll came in.
    pub polls: Vec<Instant>,
    /// Who `/authorize` signs in.
    pub browser_user: String,
    /// Refresh requests answered (any outcome), and those with a used or revoked token.
    pub refreshes: u32,
    pub refused_refreshes: u32,
    /// Introspection requests (Dovecot's logins).
    pub introspections: u32,
    /// Required in token requests when set.
    pub client_secret: Option<String>,
    counter: u64,
}

impl State {
    fn mint(&mut self, prefix: &str) -> String {
        self.counter += 1;
        let mut raw = [0u8; 18];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = (fastrand::u8(..)).wrapping_add(i as u8);
        }
        let t = format!(
            "{prefix}-{}-{}",
            self.counter,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        self.issued.push(t.clone());
        t
    }

    fn tokens(&mut self, family: usize) -> serde_json::Value {
        let access = self.mint("at");
        let refresh = self.mint("rt");
        self.access
            .insert(access.clone(), (family, Instant::now() + self.access_ttl));
        self.refresh.insert(refresh.clone(), (family, false));
        json!({"access_token": access, "token_type": "Bearer",
               "expires_in": self.access_ttl.as_secs(), "refresh_token": refresh})
    }

    fn new_family(&mut self, user: &str) -> usize {
        self.families.push(Family {
            user: user.to_owned(),
            revoked: false,
        });
        self.families.len() - 1
    }
}

/// The running server; stops with the test process.
pub struct AuthServer {
    pub port: u16,
    pub state: Arc<Mutex<State>>,
}

fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn reply(status: u16, body: serde_json::Value) -> (u16, String, Option<String>) {
    (status, body.to_string(), None)
}

fn error(error: &str) -> (u16, String, Option<String>) {
    reply(400, json!({"error": error}))
}

impl AuthServer {
    pub fn start() -> AuthServer {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind the auth server");
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let state = Arc::new(Mutex::new(State {
            access_ttl: Duration::from_secs(3600),
            device_interval: 1,
            device_ttl: Duration::from_secs(120),
            browser_user: "alice".into(),
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for mut request in server.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let url = request.url().to_owned();
                let (status, text, location) = {
                    let mut s = shared.lock().unwrap();
                    handle(&mut s, request.method(), &url, &body)
                };
                let mut response = tiny_http::Response::from_string(text).with_status_code(status);
                let header = |k: &str, v: &str| tiny_http::Header::from_bytes(k, v).unwrap();
                response.add_header(header("Content-Type", "application/json"));
                if let Some(location) = location {
                    response.add_header(header("Location", &location));
                }
                let _ = request.respond(response);
            }
        });
        AuthServer { port, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// An `oauth2:` block (custom provider) for this server, indented for an account.
    pub fn oauth2_yaml(&self) -> String {
        format!(
            "    auth: oauth2\n    oauth2:\n      provider: custom\n      client_id: {CLIENT_ID}\n      token_url: {}\n      device_url: {}\n      authorize_url: {}\n      scopes: [imap, offline_access]\n",
            self.url("token"),
            self.url("device"),
            self.url("authorize")
        )
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// The user approves the device login with this code.
    pub fn approve(&self, user_code: &str, user: &str) {
        self.decide(user_code, Ok(user.to_owned()));
    }

    pub fn deny(&self, user_code: &str) {
        self.decide(user_code, Err(()));
    }

    fn decide(&self, user_code: &str, decision: Result<String, ()>) {
        self.with(|s| {
            let d = s
                .devices
                .values_mut()
                .find(|d| d.user_code == user_code)
                .unwrap_or_else(|| panic!("no device login with code {user_code}"));
            d.decision = Some(decision);
        });
    }

    /// Revoke every sign-in of `user` (as an administrator or the user would).
    pub fn revoke_user(&self, user: &str) {
        self.with(|s| {
            for f in s.families.iter_mut().filter(|f| f.user == user) {
                f.revoked = true;
            }
        });
    }

    /// Make every access token issued so far expire now (clients do not know).
    pub fn expire_access_tokens(&self) {
        self.with(|s| {
            for (_, exp) in s.access.values_mut() {
                *exp = Instant::now() - Duration::from_secs(1);
            }
        });
    }

    /// Every secret handed out so far.
    pub fn issued(&self) -> Vec<String> {
        self.with(|s| s.issued.clone())
    }

    /// The valid (not used, not revoked) refresh tokens of `user`.
    pub fn live_refresh_tokens(&self, user: &str) -> Vec<String> {
        self.with(|s| {
            s.refresh
                .iter()
                .filter(|(_, (fam, used))| {
                    !used && !s.families[*fam].revoked && s.families[*fam].user == user
                })
                .map(|(t, _)| t.clone())
                .collect()
        })
    }
}

fn handle(
    s: &mut State,
    method: &tiny_http::Method,
    url: &str,
    body: &str,
) -> (u16, String, Option<String>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let f = form(if *method == tiny_http::Method::Get {
        query
    } else {
        body
    });
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    match path {
        "/device" => {
            if get("client_id") != CLIENT_ID {
                return error("invalid_client");
            }
            let device_code = s.mint("dc");
            let user_code = format!("U{}", s.counter);
            s.devices.insert(
                device_code.clone(),
                Device {
                    user_code: user_code.clone(),
                    decision: None,
                    expires: Instant::now() + s.device_ttl,
                    done: false,
                },
            );
            reply(
                200,
                json!({"device_code": device_code, "user_code": user_code,
                       "verification_uri": format!("http://127.0.0.1/verify"),
                       "expires_in": s.device_ttl.as_secs(), "interval": s.device_interval}),
            )
        }
        "/authorize" => {
            let redirect = get("redirect_uri").to_owned();
            if get("client_id") != CLIENT_ID
                || get("code_challenge_method") != "S256"
                || get("response_type") != "code"
                || !redirect.starts_with("http://127.0.0.1:")
            {
                return error("invalid_request");
            }
            let code = s.mint("ac");
            let user = s.browser_user.clone();
            s.codes.insert(
                code.clone(),
                Code {
                    user,
                    redirect_uri: redirect.clone(),
                    challenge: get("code_challenge").to_owned(),
                    used: false,
                },
            );
            let location = format!("{redirect}?code={code}&state={}", get("state"));
            (302, String::new(), Some(location))
        }
        "/token" => {
            if get("client_id") != CLIENT_ID {
                return error("invalid_client");
            }
            if let Some(secret) = &s.client_secret
                && get("client_secret") != secret
            {
                return error("invalid_client");
            }
            match get("grant_type") {
                "urn:ietf:params:oauth:grant-type:device_code" => {
                    s.polls.push(Instant::now());
                    let second_poll = s.polls.len() == 2;
                    let slow = s.slow_down_once;
                    let Some(d) = s.devices.get_mut(get("device_code")) else {
                        return error("invalid_grant");
                    };
                    if d.done || Instant::now() > d.expires {
                        return error("expired_token");
                    }
                    match d.decision.clone() {
                        None if slow && second_poll => error("slow_down"),
                        None => error("authorization_pending"),
                        Some(Err(())) => error("access_denied"),
                        Some(Ok(user)) => {
                            d.done = true;
                            let fam = s.new_family(&user);
                            reply(200, s.tokens(fam))
                        }
                    }
                }
                "authorization_code" => {
                    let verifier = get("code_verifier").to_owned();
                    let redirect = get("redirect_uri").to_owned();
                    let Some(c) = s.codes.get_mut(get("code")) else {
                        return error("invalid_grant");
                    };
                    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
                    let expected =
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
                    if c.used || c.redirect_uri != redirect || c.challenge != expected {
                        return error("invalid_grant");
                    }
                    c.used = true;
                    let user = c.user.clone();
                    let fam = s.new_family(&user);
                    reply(200, s.tokens(fam))
                }
                "refresh_token" => {
                    s.refreshes += 1;
                    let Some((fam, used)) = s.refresh.get(get("refresh_token")).copied() else {
                        s.refused_refreshes += 1;
                        return error("invalid_grant");
                    };
                    if used || s.families[fam].revoked {
                        // Strict rotation: reuse revokes the whole family.
                        s.families[fam].revoked = true;
                        s.refused_refreshes += 1;
                        return error("invalid_grant");
                    }
                    s.refresh
                        .insert(get("refresh_token").to_owned(), (fam, true));
                    reply(200, s.tokens(fam))
                }
                _ => error("unsupported_grant_type"),
            }
        }
        "/introspect" => {
            s.introspections += 1;
            let active = s.access.get(get("token")).and_then(|(fam, exp)| {
                let family = &s.families[*fam];
                (!family.revoked && Instant::now() < *exp).then(|| family.user.clone())
            });
            match active {
                Some(user) => reply(200, json!({"active": true, "username": user})),
                None => reply(200, json!({"active": false})),
            }
        }
        "/revoke" => {
            let token = get("token");
            let fam = s
                .refresh
                .get(token)
                .map(|(f, _)| *f)
                .or_else(|| s.access.get(token).map(|(f, _)| *f));
            if let Some(fam) = fam {
                s.families[fam].revoked = true;
            }
            reply(200, json!({}))
        }
        _ => (404, String::new(), None),
    }
}
