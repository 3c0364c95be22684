//! Driving `imapsort login` as the user would: its output lines on a channel, stdin for a
//! pasted address, the exit code within a limit.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::oauth_server::AuthServer;

/// A running `imapsort login` with its output lines arriving on a channel.
pub struct Login {
    child: Child,
    pub stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Everything it printed on stdout so far.
    pub stdout: Vec<String>,
    stderr_path: PathBuf,
}

impl Login {
    pub fn start(config: &Path, account: &str, method: &str) -> Login {
        let stderr_path = config.with_extension(format!("login-{account}-{method}.err"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_imapsort"))
            .args(["login", "-c"])
            .arg(config)
            .args([account, "--method", method])
            .env("IMAPSORT_LOG", "trace")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("start imapsort login");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Login {
            stdin: child.stdin.take(),
            child,
            lines,
            stdout: Vec::new(),
            stderr_path,
        }
    }

    /// The next stdout line that `pick` accepts (its result), within 20 s.
    pub fn wait_line<T>(&mut self, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("login printed no such line; so far: {:?}", self.stdout)
            });
            self.stdout.push(line.clone());
            if let Some(v) = pick(&line) {
                return v;
            }
        }
    }

    /// The device flow's user code (the indented line after "and enter the code").
    pub fn user_code(&mut self) -> String {
        let mut next = false;
        self.wait_line(|l| {
            if next {
                return Some(l.trim().to_owned());
            }
            next = l.starts_with("and enter the code");
            None
        })
    }

    /// The browser flow's authorization URL.
    pub fn browser_url(&mut self) -> String {
        self.wait_line(|l| l.trim().starts_with("http://").then(|| l.trim().to_owned()))
    }

    /// Wait for the exit code (within `limit`); the rest of stdout is collected too.
    pub fn finish(mut self, limit: Duration) -> (i32, Vec<String>, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "login did not end within {limit:?}; stdout {:?}",
                    self.stdout
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.stdout.push(line);
        }
        let stderr = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        (status.code().unwrap_or(-1), self.stdout, stderr)
    }
}

/// Every secret the server issued is absent from `texts`.
pub fn assert_no_secret(auth: &AuthServer, texts: &[&str]) {
    let issued = auth.issued();
    assert!(!issued.is_empty());
    for secret in &issued {
        for text in texts {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into output:\n{text}"
            );
        }
    }
}

/// A device login of `account` approved as `user`; panics unless it exits 0.
pub fn device_login(config: &Path, account: &str, auth: &AuthServer, user: &str) {
    let mut login = Login::start(config, account, "device");
    let code = login.user_code();
    auth.approve(&code, user);
    let (exit, out, err) = login.finish(Duration::from_secs(30));
    assert_eq!(exit, 0, "login {account}: stdout {out:?}\nstderr {err}");
}
