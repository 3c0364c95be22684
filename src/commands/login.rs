//! `imapsort login -c FILE ACCOUNT [--method device|browser]`: sign an `auth: oauth2` account
//! in once and save its tokens to `STATE_DIR/oauth2/ACCOUNT.json`.
//!
//! Exit 0 signed in; 75 the code expired (or nothing came back in time); 77 the user refused;
//! 78 the configuration cannot do it (no such account, no `auth: oauth2`, a method the
//! provider lacks, an unreadable `client_secret`); 69 the provider could not be reached or
//! refused the request.

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, SystemTime};

use crate::cli::{LoginArgs, LoginMethod};
use crate::commands::{Warnings, load_config};
use crate::config::{Account, Diagnostic, OAuth2, Provider, Severity};
use crate::exit::Exit;
use crate::oauth::store::{self, Tokens};
use crate::oauth::{Http, OAuthError, TokenReply, browser, device};

/// How long the browser login waits for the redirect (or a pasted address).
const BROWSER_LIMIT: Duration = Duration::from_secs(600);

/// Run `login` with the process's stdin (for a pasted redirect address).
pub fn run(args: &LoginArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let stdin: Box<dyn BufRead + Send> = Box::new(BufReader::new(std::io::stdin()));
    run_with(args, out, Some(stdin))
}

/// Run `login`; `stdin` gives pasted addresses for the browser method.
pub fn run_with(
    args: &LoginArgs,
    out: &mut dyn Write,
    stdin: Option<Box<dyn BufRead + Send>>,
) -> anyhow::Result<Exit> {
    let config = match load_config(&args.config, Warnings::Print, &mut std::io::stderr()) {
        Ok(c) => c,
        Err(exit) => return Ok(exit),
    };
    let path = config.path.clone();
    let config_error = |account: &Account, span, message: String| {
        let d = Diagnostic {
            severity: Severity::Error,
            file: path.clone(),
            span: Some(span),
            rule: None,
            account: Some(account.name.clone()),
            message,
        };
        eprintln!("{d}");
        Ok(Exit::Config)
    };
    let Some(account) = config.account(&args.account) else {
        eprintln!(
            "{}: error: no account named {:?}",
            path.display(),
            args.account
        );
        return Ok(Exit::Config);
    };
    let Some(oauth) = account.credentials.oauth2() else {
        return config_error(
            account,
            account.span,
            "login is for accounts with auth: oauth2; this one has a password source".into(),
        );
    };
    let method = args.method.unwrap_or(if oauth.device_url.is_some() {
        LoginMethod::Device
    } else {
        LoginMethod::Browser
    });
    match method {
        LoginMethod::Device if oauth.device_url.is_none() => {
            let why = match oauth.provider {
                Provider::Google => "provider google has no device login that allows IMAP (Google's device flow refuses https://mail.google.com/); use --method browser".to_owned(),
                _ => "no device_url is configured; add it, or use --method browser".to_owned(),
            };
            return config_error(account, oauth.span, format!("login --method device: {why}"));
        }
        LoginMethod::Browser if oauth.authorize_url.is_none() => {
            return config_error(
                account,
                oauth.span,
                "login --method browser: no authorize_url is configured; add it, or use --method device".into(),
            );
        }
        _ => {}
    }
    let config_dir = crate::config::dir_of(&path).to_path_buf();
    let secret = match &oauth.client_secret {
        Some(s) => match s.resolve(&config_dir) {
            Ok(v) => Some(v),
            Err(e) => {
                return config_error(account, oauth.span, format!("client_secret: {e}"));
            }
        },
        None => None,
    };
    let http = match Http::new(account.ca_file.as_deref()) {
        Ok(h) => h,
        Err(e) => return config_error(account, account.span, e.to_string()),
    };
    let result = match method {
        LoginMethod::Device => device_login(&http, account, oauth, secret.as_ref(), out)?,
        LoginMethod::Browser => browser_login(&http, account, oauth, secret.as_ref(), out, stdin)?,
    };
    let reply = match result {
        Ended::Tokens(reply) => reply,
        Ended::Exit(exit) => return Ok(exit),
        Ended::Failed(e) => {
            eprintln!("imapsort: account {}: sign-in failed: {e}", account.name);
            return Ok(Exit::Unavailable);
        }
    };
    if reply.refresh_token.is_none() {
        let hint = match oauth.provider {
            Provider::Microsoft => "the scopes need offline_access",
            Provider::Google => {
                "Google sends one with access_type=offline, which imapsort asks for; check the client type is Desktop app"
            }
            Provider::Custom => {
                "the scopes may need offline_access, or the client may not be allowed refresh tokens"
            }
        };
        return config_error(
            account,
            oauth.span,
            format!(
                "the provider sent no refresh token, so imapsort could not stay signed in ({hint})"
            ),
        );
    }
    let tokens = Tokens {
        refresh_token: reply.refresh_token,
        access_token: Some(reply.access_token),
        expires_at: reply
            .expires_in
            .map(|s| SystemTime::now() + Duration::from_secs(s)),
        rotates: None,
        client_id: oauth.client_id.clone(),
        token_url: oauth.token_url.clone(),
        needs_login: None,
    };
    // Under the refresh lock, so a daemon refreshing the old sign-in cannot write over this one.
    let saved =
        store::lock(&oauth.token_file).and_then(|_lock| store::save(&oauth.token_file, &tokens));
    if let Err(e) = saved {
        eprintln!("imapsort: account {}: {e}", account.name);
        return Ok(Exit::Software);
    }
    writeln!(
        out,
        "Signed in: account {} is ready; its tokens are saved in {}.",
        account.name,
        oauth.token_file.display()
    )?;
    out.flush()?;
    Ok(Exit::Ok)
}

/// How a login method ended.
enum Ended {
    Tokens(TokenReply),
    /// Denied (77) or expired (75), already reported.
    Exit(Exit),
    Failed(OAuthError),
}

fn device_login(
    http: &Http,
    account: &Account,
    oauth: &OAuth2,
    secret: Option<&secrecy::SecretString>,
    out: &mut dyn Write,
) -> anyhow::Result<Ended> {
    let mut auth = match device::authorize(http, oauth, secret) {
        Ok(a) => a,
        Err(e) => return Ok(Ended::Failed(e)),
    };
    writeln!(out, "To sign in account {}, open", account.name)?;
    writeln!(out, "  {}", auth.verification_uri)?;
    writeln!(out, "and enter the code")?;
    writeln!(out, "  {}", auth.user_code)?;
    if let Some(complete) = &auth.verification_uri_complete {
        writeln!(out, "(or open {complete}, which has the code filled in)")?;
    }
    writeln!(
        out,
        "Waiting for the sign-in; the code expires in {} minutes.",
        auth.expires_in.as_secs().div_ceil(60)
    )?;
    out.flush()?;
    let outcome = device::poll(http, oauth, secret, &mut auth, &mut std::thread::sleep);
    Ok(match outcome {
        Ok(device::Outcome::Approved(reply)) => Ended::Tokens(reply),
        Ok(device::Outcome::Denied(why)) => {
            eprintln!(
                "imapsort: account {}: the sign-in was refused{}",
                account.name,
                why.map(|w| format!(" ({w})")).unwrap_or_default()
            );
            Ended::Exit(Exit::NoPerm)
        }
        Ok(device::Outcome::Expired) => {
            eprintln!(
                "imapsort: account {}: the code expired before the sign-in; run imapsort login again",
                account.name
            );
            Ended::Exit(Exit::TempFail)
        }
        Err(e) => Ended::Failed(e),
    })
}

fn browser_login(
    http: &Http,
    account: &Account,
    oauth: &OAuth2,
    secret: Option<&secrecy::SecretString>,
    out: &mut dyn Write,
    stdin: Option<Box<dyn BufRead + Send>>,
) -> anyhow::Result<Ended> {
    let pending = match browser::prepare(oauth) {
        Ok(p) => p,
        Err(e) => return Ok(Ended::Failed(e)),
    };
    writeln!(
        out,
        "To sign in account {}, open this address in a browser:",
        account.name
    )?;
    writeln!(out, "  {}", pending.url)?;
    writeln!(
        out,
        "The browser comes back to {} by itself. On a machine without a browser, open the address elsewhere, then paste here the address the browser ends on (its page will not load; that is expected) and press Enter.",
        pending.redirect_uri
    )?;
    out.flush()?;
    let mut say = |note: &str| eprintln!("imapsort: {note}");
    Ok(match pending.wait(stdin, BROWSER_LIMIT, &mut say) {
        browser::Outcome::Code(code) => match pending.exchange(http, oauth, secret, &code) {
            Ok(reply) => Ended::Tokens(reply),
            Err(e) => Ended::Failed(e),
        },
        browser::Outcome::Denied(why) => {
            eprintln!(
                "imapsort: account {}: the sign-in was refused ({why})",
                account.name
            );
            Ended::Exit(Exit::NoPerm)
        }
        browser::Outcome::Expired => {
            eprintln!(
                "imapsort: account {}: no answer from the browser within {} minutes; run imapsort login again",
                account.name,
                BROWSER_LIMIT.as_secs() / 60
            );
            Ended::Exit(Exit::TempFail)
        }
    })
}
