//! Throwaway TLS material made in-process with rcgen: a CA and a server certificate it signed
//! (a self-signed CA certificate cannot serve as the server's: rustls says CaUsedAsEndEntity).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::DovecotError;

/// A CA and a leaf (CA:FALSE, serverAuth, SAN localhost + 127.0.0.1) signed by it.
pub(super) fn write_certificates(dir: &Path) -> Result<(), DovecotError> {
    let (ca_pem, cert_pem, key_pem) = make_ca_and_leaf(&["localhost", "127.0.0.1"])?;
    std::fs::write(dir.join("ca.pem"), ca_pem)?;
    std::fs::write(dir.join("cert.pem"), cert_pem)?;
    std::fs::write(dir.join("key.pem"), key_pem)?;
    std::fs::set_permissions(dir.join("key.pem"), std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// Make a throwaway CA and a server certificate for `names` (DNS names or IP addresses).
/// Returns (CA PEM, leaf PEM, leaf key PEM). Used by tests' scripted TLS peers as well.
pub fn make_ca_and_leaf(names: &[&str]) -> Result<(String, String, String), rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("imapsort test CA {:016x}", fastrand::u64(..)),
    );
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut leaf = CertificateParams::new(names.clone())?;
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok((ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem()))
}

/// A single self-signed certificate for `names`, as many home servers have. Returns (certificate
/// PEM, key PEM). It is its own CA, so a client verifying properly refuses it.
pub fn make_self_signed(names: &[&str]) -> Result<(String, String), rcgen::Error> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names)?;
    Ok((cert.pem(), signing_key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_is_not_a_ca_and_ca_is() {
        let (ca, leaf, key) = make_ca_and_leaf(&["localhost", "127.0.0.1"]).unwrap();
        assert!(ca.contains("BEGIN CERTIFICATE"));
        assert!(leaf.contains("BEGIN CERTIFICATE"));
        assert!(key.contains("PRIVATE KEY"));
        assert_ne!(ca, leaf);
    }
}
