//! The certificates imapsort trusts, for every TLS connection it makes (IMAP in
//! [`crate::imap::tls`], OAuth 2.0 token endpoints in [`crate::oauth`]): the system's roots,
//! loaded once per process, and the certificates of an account's `ca_file`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why a `ca_file` gives no certificates to trust.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("ca_file {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("ca_file {} holds no certificate", path.display())]
    Empty { path: PathBuf },
}

/// The system's roots, loaded once per process (reading /etc/ssl/certs takes a while).
pub(crate) fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let result = rustls_native_certs::load_native_certs();
        for e in &result.errors {
            tracing::debug!(error = %e, "could not load some system root certificates");
        }
        result.certs
    })
}

/// The certificates of a `ca_file` (PEM); an error when it holds none.
pub(crate) fn ca_file_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaFileError> {
    let unreadable = |source| CaFileError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        return Err(CaFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = ca_file_certs(&empty).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("ca_file {} holds no certificate", empty.display())
        );
        let missing = dir.path().join("missing.pem");
        let e = ca_file_certs(&missing).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("ca_file {}: ", missing.display())),
            "{e}"
        );
    }
}
