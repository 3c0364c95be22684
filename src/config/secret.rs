//! Resolving passwords and OAuth tokens from their [`SecretSource`], only when a command needs
//! them. The resolved value lives in a [`SecretString`], whose `Debug` prints nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
            SecretSource::Command(argv) => {
                let (program, args) = argv.split_first().ok_or(SecretError::NoProgram)?;
                let output = Command::new(program)
                    .args(args)
                    .stdin(Stdio::null())
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(|source| SecretError::Spawn {
                        program: program.clone(),
                        source,
                    })?;
                if !output.status.success() {
                    return Err(SecretError::Failed {
                        program: program.clone(),
                        status: output.status.to_string(),
                    });
                }
                let text = String::from_utf8(output.stdout).map_err(|_| SecretError::NotUtf8)?;
                let text = trim_one_newline(text);
                if text.is_empty() {
                    return Err(SecretError::EmptyCommand {
                        program: program.clone(),
                    });
                }
                Ok(SecretString::from(text))
            }
        }
    }
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
