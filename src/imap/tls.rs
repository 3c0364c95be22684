//! TLS client configuration: rustls with the ring provider, system roots (webpki-roots when the
//! system store is empty), plus the account's `ca_file`. Certificates and host names are always
//! verified; there is no switch to turn that off.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::ImapError;

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

/// Build the client configuration for one account.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ImapError> {
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = ca_file {
        for cert in ca_file_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| ImapError::TlsConfig(format!("ca_file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::TlsConfig(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates of a `ca_file` (PEM); an error when it holds none.
pub(crate) fn ca_file_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ImapError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| ImapError::TlsConfig(format!("ca_file {}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ImapError::TlsConfig(format!("ca_file {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ImapError::TlsConfig(format!(
            "ca_file {} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = client_config(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
    }

    #[test]
    fn missing_ca_file_is_an_error() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(matches!(err, ImapError::TlsConfig(_)), "{err:?}");
    }

    #[test]
    fn generated_ca_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _, _) = imapsort_testkit::dovecot::make_ca_and_leaf(&["localhost"]).unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca).unwrap();
        client_config(Some(&path)).unwrap();
    }
}
