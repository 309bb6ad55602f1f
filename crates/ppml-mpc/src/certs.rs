//! Certificates for a deployment: a CA whose key is kept (so clients can be added later
//! without a new deployment), and one certificate per party and client.

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{deploy_err, node_name, PartiesConfig};
use crate::error::Result;
use crate::topology::CLIENT_ID;
use crate::Protocol;

/// Files written by [`generate_certs`].
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The CA's private key (mode 0600): keep it offline; it issues new client identities.
    pub ca_key: PathBuf,
    /// `(certificate, key)` of each party, by id.
    pub parties: Vec<(PathBuf, PathBuf)>,
    /// `(certificate, key)` of the default client.
    pub client: (PathBuf, PathBuf),
}

const CA_NAME: &str = "ppml MPC deployment CA";

fn ca_params() -> Result<rcgen::CertificateParams> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| deploy_err("CA", e))?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.distinguished_name.push(DnType::CommonName, CA_NAME);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn write(dir: &Path, name: &str, text: &str, secret: bool) -> Result<PathBuf> {
    let p = dir.join(name);
    fs::write(&p, text).map_err(|e| deploy_err(&p, e))?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600))
            .map_err(|e| deploy_err(&p, e))?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    Ok(p)
}

/// Writes `dir/NAME.pem` and `dir/NAME.key`: a certificate for DNS name `name` signed by the CA,
/// valid for TLS client and server use, with a fresh ECDSA P-256 key.
fn leaf(
    dir: &Path,
    name: &str,
    issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
) -> Result<(PathBuf, PathBuf)> {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
    let rc = |e: rcgen::Error| deploy_err(dir, e);
    let key = KeyPair::generate().map_err(rc)?;
    let mut p = CertificateParams::new(vec![name.to_string()]).map_err(rc)?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = p.signed_by(&key, issuer).map_err(rc)?;
    Ok((
        write(dir, &format!("{name}.pem"), &cert.pem(), false)?,
        write(dir, &format!("{name}.key"), &key.serialize_pem(), true)?,
    ))
}

/// Quick start: creates `dir` and writes a fresh self-signed CA (`ca.pem`, and its key
/// `ca.key`, mode 0600 on Unix), and for each of `parties` parties and the default client a
/// certificate signed by it (`party-I.pem`, `client.pem`, subject alternative name `party-I` /
/// `client`) with its key (`party-I.key`, `client.key`). Deployments use 3 parties.
pub fn generate_certs(dir: impl AsRef<Path>, parties: usize) -> Result<CertFiles> {
    let dir = dir.as_ref();
    let rc = |e: rcgen::Error| deploy_err(dir, e);
    fs::create_dir_all(dir).map_err(|e| deploy_err(dir, e))?;
    let ca_key = rcgen::KeyPair::generate().map_err(rc)?;
    let params = ca_params()?;
    let ca_cert = params.self_signed(&ca_key).map_err(rc)?;
    let ca = write(dir, "ca.pem", &ca_cert.pem(), false)?;
    let ca_key_path = write(dir, "ca.key", &ca_key.serialize_pem(), true)?;
    let issuer = rcgen::Issuer::new(params, ca_key);
    let parties = (0..parties)
        .map(|i| leaf(dir, &node_name(i), &issuer))
        .collect::<Result<Vec<_>>>()?;
    let client = leaf(dir, &node_name(CLIENT_ID), &issuer)?;
    Ok(CertFiles {
        ca,
        ca_key: ca_key_path,
        parties,
        client,
    })
}

/// Adds a client identity to the deployment whose `parties.toml` is `config` (its CA key must
/// be `ca.key` beside `ca.pem`): writes `NAME.pem`, `NAME.key` and `NAME.toml` (the same
/// deployment with this identity as its `[client]`) in the config's directory. The running
/// parties accept the new client at once: they trust the CA, not a list of clients.
pub fn add_client(config: impl AsRef<Path>, name: &str) -> Result<PathBuf> {
    let config = config.as_ref();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with("party-");
    if !valid {
        return Err(deploy_err(
            name,
            "client names are 1-64 letters, digits or '-', not party-*",
        ));
    }
    let cfg = PartiesConfig::load(config)?;
    let dir = config.parent().unwrap_or(Path::new("."));
    let key_path = cfg.ca.with_extension("key");
    let pem = fs::read_to_string(&key_path).map_err(|e| deploy_err(&key_path, e))?;
    let ca_key = rcgen::KeyPair::from_pem(&pem).map_err(|e| deploy_err(&key_path, e))?;
    let issuer = rcgen::Issuer::new(ca_params()?, ca_key);
    leaf(dir, name, &issuer)?;
    let text = fs::read_to_string(config).map_err(|e| deploy_err(config, e))?;
    let start = text
        .find("[client]")
        .ok_or_else(|| deploy_err(config, "no [client] section"))?;
    let out = dir.join(format!("{name}.toml"));
    let toml = format!(
        "{}[client]\ncert = \"{name}.pem\"\nkey = \"{name}.key\"\n",
        &text[..start]
    );
    write(dir, &format!("{name}.toml"), &toml, false)?;
    PartiesConfig::load(&out)?;
    Ok(out)
}

/// Quick start in one call (`ppml mpc-certs --out DIR`): [`generate_certs`] for three parties
/// and the default client in `dir`, and `dir/parties.toml` from
/// [`PartiesConfig::quick_start_toml`] (the parties on `host`, ports `base_port..base_port + 3`).
/// Returns the config's path.
pub fn quick_start(
    dir: impl AsRef<Path>,
    protocol: Protocol,
    host: &str,
    base_port: u16,
) -> Result<PathBuf> {
    let dir = dir.as_ref();
    generate_certs(dir, 3)?;
    let path = dir.join("parties.toml");
    fs::write(
        &path,
        PartiesConfig::quick_start_toml(protocol, host, base_port),
    )
    .map_err(|e| deploy_err(&path, e))?;
    Ok(path)
}
