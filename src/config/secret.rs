//! Resolving passwords and OAuth tokens from their [`SecretSource`], only when a command needs
//! them. The resolved value lives in a [`SecretString`], whose `Debug` prints nothing.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::types::SecretSource;

/// Why a secret could not be had. Messages never contain the secret itself.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("password command {program:?} could not be started")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("password command {program:?} failed ({status})")]
    Failed { program: String, status: String },
    #[error("password command {program:?} did not finish within {}s and was stopped", .limit.as_secs_f64())]
    Timeout { program: String, limit: Duration },
    #[error("password command {program:?} printed nothing")]
    EmptyCommand { program: String },
    #[error("password command is empty")]
    NoProgram,
    #[error("environment variable {0} is not set or not valid UTF-8")]
    Env(String),
    #[error("password file {path} could not be read")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret is not valid UTF-8")]
    NotUtf8,
}

impl SecretSource {
    /// Produce the secret. `config_dir` is the directory of the configuration file, against
    /// which relative `file:` paths are resolved when `$CREDENTIALS_DIRECTORY` is not set.
    pub fn resolve(&self, config_dir: &Path) -> Result<SecretString, SecretError> {
        match self {
            SecretSource::Literal(s) => Ok(SecretString::from(s.clone())),
            SecretSource::Env(var) => std::env::var(var)
                .map(SecretString::from)
                .map_err(|_| SecretError::Env(var.clone())),
            SecretSource::File(path) => {
                let path = resolve_file_path(path, config_dir);
                let bytes = std::fs::read(&path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?;
                let text = String::from_utf8(bytes).map_err(|_| SecretError::NotUtf8)?;
                Ok(SecretString::from(trim_one_newline(text)))
            }
            SecretSource::Command(argv) => run_command(argv, COMMAND_TIMEOUT),
        }
    }
}

/// How long a password command may run. A helper that waits for a pinentry nobody answers, or
/// for a network that does not, would otherwise hold its account for ever.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a password command (argv, no shell) for at most `limit`; its stdout, less one trailing
/// newline, is the secret. On timeout the child is killed and reaped.
fn run_command(argv: &[String], limit: Duration) -> Result<SecretString, SecretError> {
    let (program, args) = argv.split_first().ok_or(SecretError::NoProgram)?;
    let deadline = Instant::now() + limit;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| SecretError::Spawn {
            program: program.clone(),
            source,
        })?;
    let timed_out = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
        SecretError::Timeout {
            program: program.clone(),
            limit,
        }
    };
    // std has no wait with a timeout: a thread reads stdout to its end (the child exiting, as a
    // rule), and this one waits for that under the deadline.
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = tx.send(stdout.read_to_end(&mut buf).map(|_| buf));
    });
    let remaining = deadline.saturating_duration_since(Instant::now());
    let output = match rx.recv_timeout(remaining) {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SecretError::Failed {
                program: program.clone(),
                status: format!("its output could not be read: {e}"),
            });
        }
        // Still running (or something it started still holds its stdout).
        Err(_) => return Err(timed_out(&mut child)),
    };
    // Its stdout is closed; it is about to exit, which is awaited under the same deadline.
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Ok(None) | Err(_) => return Err(timed_out(&mut child)),
        }
    };
    if !status.success() {
        return Err(SecretError::Failed {
            program: program.clone(),
            status: status.to_string(),
        });
    }
    let text = String::from_utf8(output).map_err(|_| SecretError::NotUtf8)?;
    let text = trim_one_newline(text);
    if text.is_empty() {
        return Err(SecretError::EmptyCommand {
            program: program.clone(),
        });
    }
    Ok(SecretString::from(text))
}

/// A relative `file:` path is looked up in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`)
/// when that is set, else beside the configuration file.
pub fn resolve_file_path(path: &Path, config_dir: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) if !dir.is_empty() => Path::new(&dir).join(path),
        _ => config_dir.join(path),
    }
}

/// Remove exactly one trailing newline (`\n` or `\r\n`), as `pass` and friends print one.
fn trim_one_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn trims_exactly_one_newline() {
        for (input, want) in [
            ("pw\n", "pw"),
            ("pw\r\n", "pw"),
            ("pw\n\n", "pw\n"),
            ("pw", "pw"),
            ("", ""),
        ] {
            assert_eq!(trim_one_newline(input.to_string()), want, "input {input:?}");
        }
    }

    #[test]
    fn command_runs_argv_without_shell() {
        let src = SecretSource::Command(vec!["printf".into(), "%s\\n".into(), "a b;c".into()]);
        let secret = src.resolve(Path::new("/")).unwrap();
        assert_eq!(secret.expose_secret(), "a b;c");
    }

    #[test]
    fn failing_command_is_an_error_without_output() {
        let src = SecretSource::Command(vec!["false".into()]);
        let err = src.resolve(Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("failed"), "{err}");
    }

    /// A password command that hangs (a `pass` waiting for a pinentry nobody answers) must not
    /// block its account for ever: it is stopped, and the error names the program only.
    #[test]
    fn a_hanging_command_is_stopped_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!(
            "echo $$ > {}; echo partial-secret; exec sleep 30",
            pid_file.display()
        );
        let argv = vec!["sh".to_owned(), "-c".to_owned(), script];
        let started = std::time::Instant::now();
        let err = run_command(&argv, Duration::from_millis(500)).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(err, SecretError::Timeout { ref program, .. } if program == "sh"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("\"sh\"") && text.contains("0.5s"), "{text}");
        assert!(
            !text.contains("partial-secret") && !text.contains("sleep"),
            "{text}"
        );
        // The child is gone (killed and reaped), not left running.
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        assert!(
            !Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "child {pid} still there"
        );
    }

    #[test]
    fn the_default_limit_is_thirty_seconds() {
        assert_eq!(COMMAND_TIMEOUT, Duration::from_secs(30));
    }

    #[test]
    fn file_is_read_relative_to_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        if std::env::var_os("CREDENTIALS_DIRECTORY").is_none() {
            let secret = SecretSource::File("pw".into()).resolve(dir.path()).unwrap();
            assert_eq!(secret.expose_secret(), "s3cret");
        }
    }

    #[test]
    fn literal_debug_is_redacted() {
        let src = SecretSource::Literal("hunter2".into());
        assert!(!format!("{src:?}").contains("hunter2"));
    }
}
