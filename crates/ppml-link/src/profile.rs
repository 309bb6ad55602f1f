//! Link profiles: a one-way delay and a rate, applied to each direction of a connection.

use std::fmt;
use std::time::Duration;

use crate::error::LinkError;

/// What a link does to the bytes crossing it, in each direction independently: they leave no
/// earlier than their arrival plus [`one_way_delay`](Self::one_way_delay), and no faster than
/// [`rate_bits_per_s`](Self::rate_bits_per_s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkProfile {
    /// A name for reports (`loopback`, `lan`, `wan` or a custom one).
    pub name: String,
    /// Propagation delay of one direction (half the round-trip time).
    pub one_way_delay: Duration,
    /// Bandwidth of one direction in bits per second; `None` is unlimited.
    pub rate_bits_per_s: Option<u64>,
}

impl LinkProfile {
    /// The named profiles, for `--profile` and `--network` options.
    pub const NAMES: [&'static str; 3] = ["loopback", "lan", "wan"];

    /// No shaping: bytes are forwarded as soon as they arrive (the relay's own cost only).
    pub fn loopback() -> Self {
        Self {
            name: "loopback".into(),
            one_way_delay: Duration::ZERO,
            rate_bits_per_s: None,
        }
    }

    /// A local network: 0.25 ms one way (0.5 ms round trip), 1 Gbit/s.
    pub fn lan() -> Self {
        Self {
            name: "lan".into(),
            one_way_delay: Duration::from_micros(250),
            rate_bits_per_s: Some(1_000_000_000),
        }
    }

    /// A wide-area network: 20 ms one way (40 ms round trip), 400 Mbit/s (the WAN profile that
    /// ppml's issue #15 takes from OpenCheetah's benchmark scripts).
    pub fn wan() -> Self {
        Self {
            name: "wan".into(),
            one_way_delay: Duration::from_millis(20),
            rate_bits_per_s: Some(400_000_000),
        }
    }

    /// The profile called `name` (one of [`Self::NAMES`]).
    pub fn from_name(name: &str) -> Result<Self, LinkError> {
        match name {
            "loopback" => Ok(Self::loopback()),
            "lan" => Ok(Self::lan()),
            "wan" => Ok(Self::wan()),
            _ => Err(LinkError::UnknownProfile { name: name.into() }),
        }
    }

    /// A profile of one's own; a rate of `Some(0)` is refused.
    pub fn custom(
        name: impl Into<String>,
        one_way_delay: Duration,
        rate_bits_per_s: Option<u64>,
    ) -> Result<Self, LinkError> {
        let name = name.into();
        if rate_bits_per_s == Some(0) {
            return Err(LinkError::ZeroRate { name });
        }
        Ok(Self {
            name,
            one_way_delay,
            rate_bits_per_s,
        })
    }

    /// Whether the profile changes anything (a delay or a finite rate).
    pub fn is_shaped(&self) -> bool {
        !self.one_way_delay.is_zero() || self.rate_bits_per_s.is_some()
    }

    /// The time `bytes` take to leave at the profile's rate (zero when unlimited).
    pub fn serialization_time(&self, bytes: usize) -> Duration {
        match self.rate_bits_per_s {
            Some(rate) if rate > 0 => {
                let nanos = (bytes as u128 * 8 * 1_000_000_000).div_ceil(u128::from(rate));
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            }
            _ => Duration::ZERO,
        }
    }

    /// Bytes in flight on a full link: rate times one-way delay (0 when unlimited).
    pub fn bandwidth_delay_bytes(&self) -> usize {
        let bits = u128::from(self.rate_bits_per_s.unwrap_or(0)) * self.one_way_delay.as_nanos()
            / 1_000_000_000;
        usize::try_from(bits / 8).unwrap_or(usize::MAX)
    }
}

impl fmt::Display for LinkProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.one_way_delay.as_secs_f64() * 1e3;
        write!(f, "{} ({ms} ms one way, ", self.name)?;
        match self.rate_bits_per_s {
            Some(r) => write!(f, "{} Mbit/s)", r as f64 / 1e6),
            None => write!(f, "unlimited rate)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_profiles_are_the_documented_ones() {
        let wan = LinkProfile::from_name("wan").expect("wan");
        assert_eq!(wan.one_way_delay, Duration::from_millis(20));
        assert_eq!(wan.rate_bits_per_s, Some(400_000_000));
        let lan = LinkProfile::from_name("lan").expect("lan");
        assert_eq!(lan.one_way_delay * 2, Duration::from_micros(500));
        assert_eq!(lan.rate_bits_per_s, Some(1_000_000_000));
        assert!(!LinkProfile::from_name("loopback").expect("lo").is_shaped());
        assert!(matches!(
            LinkProfile::from_name("moon"),
            Err(LinkError::UnknownProfile { .. })
        ));
        for name in LinkProfile::NAMES {
            assert_eq!(LinkProfile::from_name(name).expect(name).name, name);
        }
    }

    #[test]
    fn serialization_time_and_bdp() {
        let wan = LinkProfile::wan();
        // 400 Mbit/s: 50 bytes per microsecond.
        assert_eq!(wan.serialization_time(50_000), Duration::from_millis(1));
        assert_eq!(wan.serialization_time(1), Duration::from_nanos(20));
        // 400 Mbit/s for 20 ms: 1 MB in flight.
        assert_eq!(wan.bandwidth_delay_bytes(), 1_000_000);
        assert_eq!(
            LinkProfile::loopback().serialization_time(1 << 20),
            Duration::ZERO
        );
        assert_eq!(wan.to_string(), "wan (20 ms one way, 400 Mbit/s)");
        assert_eq!(
            LinkProfile::lan().to_string(),
            "lan (0.25 ms one way, 1000 Mbit/s)"
        );
        assert!(matches!(
            LinkProfile::custom("x", Duration::ZERO, Some(0)),
            Err(LinkError::ZeroRate { .. })
        ));
    }
}
