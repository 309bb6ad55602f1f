//! rustls configurations, TLS 1.3 only, with the `ring` provider: a server that proves its
//! identity (and optionally requires clients to prove theirs), a client that checks the server
//! against trusted roots or one pinned certificate, and its name.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::error::Result;
use crate::pem::Identity;

/// The crypto provider every configuration uses (rustls' `ring` provider).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whom a client trusts to be the server.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Any certificate that chains to one of these roots (a deployment's CA certificate) and
    /// names the server, within its validity period.
    Roots(Vec<CertificateDer<'static>>),
    /// Exactly this end-entity certificate, which must also name the server; its signature over
    /// the handshake proves the peer holds its key. No chain, no validity period: the pin is
    /// the trust decision (and must be replaced when the server's certificate is).
    Pinned(CertificateDer<'static>),
}

fn roots(certs: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>> {
    let mut store = RootCertStore::empty();
    for c in certs {
        store.add(c.clone())?;
    }
    Ok(Arc::new(store))
}

/// A server configuration: TLS 1.3 only, showing `identity`; with `client_roots`, every client
/// must show a certificate that chains to one of them (mutual TLS), otherwise clients are
/// anonymous. No session tickets (no resumption: each connection is a full handshake).
///
/// # Errors
/// [`crate::TlsError::Config`] for a chain or key rustls refuses,
/// [`crate::TlsError::Verifier`] for unusable client roots.
pub fn server_config(
    identity: &Identity,
    client_roots: Option<&[CertificateDer<'static>]>,
) -> Result<Arc<ServerConfig>> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match client_roots {
        Some(certs) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(roots(certs)?, provider()).build()?,
        ),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(identity.chain().to_vec(), identity.key())?;
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// A client configuration: TLS 1.3 only, checking the server as `trust` says (and its name, given
/// per connection: [`crate::Connector`]); with `identity`, it shows that certificate when the
/// server asks (mutual TLS). No resumption.
///
/// # Errors
/// [`crate::TlsError::Config`] for a root, chain or key rustls refuses.
pub fn client_config(trust: &Trust, identity: Option<&Identity>) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match trust {
        Trust::Roots(certs) => builder.with_root_certificates(roots(certs)?),
        Trust::Pinned(cert) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                cert: cert.clone(),
                algorithms: provider().signature_verification_algorithms,
            })),
    };
    let mut config = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain().to_vec(), id.key())?,
        None => builder.with_no_client_auth(),
    };
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Accepts exactly one end-entity certificate, which must name the server.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() != self.cert.as_ref() {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ));
        }
        rustls::client::verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The configurations speak TLS 1.3 only.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
