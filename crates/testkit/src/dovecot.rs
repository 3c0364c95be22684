//! A private Dovecot on loopback, for integration tests, benchmarks and the demo.
//!
//! [`Dovecot::start`] writes a complete `dovecot.conf` into a fresh directory on tmpfs
//! (`/dev/shm` when it exists), makes a throwaway CA and a leaf certificate for `localhost` /
//! `127.0.0.1` with `rcgen`, picks free loopback ports, runs `dovecot -F -c DIR/dovecot.conf` as
//! a child and waits until a real LOGIN succeeds. Dropping the handle stops it (SIGTERM, then
//! wait; the signal goes to its whole process group so connected clients drop at once).
//!
//! Every path Dovecot uses (`base_dir`, `state_dir`, `log_path`, `instance_name`) points into the
//! directory, so nothing under `/etc/dovecot` is read and several instances run side by side.
//! As root, mail is accessed as Debian's `mail` user (8:8), because Dovecot refuses UID 0.
//!
//! # Running it by hand
//!
//! The directory is kept while the handle lives; its `dovecot.conf` is a normal configuration:
//!
//! ```text
//! $ dovecot -F -c /dev/shm/isdXXXX/dovecot.conf       # foreground; Ctrl-C stops it
//! $ openssl s_client -connect 127.0.0.1:PORT -CAfile /dev/shm/isdXXXX/ca.pem
//! a LOGIN user pass
//! $ cat /dev/shm/isdXXXX/dovecot.log                  # the server's log
//! ```
//!
//! The demo (`scripts/demo`, crates/demo) starts one the same way. Install Dovecot with
//! `apt-get install -y --no-install-recommends dovecot-core dovecot-imapd`.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::mutf7;

mod certs;
mod conf;
mod seed;

use certs::write_certificates;
pub use certs::{make_ca_and_leaf, make_self_signed};
pub use seed::SeedMessage;

/// Where Debian installs the binary; `PATH` is searched too.
const DOVECOT_PATHS: &[&str] = &["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"];

/// What the private server looks like.
#[derive(Clone, Debug)]
pub struct DovecotOptions {
    /// (username, password) pairs for the passwd-file; the first one is used for readiness.
    pub users: Vec<(String, String)>,
    /// `'/'` (Maildir with `LAYOUT=fs`, so `.` is allowed in names) or `'.'` (Maildir++).
    pub separator: char,
    /// Capabilities to leave out of the post-login list (e.g. `"MOVE"`) to exercise fallbacks.
    pub disable_caps: Vec<String>,
    /// Appended verbatim to `dovecot.conf` (settings and blocks of any kind).
    pub extra_conf: String,
    /// `passdb { … }` blocks written verbatim *before* the passwd-file one, such as Dovecot's
    /// `oauth2` passdb (DESIGN.md has the recipe). When set, the passwd-file passdb is limited
    /// to `mechanisms = plain login`, so other mechanisms are answered by these blocks alone.
    pub extra_passdb: String,
    /// SASL mechanisms offered besides `plain login` (e.g. `xoauth2`, `oauthbearer`).
    pub extra_mechanisms: Vec<String>,
    /// A storage quota in KiB per user (quota + imap_quota plugins), to provoke NO [OVERQUOTA].
    pub quota_kib: Option<u64>,
    /// Check XOAUTH2 / OAUTHBEARER tokens with Dovecot's oauth2 passdb, which POSTs each token
    /// to this RFC 7662 introspection URL (`http://127.0.0.1:PORT/introspect`) and takes the
    /// user from its `username`. Passwords keep working (PLAIN, LOGIN) for the same users.
    pub oauth2_introspection_url: Option<String>,
}

impl Default for DovecotOptions {
    fn default() -> Self {
        DovecotOptions {
            users: vec![("user".into(), "pass".into())],
            separator: '/',
            disable_caps: Vec::new(),
            extra_conf: String::new(),
            extra_passdb: String::new(),
            extra_mechanisms: Vec::new(),
            quota_kib: None,
            oauth2_introspection_url: None,
        }
    }
}

/// Why the private Dovecot could not be started.
#[derive(Debug, thiserror::Error)]
pub enum DovecotError {
    #[error("dovecot is not installed (apt-get install dovecot-core dovecot-imapd)")]
    NotInstalled,
    #[error("could not prepare the dovecot directory")]
    Io(#[from] io::Error),
    #[error("could not make the test certificates")]
    Cert(#[from] rcgen::Error),
    #[error("dovecot did not become ready within {waited:?}; its log:\n{log}")]
    NotReady { waited: Duration, log: String },
    #[error("invalid option: {0}")]
    Options(String),
}

/// A running private Dovecot. Stops on drop.
pub struct Dovecot {
    /// The `dovecot -F` master process we own.
    child: Option<Child>,
    /// Holds config, certificates, sockets, logs and mail; removed on drop.
    dir: tempfile::TempDir,
    /// Plaintext + STARTTLS listener.
    imap_port: u16,
    /// Implicit-TLS listener.
    imaps_port: u16,
    /// Who owns mail files (uid, gid): `mail` (8:8) as root, else ourselves.
    mail_owner: (u32, u32),
    /// Kept for restart and seeding layout.
    opts: DovecotOptions,
    /// The dovecot binary.
    binary: PathBuf,
}

impl std::fmt::Debug for Dovecot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dovecot")
            .field("dir", &self.dir.path())
            .field("imap_port", &self.imap_port)
            .field("imaps_port", &self.imaps_port)
            .finish()
    }
}

impl Dovecot {
    /// Whether a dovecot binary is installed.
    pub fn available() -> bool {
        find_binary().is_some()
    }

    /// Start a private instance and wait until a LOGIN succeeds. Blocking.
    pub fn start(opts: DovecotOptions) -> Result<Dovecot, DovecotError> {
        let binary = find_binary().ok_or(DovecotError::NotInstalled)?;
        if opts.separator != '/' && opts.separator != '.' {
            return Err(DovecotError::Options(format!(
                "separator must be '/' or '.', not {:?}",
                opts.separator
            )));
        }
        let dir = make_dir()?;
        let mail_owner = mail_owner(dir.path())?;
        write_certificates(dir.path())?;
        write_passwd(dir.path(), &opts.users)?;
        for sub in ["run", "state", "home"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        std::os::unix::fs::chown(
            dir.path().join("home"),
            Some(mail_owner.0),
            Some(mail_owner.1),
        )?;
        let mut dovecot = Dovecot {
            child: None,
            dir,
            imap_port: 0,
            imaps_port: 0,
            mail_owner,
            opts,
            binary,
        };
        dovecot.launch()?;
        Ok(dovecot)
    }

    /// Plaintext listener (also offers STARTTLS).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// Implicit-TLS listener.
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    /// The throwaway CA that signed the server certificate (trust it with `ca_file`).
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The instance's directory (config, log, mail).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far (for test failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// How many IMAP sessions of `user` the server has now (`doveadm who`). A session ends
    /// only after the server has finished the command it was running, so 0 means no client
    /// that went away is still changing mail.
    pub fn sessions(&self, user: &str) -> io::Result<usize> {
        let doveadm = self
            .binary
            .parent()
            .map(|d| d.join("doveadm"))
            .filter(|p| p.is_file())
            .or_else(|| find_in_path("doveadm"))
            .unwrap_or_else(|| PathBuf::from("/usr/bin/doveadm"));
        let out = Command::new(doveadm)
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .args(["who", "-1", user])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "doveadm who failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        // A header line, then one line per session.
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count())
    }

    /// The hierarchy separator the server uses.
    pub fn separator(&self) -> char {
        self.opts.separator
    }

    /// The root Maildir of a user.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("home").join(user).join("Maildir")
    }

    /// The directory of one mailbox (`/`-separated UTF-8 name, as in the config).
    pub fn mailbox_dir(&self, user: &str, mailbox: &str) -> PathBuf {
        let root = self.maildir(user);
        if mailbox.eq_ignore_ascii_case("INBOX") {
            return root;
        }
        let parts: Vec<String> = mailbox.split('/').map(mutf7::encode).collect();
        if self.opts.separator == '/' {
            parts.iter().fold(root, |p, c| p.join(c))
        } else {
            root.join(format!(".{}", parts.join(".")))
        }
    }

    /// Stop and start again on the same ports (connections drop; mail stays).
    pub fn restart(&mut self) -> Result<(), DovecotError> {
        self.terminate();
        self.launch()
    }

    /// Stop the server but keep its directory, mail and ports, until [`Dovecot::resume`]: a
    /// server that goes away for a while (clients see refused connections meanwhile).
    pub fn halt(&mut self) {
        self.terminate();
    }

    /// Start a [halted](Dovecot::halt) server again on the same ports.
    pub fn resume(&mut self) -> Result<(), DovecotError> {
        self.launch()
    }

    /// Stop the server and wait for it (also done on drop).
    pub fn stop(mut self) {
        self.terminate();
    }

    /// Pick ports, write the config, start, wait for LOGIN; retry on a port clash.
    fn launch(&mut self) -> Result<(), DovecotError> {
        let keep_ports = self.imap_port != 0;
        let mut last_err = None;
        for _attempt in 0..5 {
            if !keep_ports {
                let [a, b] = free_ports()?;
                self.imap_port = a;
                self.imaps_port = b;
            }
            let conf = self.config_text();
            std::fs::write(self.dir.path().join("dovecot.conf"), conf)?;
            if let Some(oauth2) = self.oauth2_conf_text() {
                let path = self.dir.path().join("oauth2.conf");
                std::fs::write(&path, oauth2)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
            }
            let _ = std::fs::remove_file(self.dir.path().join("dovecot.log"));
            let child = Command::new(&self.binary)
                // Its own process group, so stopping reaches the imap processes directly
                // (the master alone waits ~10 s for connected clients).
                .process_group(0)
                .arg("-F")
                .arg("-c")
                .arg(self.dir.path().join("dovecot.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(std::fs::File::create(
                    self.dir.path().join("stderr.log"),
                )?))
                .spawn()?;
            self.child = Some(child);
            match self.wait_ready(Duration::from_secs(15)) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.terminate();
                    // Another process took a port between our pick and Dovecot's bind (the
                    // message is in the log or on stderr, both in the error).
                    let clash = matches!(&e, DovecotError::NotReady { log, .. }
                        if log.contains("Address already in use"));
                    last_err = Some(e);
                    if !clash || keep_ports {
                        // A restart on fixed ports may need the old socket to go away.
                        if keep_ports && clash {
                            std::thread::sleep(Duration::from_millis(200));
                            continue;
                        }
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or(DovecotError::NotReady {
            waited: Duration::ZERO,
            log: self.log(),
        }))
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), DovecotError> {
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_status)) = child.try_wait()
            {
                break;
            }
            if self.try_login().unwrap_or(false) {
                return Ok(());
            }
            if start.elapsed() > limit {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let stderr =
            std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        Err(DovecotError::NotReady {
            waited: start.elapsed(),
            log: format!("{}{}", self.log(), stderr),
        })
    }

    /// The readiness check: a LOGIN of the first user (or just the greeting without users).
    fn try_login(&self) -> io::Result<bool> {
        match self.opts.users.first() {
            Some((user, pass)) => self.login(user, pass),
            None => self.login_as(None),
        }
    }

    /// One plaintext LOGIN and LOGOUT, as a client of our own; whether the server said OK.
    /// Tests use it as a marker in the server's log (a login made after some other client's).
    pub fn login(&self, user: &str, pass: &str) -> io::Result<bool> {
        self.login_as(Some((user, pass)))
    }

    fn login_as(&self, who: Option<(&str, &str)>) -> io::Result<bool> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.imap_port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if !line.starts_with("* OK") {
            return Ok(false);
        }
        let Some((user, pass)) = who else {
            return Ok(true);
        };
        let mut w = stream;
        write!(w, "r1 LOGIN {} {}\r\n", quote(user), quote(pass))?;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(false);
            }
            if let Some(rest) = line.strip_prefix("r1 ") {
                let ok = rest.starts_with("OK");
                let _ = w.write_all(b"r2 LOGOUT\r\n");
                return Ok(ok);
            }
        }
    }

    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM to the whole process group via kill(1) (std only has SIGKILL for the one
            // process, which would orphan Dovecot's children). The group is the master's pid.
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-TERM", "--", &group])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = Command::new("kill")
                            .args(["-KILL", "--", &group])
                            .stderr(Stdio::null())
                            .status();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn find_binary() -> Option<PathBuf> {
    for p in DOVECOT_PATHS {
        if Path::new(p).is_file() {
            return Some(PathBuf::from(p));
        }
    }
    find_in_path("dovecot")
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A short, world-traversable directory on tmpfs (socket paths must stay under ~100 bytes).
fn make_dir() -> io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::Builder::new().prefix("isd").tempdir_in(base)?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

fn running_as_root(dir: &Path) -> bool {
    std::fs::metadata(dir)
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Mail is owned by `mail` (8:8 on Debian) as root; otherwise by whoever we are.
fn mail_owner(dir: &Path) -> io::Result<(u32, u32)> {
    let meta = std::fs::metadata(dir)?;
    if meta.uid() != 0 {
        return Ok((meta.uid(), meta.gid()));
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3
            && f[0] == "mail"
            && let (Ok(u), Ok(g)) = (f[2].parse(), f[3].parse())
        {
            return Ok((u, g));
        }
    }
    Ok((8, 8))
}

fn current_user_name() -> Option<String> {
    std::env::var("USER").ok().filter(|u| !u.is_empty())
}

/// Two free loopback ports, distinct: both are held while the second is picked (a port
/// let go is often the very next one the kernel hands out, and Dovecot refuses a config with
/// the same listener twice).
fn free_ports() -> io::Result<[u16; 2]> {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok([a.local_addr()?.port(), b.local_addr()?.port()])
}

fn write_passwd(dir: &Path, users: &[(String, String)]) -> Result<(), DovecotError> {
    let mut text = String::new();
    for (user, pass) in users {
        if user.contains([':', '\n']) || pass.contains('\n') {
            return Err(DovecotError::Options(format!(
                "unusable user name {user:?}"
            )));
        }
        let _ = writeln!(text, "{user}:{{PLAIN}}{pass}::::::");
    }
    let path = dir.join("passwd");
    std::fs::write(&path, text)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::free_ports;

    /// Regression: the two ports were picked one after the other, each let go at once, and
    /// the kernel sometimes handed out the same one twice ("duplicate listener").
    #[test]
    fn the_two_ports_always_differ() {
        for _ in 0..500 {
            let [a, b] = free_ports().unwrap();
            assert_ne!(a, b);
        }
    }
}
