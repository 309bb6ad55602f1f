//! `ppml-link`: link emulation for benchmarks and tests.
//!
//! The kernel's netem qdisc is not available everywhere ppml is measured, so links are shaped in
//! user space: a [`Relay`] listens on local ports and forwards every connection it accepts to a
//! target address, delaying each direction by a [`LinkProfile`]'s one-way delay and pacing it to
//! the profile's rate. Bytes are
//! forwarded unchanged and in order, so TLS and any other protocol pass through; the relay knows
//! nothing of what it carries.
//!
//! A deployment measured "over a WAN" runs each node's listener behind a relay port, and every
//! other node connects to the relay port instead of the node: all traffic then crosses the
//! emulated link once per hop.
//!
//! # The model
//! Each direction of a connection is a serializer followed by a wire, as netem's `delay` with
//! `rate`: a chunk read at time `a` starts leaving when it has arrived and the previous chunk
//! has left (`start = max(a, free)`), takes `len * 8 / rate` to leave (`free = start + len * 8 /
//! rate`), then travels for the one-way delay: it is written to the receiver at `free + delay`.
//! No byte arrives before its send time plus the delay, and a direction never delivers faster
//! than the rate. Chunks are timestamped when the relay reads them (reads are at most about half
//! a millisecond of traffic at the rate), and both sockets have `TCP_NODELAY`, so small writes
//! are forwarded promptly and in order. A sender's close reaches the receiver as a close after
//! the bytes before it; a receiver that is gone closes the sender's side.
//!
//! # What it models and what it does not
//! - Modelled: propagation delay per direction, a bandwidth per direction of each connection,
//!   back-pressure (a bounded queue per direction: the sender blocks once about twice the
//!   bandwidth-delay product waits in the relay).
//! - Not modelled: packet loss, reordering, jitter other than the relay's own scheduling
//!   (user-space timers wake tens of microseconds late, more on a loaded machine), TCP slow start
//!   over the emulated round trip (each side's TCP sees a loopback connection to the relay), a
//!   node's uplink shared between its connections (each connection has the full rate), and the
//!   TCP handshake's own round trip (a connection is accepted at once; its first bytes pay the
//!   delay).
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::time::{Duration, Instant};
//! use ppml_link::{LinkProfile, Relay};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TcpListener::bind("127.0.0.1:0")?;
//! let profile = LinkProfile::custom("10ms", Duration::from_millis(10), Some(100_000_000))?;
//! let relay = Relay::start(profile, &[("127.0.0.1:0".parse()?, server.local_addr()?)])?;
//!
//! let start = Instant::now();
//! let mut client = TcpStream::connect(relay.listen_addrs()[0])?;
//! client.write_all(b"ping")?;
//! let (mut conn, _) = server.accept()?;
//! let mut buf = [0u8; 4];
//! conn.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"ping");
//! assert!(start.elapsed() >= Duration::from_millis(10));
//! # Ok(())
//! # }
//! ```

pub mod error;
mod pace;
mod pipe;
pub mod profile;
pub mod relay;

pub use error::LinkError;
pub use profile::LinkProfile;
pub use relay::{Relay, RelayHandle, RelayOptions, RouteStats};
