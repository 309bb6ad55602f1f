//! Deployment: parties as separate processes connected by [`crate::net::TcpTransport`].
//!
//! # Roles and what each process sees
//! A deployment has four nodes, all in one TLS mesh (every node listens and connects to every
//! other; see [`crate::net`]):
//! - `party-0`, `party-1`, `party-2`: the computing nodes, each started with
//!   [`run_party`] (`ppml party --id I --config parties.toml`). Under `mpc2`, `party-2` is the
//!   dealer. **Party 0 is also the model owner**: it loads the weights and secret-shares them
//!   to the others at startup (so it knows the weights, which are its own; the others only learn
//!   shares and the public architecture). Parties 1 and 2 need only the architecture (their
//!   weights, if any, are ignored).
//! - `client`: the process holding the images ([`RemoteBackend`]). It secret-shares each batch
//!   to the parties and alone adds up the output shares: no party sees an image or a logit. The
//!   client learns the logits, the architecture and nothing else about the weights.
//!
//! Each party process serves one client session: key agreement and weight sharing, then
//! queries until the client disconnects cleanly (it sends a goodbye when the
//! [`RemoteBackend`] is dropped), then it exits. The mesh is formed once: all four nodes must
//! start within `connect_timeout` of each other. To serve sessions one after another, call
//! [`run_party`] again (`ppml party --sessions N`): the mesh forms anew for each session.
//!
//! # Network threat model
//! TLS 1.3 with mutual authentication against the deployment's CA, each peer pinned to the
//! certificate listed for it in `parties.toml`: a network attacker can neither read nor alter
//! nor impersonate a node; it can delay or cut connections, which the nodes turn into
//! [`MpcError::Timeout`] or [`MpcError::Disconnected`] within `timeout` (no partial result).
//! Traffic sizes and timing are visible (they depend only on public shapes). Anyone who can
//! reach a listening port can make a party abort during mesh setup by failing a handshake
//! (denial of service is out of scope). The CA key is not kept by [`generate_certs`]: to add a
//! node, generate a new set.

use std::fs;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ppml_nn::backend::{Backend, BackendError, CallStats, SetupReport};
use ppml_nn::{Model, Tensor};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::compare::Comparator;
use crate::error::{MpcError, Result};
use crate::mpc3::CLIENT;
use crate::net::{Peer, TcpTransport, TlsSettings, DEFAULT_MAX_FRAME_WORDS};
use crate::plan::{decode_output, encode_input, plan};
use crate::ring::FixedPoint;
use crate::transport::{Transport, TransportStats};
use crate::Comparison;
use crate::{mpc2, mpc3};

/// The protocol a deployment runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Two parties and a dealer (`party-2`).
    Mpc2,
    /// Three parties with replicated sharing.
    Mpc3,
}

/// One node's entry in `parties.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Where the other nodes reach it (`host:port`, resolved when the file is loaded).
    pub address: SocketAddr,
    /// Where the node itself listens, when that differs from `address` (a relay, a NAT or a
    /// proxy forwards `address` to it); `None` listens on `address`.
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
/// ca = "ca.pem"              # paths are relative to this file's directory
///
/// [[party]]                  # exactly three, in id order
/// address = "127.0.0.1:7000"
/// # listen = "127.0.0.1:7100" # optional: bind here; others connect to `address`
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
    address: String,
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
    ca: PathBuf,
    party: Vec<RawNode>,
    client: RawNode,
}

fn deploy_err(path: impl AsRef<Path>, reason: impl std::fmt::Display) -> MpcError {
    MpcError::Deploy {
        path: path.as_ref().display().to_string(),
        reason: reason.to_string(),
    }
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
        let node = |r: RawNode| -> Result<NodeConfig> {
            Ok(NodeConfig {
                address: resolve(&r.address)?,
                listen: r.listen.as_deref().map(resolve).transpose()?,
                cert: base.join(r.cert),
                key: r.key.map(|k| base.join(k)),
            })
        };
        let parties = raw
            .party
            .into_iter()
            .map(node)
            .collect::<Result<Vec<_>>>()?;
        let client = node(raw.client)?;
        let mut addrs: Vec<SocketAddr> = parties.iter().map(|p| p.address).collect();
        addrs.push(client.address);
        addrs.sort();
        addrs.dedup();
        if addrs.len() != 4 {
            return Err(deploy_err(here, "two nodes share an address"));
        }
        Ok(Self {
            protocol,
            frac_bits,
            comparison,
            timeout,
            connect_timeout,
            max_frame_words,
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
        s += &format!(
            "\n[client]\naddress = \"{host}:{}\"\ncert = \"client.pem\"\nkey = \"client.key\"\n",
            base_port.saturating_add(3)
        );
        s
    }

    fn node(&self, id: usize) -> Option<&NodeConfig> {
        if id == CLIENT {
            Some(&self.client)
        } else {
            self.parties.get(id)
        }
    }

    /// Joins the mesh as node `id` (0, 1, 2: parties; 3: the client), reading this node's key
    /// and every node's certificate, and listening on its address. [`run_party`] and
    /// [`RemoteBackend`] use this; it is public for custom drivers and tests.
    pub fn join(&self, id: usize) -> Result<TcpTransport> {
        let me = self.node(id).ok_or(MpcError::Config {
            field: "id",
            value: id.to_string(),
            reason: "parties are 0, 1 and 2",
        })?;
        let key_path = me.key.as_ref().ok_or_else(|| {
            deploy_err("parties.toml", format!("no key for node {}", node_name(id)))
        })?;
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| deploy_err(key_path, e))?;
        let chain = read_certs(&me.cert)?;
        let ca = read_certs(&self.ca)?;
        let mut peers = Vec::with_capacity(4);
        for j in 0..4 {
            let n = self.node(j).ok_or(MpcError::PartyFailed { party: j })?;
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
        let bind = me.listen.unwrap_or(me.address);
        let listener = TcpListener::bind(bind).map_err(|e| deploy_err(bind.to_string(), e))?;
        TcpTransport::connect(
            id,
            &peers,
            listener,
            &TlsSettings {
                ca,
                chain,
                key,
                timeout: self.timeout,
                connect_timeout: self.connect_timeout,
                max_frame_words: self.max_frame_words,
            },
        )
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
    if id == CLIENT {
        "client".into()
    } else {
        format!("party-{id}")
    }
}

/// Files written by [`generate_certs`].
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// The CA certificate (its key is not kept).
    pub ca: PathBuf,
    /// `(certificate, key)` of each party, by id.
    pub parties: Vec<(PathBuf, PathBuf)>,
    /// `(certificate, key)` of the client.
    pub client: (PathBuf, PathBuf),
}

/// Quick start: creates `dir` and writes a fresh self-signed CA (`ca.pem`; its key is
/// discarded), and for each of `parties` parties and the client a certificate signed by it
/// (`party-I.pem`, `client.pem`, subject alternative name `party-I` / `client`, valid for TLS
/// client and server use) with its ECDSA P-256 key (`party-I.key`, `client.key`, mode 0600 on
/// Unix). Deployments use 3 parties.
pub fn generate_certs(dir: impl AsRef<Path>, parties: usize) -> Result<CertFiles> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let dir = dir.as_ref();
    let rc = |e: rcgen::Error| deploy_err(dir, e);
    fs::create_dir_all(dir).map_err(|e| deploy_err(dir, e))?;
    let ca_key = KeyPair::generate().map_err(rc)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ppml MPC deployment CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(rc)?;
    let write = |name: &str, text: &str, secret: bool| -> Result<PathBuf> {
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
    };
    let ca = write("ca.pem", &ca_cert.pem(), false)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |name: String| -> Result<(PathBuf, PathBuf)> {
        let key = KeyPair::generate().map_err(rc)?;
        let mut p = CertificateParams::new(vec![name.clone()]).map_err(rc)?;
        p.distinguished_name.push(DnType::CommonName, name.clone());
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &issuer).map_err(rc)?;
        Ok((
            write(&format!("{name}.pem"), &cert.pem(), false)?,
            write(&format!("{name}.key"), &key.serialize_pem(), true)?,
        ))
    };
    let parties = (0..parties)
        .map(|i| leaf(node_name(i)))
        .collect::<Result<Vec<_>>>()?;
    let client = leaf(node_name(CLIENT))?;
    Ok(CertFiles {
        ca,
        parties,
        client,
    })
}

/// Quick start in one call (`ppml mpc-certs --out DIR`): [`generate_certs`] for three parties
/// and the client in `dir`, and `dir/parties.toml` from [`PartiesConfig::quick_start_toml`]
/// (all nodes on `host`, ports `base_port..base_port + 4`). Returns the config's path.
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

/// What a party did before it stopped cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartyReport {
    /// Queries answered.
    pub queries: usize,
    /// This party's traffic (setup included).
    pub stats: TransportStats,
}

/// Runs party `id` (0, 1 or 2) of the deployment `config` in this process: joins the mesh,
/// then serves one client session (see the [module docs](self)) and returns when the client
/// says goodbye. Party 0 is the model owner and secret-shares `model`'s weights; parties 1 and 2
/// use only `model`'s architecture (which must be the same everywhere: a different one shows up
/// as [`MpcError::Malformed`]). Any failure of a peer stops the party with a typed error within
/// the configured timeout.
pub fn run_party(id: usize, config: &PartiesConfig, model: &Model) -> Result<PartyReport> {
    if id >= 3 {
        return Err(MpcError::Config {
            field: "id",
            value: id.to_string(),
            reason: "parties are 0, 1 and 2",
        });
    }
    plan(model)?;
    let fp = FixedPoint::new(config.frac_bits)?;
    let cmp = Comparator::new(config.comparison, config.frac_bits);
    let mut net = config.join(id)?;
    let queries = match config.protocol {
        Protocol::Mpc2 => mpc2::serve(&mut net, id, model, fp, cmp)?,
        Protocol::Mpc3 => mpc3::serve(&mut net, id, model, fp, cmp)?,
    };
    Ok(PartyReport {
        queries,
        stats: net.stats(),
    })
}

/// The client of a deployment, as a [`Backend`] (`remote-mpc2` / `remote-mpc3`): `setup`
/// joins the mesh (the parties must be running, see [`run_party`]) with the model's
/// architecture (its weights are not used or sent: party 0 owns them); `infer` secret-shares
/// the batch to the parties and reconstructs the logits. Dropping it ends the parties' session.
pub struct RemoteBackend {
    config: PartiesConfig,
    fp: FixedPoint,
    state: Option<Remote>,
}

struct Remote {
    net: TcpTransport,
    in_len: usize,
    input: Vec<usize>,
    classes: usize,
}

impl RemoteBackend {
    /// A client for `config` (nothing is connected before `setup`).
    pub fn new(config: PartiesConfig) -> Result<Self> {
        let fp = FixedPoint::new(config.frac_bits)?;
        Ok(Self {
            config,
            fp,
            state: None,
        })
    }

    fn setup_inner(&mut self, model: &Model) -> Result<SetupReport> {
        let start = Instant::now();
        let (_, in_len, classes) = plan(model)?;
        // A previous session ends first.
        self.close();
        let net = self.config.join(CLIENT)?;
        self.state = Some(Remote {
            net,
            in_len,
            input: model.input.to_vec(),
            classes,
        });
        Ok(SetupReport {
            seconds: start.elapsed().as_secs_f64(),
            bytes_sent: 0,
            notes: vec![
                format!(
                    "{} over TLS 1.3 between separate processes; party 0 owns and shares the weights",
                    self.name()
                ),
                "setup traffic (key agreement, weight sharing) is counted by the parties, not here".into(),
            ],
        })
    }

    fn infer_inner(&mut self, images: &Tensor) -> Result<(Tensor, CallStats)> {
        let fp = self.fp;
        let protocol = self.config.protocol;
        let st = self
            .state
            .as_mut()
            .ok_or(MpcError::NotSetUp { backend: "remote" })?;
        let x = encode_input(images, st.in_len, &st.input, &fp)?;
        let n = images.batch();
        if n == 0 {
            return Ok((Tensor::zeros(vec![0, st.classes]), CallStats::default()));
        }
        let before = st.net.stats();
        let res = match protocol {
            Protocol::Mpc2 => mpc2::query(&mut st.net, &x, n, st.classes),
            Protocol::Mpc3 => mpc3::query(&mut st.net, &x, n, st.classes),
        };
        let y = match res {
            Ok(y) => y,
            Err(e) => {
                // The session is broken: the parties have stopped.
                self.state = None;
                return Err(e);
            }
        };
        let after = st.net.stats();
        let logits = decode_output(&[y], n, st.classes, &fp)?;
        Ok((
            logits,
            CallStats {
                bytes_sent: after.bytes_sent - before.bytes_sent,
                rounds: after.rounds - before.rounds,
            },
        ))
    }

    /// Ends the session: tells the parties goodbye (they then exit cleanly) and disconnects.
    pub fn close(&mut self) {
        if let Some(mut st) = self.state.take() {
            for i in 0..3 {
                let _ = st.net.send(i, vec![0]);
            }
        }
    }
}

impl Drop for RemoteBackend {
    fn drop(&mut self) {
        self.close();
    }
}

impl Backend for RemoteBackend {
    fn name(&self) -> &str {
        match self.config.protocol {
            Protocol::Mpc2 => "remote-mpc2",
            Protocol::Mpc3 => "remote-mpc3",
        }
    }

    fn setup(&mut self, model: &Model) -> Result<SetupReport, BackendError> {
        Ok(self.setup_inner(model)?)
    }

    fn infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats), BackendError> {
        Ok(self.infer_inner(images)?)
    }
}
