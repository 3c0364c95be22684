//! The token file, `STATE_DIR/oauth2/ACCOUNT.json`: the refresh token and the last access
//! token with its expiry, so that `sweep` and `folders` reuse a token the daemon got.
//!
//! Written atomically: a temporary file in the same directory (mode 0600 from its creation),
//! fsync, rename over the old file, fsync the directory. A reader sees the old or the new
//! file, never half of one; after a crash the last completed write is there. The directory is
//! 0700. `ACCOUNT.lock` beside it is held (an exclusive `flock`) while one process refreshes,
//! so two processes never send the same refresh token.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::OAuthError;

/// What the token file holds.
pub struct Tokens {
    /// The long-lived credential; `None` only if a provider gave none.
    pub refresh_token: Option<SecretString>,
    /// The last access token, and when it stops working.
    pub access_token: Option<SecretString>,
    pub expires_at: Option<SystemTime>,
    /// Whether the endpoint hands out a new refresh token on each refresh (`None`: not seen
    /// a refresh yet). A refresh token of an endpoint that does not rotate may be re-sent.
    pub rotates: Option<bool>,
    /// The client and endpoint the sign-in was made for: a token of another client is useless.
    pub client_id: String,
    pub token_url: String,
    /// Set when the endpoint refused the refresh token (`invalid_grant`): why. Every process
    /// then knows without sending it again; `imapsort login` writes a new file without it.
    pub needs_login: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .field("rotates", &self.rotates)
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url)
            .field("needs_login", &self.needs_login)
            .finish()
    }
}

/// The file's JSON form. Only built to be written at once, never logged.
#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    client_id: String,
    token_url: String,
    refresh_token: Option<String>,
    access_token: Option<String>,
    /// Unix seconds.
    expires_at: Option<u64>,
    rotates: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    needs_login: Option<String>,
}

/// Which version of the file is on disk: changes whenever a new file is renamed into place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    inode: u64,
    modified: Option<SystemTime>,
    len: u64,
}

/// The file's stamp, `None` when it does not exist.
pub fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        inode: m.ino(),
        modified: m.modified().ok(),
        len: m.len(),
    })
}

fn store_error(path: &Path, message: &str, source: std::io::Error) -> OAuthError {
    OAuthError::Store {
        path: path.to_path_buf(),
        message: format!("{message}: {source}"),
        source: Some(source),
    }
}

/// Read the token file; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<Tokens>, OAuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(store_error(path, "cannot read", e)),
    };
    // serde_json's messages quote no input, only places.
    let disk: OnDisk = serde_json::from_str(&text).map_err(|e| OAuthError::Store {
        path: path.to_path_buf(),
        message: format!("not a token file ({e}); run `imapsort login` again"),
        source: None,
    })?;
    Ok(Some(Tokens {
        refresh_token: disk.refresh_token.map(SecretString::from),
        access_token: disk.access_token.map(SecretString::from),
        expires_at: disk.expires_at.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        rotates: disk.rotates,
        client_id: disk.client_id,
        token_url: disk.token_url,
        needs_login: disk.needs_login,
    }))
}

/// Write the token file atomically (mode 0600), creating `oauth2/` (0700) if needed.
pub fn save(path: &Path, tokens: &Tokens) -> Result<(), OAuthError> {
    let dir = parent(path);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| store_error(&dir, "cannot create the directory", e))?;
    let disk = OnDisk {
        version: 1,
        client_id: tokens.client_id.clone(),
        token_url: tokens.token_url.clone(),
        refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(|s| s.expose_secret().to_owned()),
        access_token: tokens
            .access_token
            .as_ref()
            .map(|s| s.expose_secret().to_owned()),
        expires_at: tokens
            .expires_at
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        rotates: tokens.rotates,
        needs_login: tokens.needs_login.clone(),
    };
    let mut text = serde_json::to_string_pretty(&disk).map_err(|e| OAuthError::Store {
        path: path.to_path_buf(),
        message: format!("cannot encode: {e}"),
        source: None,
    })?;
    text.push('\n');
    drop(disk);
    // A new file of our own (O_EXCL, mode 0600) beside the target, so the rename is atomic;
    // the name carries the pid and a random part, so two processes never share one.
    let tmp = dir.join(format!(
        ".token-{}-{:016x}.tmp",
        std::process::id(),
        fastrand::u64(..)
    ));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| store_error(&dir, "cannot create a temporary file", e))
        .and_then(|mut f| {
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| store_error(path, "cannot write", e))
        })
        .and_then(|()| {
            std::fs::rename(&tmp, path)
                .map_err(|e| store_error(path, "cannot rename into place", e))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| store_error(&dir, "cannot sync the directory", e))?;
    Ok(())
}

fn parent(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// An exclusive lock on `ACCOUNT.lock` beside the token file, held while refreshing; released
/// on drop (closing the file).
pub struct RefreshLock {
    _file: File,
}

/// Take the refresh lock, waiting for another process that holds it.
pub fn lock(token_file: &Path) -> Result<RefreshLock, OAuthError> {
    let dir = parent(token_file);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| store_error(&dir, "cannot create the directory", e))?;
    let path = token_file.with_extension("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| store_error(&path, "cannot open the lock file", e))?;
    file.lock()
        .map_err(|e| store_error(&path, "cannot lock", e))?;
    Ok(RefreshLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> Tokens {
        Tokens {
            refresh_token: Some(SecretString::from("R-secret".to_owned())),
            access_token: Some(SecretString::from("A-secret".to_owned())),
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000)),
            rotates: Some(true),
            client_id: "cid".into(),
            token_url: "https://t.example/token".into(),
            needs_login: None,
        }
    }

    #[test]
    fn saves_atomically_with_private_modes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/oauth2/a.json");
        save(&path, &sample()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let before = stamp(&path).unwrap();
        let t = load(&path).unwrap().unwrap();
        assert_eq!(t.refresh_token.unwrap().expose_secret(), "R-secret");
        assert_eq!(t.access_token.unwrap().expose_secret(), "A-secret");
        assert_eq!(t.expires_at, sample().expires_at);
        assert_eq!(t.rotates, Some(true));
        // A second save replaces the file (a new inode) and leaves no temporary behind.
        save(&path, &sample()).unwrap();
        assert_ne!(stamp(&path).unwrap(), before);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
    }

    #[test]
    fn missing_file_is_none_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        assert!(load(&path).unwrap().is_none());
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(load(&path), Err(OAuthError::Store { .. })));
    }

    #[test]
    fn debug_redacts() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn lock_is_exclusive_between_handles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        let held = lock(&path).unwrap();
        let other = File::options()
            .write(true)
            .open(path.with_extension("lock"))
            .unwrap();
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
