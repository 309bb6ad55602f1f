//! `parties.toml`: a deployment's nodes, certificates and limits, validated when loaded.

use std::fs;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::error::{MpcError, Result};
use crate::link::DEFAULT_MAX_FRAME_WORDS;
use crate::net::{Peer, TlsNode, TlsSettings};
use crate::ring::FixedPoint;
use crate::topology::CLIENT_ID;
use crate::{Comparison, Protocol};

/// One node's entry in `parties.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Where the others reach the node (`host:port`, resolved when the file is loaded); for the
    /// client, unused (clients only connect).
    pub address: SocketAddr,
    /// Where the node itself listens, when that differs from `address` (behind a relay or a
    /// NAT); `None`: `address`.
    pub listen: Option<SocketAddr>,
    /// Its certificate (PEM), read by every node to pin it.
    pub cert: PathBuf,
    /// Its private key (PEM), read only by the node itself; may be absent from other nodes'
    /// copies of the file.
    pub key: Option<PathBuf>,
}

/// A validated `parties.toml`.
///
/// ```toml
/// protocol = "mpc3"          # or "mpc2" (party 2 is then the dealer)
/// frac_bits = 16             # optional, 1..=30
/// comparison = "fss"         # optional: default "bit-decomposition" (see `Comparison`)
/// timeout_ms = 30000         # optional: per message / handshake / write
/// connect_timeout_ms = 60000 # optional: how long nodes wait for each other at startup
/// max_frame_words = 67108864 # optional: largest accepted message (8 bytes per word)
/// pool_depth = 4             # optional: queries of material party 2 makes ahead per session
/// ca = "ca.pem"              # paths are relative to this file's directory
///
/// [[party]]                  # exactly three, in id order
/// address = "127.0.0.1:7000"
/// cert = "party-0.pem"
/// key = "party-0.key"
/// # [[party]] ... (party-1, party-2)
///
/// [client]
/// address = "127.0.0.1:7003"
/// cert = "client.pem"
/// key = "client.key"
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartiesConfig {
    /// The protocol.
    pub protocol: Protocol,
    /// Fractional bits of the fixed-point encoding.
    pub frac_bits: u32,
    /// The comparison protocol (all parties must agree).
    pub comparison: Comparison,
    /// How long a node waits for a peer's message, a socket write or a handshake.
    pub timeout: Duration,
    /// How long nodes wait for each other when the mesh forms.
    pub connect_timeout: Duration,
    /// Largest accepted frame, in words.
    pub max_frame_words: u64,
    /// Queries' worth of correlated randomness party 2 makes ahead per session (0: none).
    pub pool_depth: usize,
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The three parties, by id.
    pub parties: Vec<NodeConfig>,
    /// The client.
    pub client: NodeConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    #[serde(default)]
    address: Option<String>,
    listen: Option<String>,
    cert: PathBuf,
    key: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    protocol: String,
    frac_bits: Option<u32>,
    comparison: Option<String>,
    timeout_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    max_frame_words: Option<u64>,
    pool_depth: Option<usize>,
    ca: PathBuf,
    party: Vec<RawNode>,
    client: RawNode,
}

impl PartiesConfig {
    /// Reads and validates `path` (relative paths inside are resolved against its directory).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|e| deploy_err(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| match e {
            MpcError::Deploy { path: p, reason } if p == "parties.toml" => deploy_err(path, reason),
            e => e,
        })
    }

    /// Parses and validates TOML text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        let here = "parties.toml";
        let raw: RawConfig = toml::from_str(text).map_err(|e| deploy_err(here, e))?;
        let protocol = match raw.protocol.as_str() {
            "mpc2" => Protocol::Mpc2,
            "mpc3" => Protocol::Mpc3,
            p => {
                return Err(deploy_err(
                    here,
                    format!("protocol {p:?}: expected mpc2 or mpc3"),
                ))
            }
        };
        let frac_bits = raw.frac_bits.unwrap_or(16);
        FixedPoint::new(frac_bits)?;
        let comparison = match raw.comparison.as_deref() {
            None => Comparison::default(),
            Some(name) => Comparison::from_name(name).ok_or_else(|| {
                deploy_err(
                    here,
                    format!("comparison {name:?}: expected fss or bit-decomposition"),
                )
            })?,
        };
        let ms = |v: Option<u64>, default: u64, field: &str| -> Result<Duration> {
            match v.unwrap_or(default) {
                0 => Err(deploy_err(here, format!("{field} must be positive"))),
                v => Ok(Duration::from_millis(v)),
            }
        };
        let timeout = ms(raw.timeout_ms, 30_000, "timeout_ms")?;
        let connect_timeout = ms(raw.connect_timeout_ms, 60_000, "connect_timeout_ms")?;
        let max_frame_words = raw.max_frame_words.unwrap_or(DEFAULT_MAX_FRAME_WORDS);
        if max_frame_words == 0 {
            return Err(deploy_err(here, "max_frame_words must be positive"));
        }
        if raw.party.len() != 3 {
            return Err(deploy_err(
                here,
                format!("{} [[party]] entries: expected 3", raw.party.len()),
            ));
        }
        let resolve = |a: &str| -> Result<SocketAddr> {
            a.to_socket_addrs()
                .map_err(|e| deploy_err(here, format!("address {a:?}: {e}")))?
                .next()
                .ok_or_else(|| deploy_err(here, format!("address {a:?} resolves to nothing")))
        };
        let node = |r: RawNode, needs_address: bool| -> Result<NodeConfig> {
            let address = match (&r.address, needs_address) {
                (Some(a), _) => resolve(a)?,
                (None, false) => SocketAddr::from(([127, 0, 0, 1], 0)),
                (None, true) => return Err(deploy_err(here, "a [[party]] entry has no address")),
            };
            Ok(NodeConfig {
                address,
                listen: r.listen.as_deref().map(resolve).transpose()?,
                cert: base.join(r.cert),
                key: r.key.map(|k| base.join(k)),
            })
        };
        let parties = raw
            .party
            .into_iter()
            .map(|r| node(r, true))
            .collect::<Result<Vec<_>>>()?;
        let client = node(raw.client, false)?;
        let mut addrs: Vec<SocketAddr> = parties.iter().map(|p| p.address).collect();
        addrs.sort();
        addrs.dedup();
        if addrs.len() != 3 {
            return Err(deploy_err(here, "two parties share an address"));
        }
        Ok(Self {
            protocol,
            frac_bits,
            comparison,
            timeout,
            connect_timeout,
            max_frame_words,
            pool_depth: raw.pool_depth.unwrap_or(crate::DEFAULT_POOL_DEPTH),
            ca: base.join(raw.ca),
            parties,
            client,
        })
    }

    /// A quick-start `parties.toml` for certificates made by [`generate_certs`] in the same
    /// directory, all nodes on `host` at ports `base_port..base_port + 4`.
    pub fn quick_start_toml(protocol: Protocol, host: &str, base_port: u16) -> String {
        let name = match protocol {
            Protocol::Mpc2 => "mpc2",
            Protocol::Mpc3 => "mpc3",
        };
        let mut s = format!(
            "# ppml MPC deployment (see docs/mpc.md). Paths are relative to this file.\n\
             protocol = \"{name}\"\nfrac_bits = 16\ncomparison = \"bit-decomposition\"\ntimeout_ms = 30000\n\
             connect_timeout_ms = 60000\nca = \"ca.pem\"\n"
        );
        for i in 0..3u16 {
            s += &format!(
                "\n[[party]]\naddress = \"{host}:{}\"\ncert = \"party-{i}.pem\"\nkey = \"party-{i}.key\"\n",
                base_port.saturating_add(i)
            );
        }
        s += "\n[client]\ncert = \"client.pem\"\nkey = \"client.key\"\n";
        s
    }

    pub(crate) fn tls(&self, id: usize) -> Result<(TlsNode, Vec<Peer>)> {
        let me = if id == CLIENT_ID {
            &self.client
        } else {
            self.parties.get(id).ok_or(MpcError::Config {
                field: "id",
                value: id.to_string(),
                reason: "parties are 0, 1 and 2",
            })?
        };
        let key_path = me.key.as_ref().ok_or_else(|| {
            deploy_err("parties.toml", format!("no key for node {}", node_name(id)))
        })?;
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| deploy_err(key_path, e))?;
        let chain = read_certs(&me.cert)?;
        let ca = read_certs(&self.ca)?;
        let mut peers = Vec::with_capacity(3);
        for (j, n) in self.parties.iter().enumerate() {
            let cert = read_certs(&n.cert)?
                .into_iter()
                .next()
                .ok_or_else(|| deploy_err(&n.cert, "no certificate"))?;
            peers.push(Peer {
                name: node_name(j),
                address: n.address,
                cert,
            });
        }
        let settings = TlsSettings {
            ca,
            chain,
            key,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
        };
        Ok((TlsNode::new(id, peers.clone(), &settings)?, peers))
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| deploy_err(path, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| deploy_err(path, e))?;
    if certs.is_empty() {
        return Err(deploy_err(path, "no certificate in file"));
    }
    Ok(certs)
}

/// The name of node `id` in certificates and messages: `party-I`, or `client` for id 3.
pub fn node_name(id: usize) -> String {
    if id == CLIENT_ID {
        "client".into()
    } else {
        format!("party-{id}")
    }
}

pub(crate) fn deploy_err(path: impl AsRef<Path>, reason: impl std::fmt::Display) -> MpcError {
    MpcError::Deploy {
        path: path.as_ref().display().to_string(),
        reason: reason.to_string(),
    }
}
