//! TLS client configuration: rustls with the ring provider, system roots (webpki-roots when the
//! system store is empty), plus the account's `ca_file` (both read by [`crate::trust`]). Certificates and host names are always
//! verified; there is no switch to turn that off.

use std::path::Path;
use std::sync::Arc;

use super::ImapError;
use crate::trust::{ca_file_certs, system_roots};
use rustls::RootCertStore;

/// Build the client configuration for one account.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ImapError> {
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = ca_file {
        let certs = ca_file_certs(path).map_err(|e| ImapError::TlsConfig(e.to_string()))?;
        for cert in certs {
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

/// What is wrong with a refused server certificate, and what the user can do about it.
pub(crate) fn certificate_problem(
    err: &rustls::CertificateError,
    host: &str,
    ca_file: Option<&Path>,
) -> String {
    use rustls::CertificateError as E;
    let date = |t: &rustls_pki_types::UnixTime| {
        i64::try_from(t.as_secs())
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map_or_else(
                || "an unknown date".to_owned(),
                |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            )
    };
    match err {
        E::UnknownIssuer => match ca_file {
            None => "it is not signed by a certificate authority this system trusts; for a \
                     self-hosted server, put the certificate of the CA that signed it (PEM) in \
                     the account's ca_file"
                .to_owned(),
            Some(path) => format!(
                "it is signed neither by a certificate authority this system trusts nor by \
                 the one in ca_file {}; put the CA that signed the server's certificate there",
                path.display()
            ),
        },
        E::BadSignature => format!(
            "its signature does not verify against the certificate authority of that name \
             that this system{} trusts (was the CA made again?); put the CA that signed the \
             server's certificate in the account's ca_file",
            ca_file.map_or(String::new(), |p| format!(" or ca_file {}", p.display()))
        ),
        E::NotValidForNameContext { presented, .. } if !presented.is_empty() => format!(
            "it is for {}, not for {host:?} (the account's host); set host to a name the \
             certificate has, or give the server a certificate for {host:?}",
            presented.join(", ")
        ),
        E::NotValidForName | E::NotValidForNameContext { .. } => format!(
            "it is not for {host:?} (the account's host); set host to a name the certificate \
             has, or give the server a certificate for {host:?}"
        ),
        E::ExpiredContext { not_after, .. } => format!(
            "it expired on {}; the server needs a new certificate",
            date(not_after)
        ),
        E::Expired => "it has expired; the server needs a new certificate".to_owned(),
        E::NotValidYetContext { not_before, .. } => format!(
            "it is not valid before {} (is this machine's clock right?)",
            date(not_before)
        ),
        E::NotValidYet => "it is not valid yet (is this machine's clock right?)".to_owned(),
        E::Revoked => "it has been revoked; the server needs a new certificate".to_owned(),
        E::InvalidPurpose | E::InvalidPurposeContext { .. } => {
            "it is not meant for a server (its extended key usage lacks serverAuth)".to_owned()
        }
        // rustls reports it through webpki's error, which it does not re-export.
        other if format!("{other:?}").contains("CaUsedAsEndEntity") => {
            "the server presents a certificate authority as its own certificate (a single \
             self-signed certificate marked as a CA); give the server a certificate signed by \
             that CA, and put the CA in the account's ca_file"
                .to_owned()
        }
        other => other.to_string(),
    }
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
    fn refused_certificates_say_what_to_do() {
        use rustls::CertificateError as E;
        use rustls_pki_types::{ServerName, UnixTime};
        let at = |secs| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        let ca = Path::new("/etc/imapsort/home-ca.pem");
        let cases: Vec<(E, Option<&Path>, &[&str])> = vec![
            (E::UnknownIssuer, None, &["not signed by", "ca_file"]),
            (E::UnknownIssuer, Some(ca), &["/etc/imapsort/home-ca.pem"]),
            (
                E::BadSignature,
                Some(ca),
                &["signature", "/etc/imapsort/home-ca.pem"],
            ),
            (
                E::NotValidForNameContext {
                    expected: ServerName::try_from("imap.example.org").unwrap(),
                    presented: vec!["mail.example.org".into(), "127.0.0.1".into()],
                },
                None,
                &[
                    "mail.example.org, 127.0.0.1",
                    "\"imap.example.org\"",
                    "set host",
                ],
            ),
            (E::NotValidForName, None, &["\"imap.example.org\""]),
            (
                E::ExpiredContext {
                    time: at(1_800_000_000),
                    not_after: at(1_767_225_600),
                },
                None,
                &["expired on 2026-01-01 00:00 UTC", "new certificate"],
            ),
            (
                E::NotValidYetContext {
                    time: at(1_700_000_000),
                    not_before: at(1_767_225_600),
                },
                None,
                &["not valid before 2026-01-01", "clock"],
            ),
            (E::Revoked, None, &["revoked"]),
        ];
        for (err, ca_file, want) in cases {
            let text = certificate_problem(&err, "imap.example.org", ca_file);
            for w in want {
                assert!(text.contains(w), "{err:?}: {text:?} lacks {w:?}");
            }
        }
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
