//! Running `imapsort run` for the scale scenarios: start it with its log in a file, find its
//! metrics address there, ask `/health`, and read its memory and CPU time from `/proc`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::mailstore::proc_status_kb;

/// A daemon started by [`Daemon::start`]; SIGTERM on [`Daemon::stop`] (or drop).
pub struct Daemon {
    pub child: Child,
    /// Where `/metrics` and `/health` are served.
    pub metrics: SocketAddr,
}

impl Daemon {
    /// `imapsort run -c config`, logging at `info` into `log`; waits (up to `limit`) for the
    /// metrics listener (the configuration must set `metrics_listen: 127.0.0.1:0`).
    pub fn start(bin: &str, config: &Path, log: &Path, limit: Duration) -> Daemon {
        let child = Command::new(bin)
            .args(["run", "-c"])
            .arg(config)
            .env("IMAPSORT_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("start imapsort run");
        let start = Instant::now();
        let metrics = loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .filter(|l| l.contains("serving /metrics and /health"))
                .find_map(|l| {
                    l.split("address=")
                        .nth(1)?
                        .split_whitespace()
                        .next()?
                        .parse()
                        .ok()
                })
            {
                break addr;
            }
            assert!(
                start.elapsed() < limit,
                "imapsort did not start serving /metrics: {text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Daemon { child, metrics }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Poll `/health` every 20 ms until it answers 200 (every account connected); how long
    /// that took. Panics after `limit`.
    pub fn wait_all_connected(&self, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if http_status(self.metrics, "/health") == Some(200) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "not every account connected within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// VmRSS in KiB.
    pub fn rss_kb(&self) -> u64 {
        proc_status_kb(self.pid(), "VmRSS:").unwrap_or(0)
    }

    /// The share of one core the daemon used over `window` (user + system time).
    pub fn cpu_share(&self, window: Duration) -> f64 {
        let before = cpu_ticks(self.pid());
        let start = Instant::now();
        std::thread::sleep(window);
        let ticks = cpu_ticks(self.pid()).saturating_sub(before);
        // USER_HZ is 100 on Linux.
        ticks as f64 / 100.0 / start.elapsed().as_secs_f64()
    }

    /// SIGTERM, and wait (10 s at most, then SIGKILL).
    pub fn stop(mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn terminate(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let get = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

/// The status code of `GET path` (None when nothing answered).
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Raise `fs.inotify.max_user_instances` to at least `want` (root only; Dovecot takes one per
/// IDLE session, and past the limit it silently polls every 30 s). Returns the old value to
/// hand to [`restore_inotify`].
pub fn raise_inotify(want: u64) -> Option<u64> {
    const PATH: &str = "/proc/sys/fs/inotify/max_user_instances";
    let old: u64 = std::fs::read_to_string(PATH).ok()?.trim().parse().ok()?;
    if old >= want {
        return None;
    }
    match std::fs::write(PATH, want.to_string()) {
        Ok(()) => Some(old),
        Err(e) => {
            eprintln!("  cannot raise {PATH} to {want} ({e}): pushes may be 30 s late");
            None
        }
    }
}

/// Put the limit back, unless someone else changed it meanwhile.
pub fn restore_inotify(old: Option<u64>, set: u64) {
    const PATH: &str = "/proc/sys/fs/inotify/max_user_instances";
    if let Some(old) = old {
        let now: Option<u64> = std::fs::read_to_string(PATH)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        if now == Some(set) {
            let _ = std::fs::write(PATH, old.to_string());
        }
    }
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// (median, p99) in milliseconds.
pub fn p50_p99_ms(v: &[Duration]) -> (f64, f64) {
    let (m, p) = super::push::median_p99(v);
    (m.as_secs_f64() * 1000.0, p.as_secs_f64() * 1000.0)
}

/// Write a configuration readable by us only (it holds literal passwords; `check` would warn
/// once per account otherwise).
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write the configuration");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}
