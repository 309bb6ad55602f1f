//! The crate's error type.

use std::net::SocketAddr;

/// What can go wrong when building a profile or starting a relay.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A profile name that is not one of [`crate::LinkProfile::NAMES`].
    #[error("unknown link profile {name:?}: expected loopback, lan or wan")]
    UnknownProfile {
        /// The name given.
        name: String,
    },
    /// A custom profile with a rate of zero bits per second.
    #[error("link profile {name:?}: the rate must be positive (or unlimited)")]
    ZeroRate {
        /// The profile's name.
        name: String,
    },
    /// A relay started without any route.
    #[error("a relay needs at least one route")]
    NoRoutes,
    /// A route's listening address could not be bound.
    #[error("relay: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A thread of the relay could not be started.
    #[error("relay: cannot start a thread: {source}")]
    Thread {
        /// Why.
        source: std::io::Error,
    },
}
