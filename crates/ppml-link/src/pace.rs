//! The schedule of one direction, with no I/O: when each chunk may leave the relay.
//!
//! The link is modelled as a serializer followed by a wire: a chunk that arrives at `a` starts
//! serializing when both it has arrived and the previous chunk has finished (`start = max(a,
//! free)`), takes `len * 8 / rate` seconds (`free = start + len * 8 / rate`), then travels for the
//! one-way delay: it is delivered at `free + delay`. Hence no byte is delivered before its arrival
//! plus the delay, and the bytes delivered by any time never exceed what the rate allows since
//! the first one arrived (plus the one chunk in progress). This is netem's `delay` with `rate`.

use std::time::Instant;

use crate::profile::LinkProfile;

/// One direction's departure schedule.
#[derive(Clone, Debug)]
pub(crate) struct Pacer {
    profile: LinkProfile,
    /// When the serializer is free again (the last chunk's end of serialization).
    free: Option<Instant>,
}

impl Pacer {
    /// A pacer for `profile`, idle.
    pub(crate) fn new(profile: LinkProfile) -> Self {
        Self {
            profile,
            free: None,
        }
    }

    /// When a chunk of `len` bytes that arrived at `arrival` is delivered. Chunks must be
    /// scheduled in arrival order.
    pub(crate) fn deliver_at(&mut self, arrival: Instant, len: usize) -> Instant {
        let start = match self.free {
            Some(free) if free > arrival => free,
            _ => arrival,
        };
        let free = start + self.profile.serialization_time(len);
        self.free = Some(free);
        free + self.profile.one_way_delay
    }

    /// The largest chunk worth reading at once: about half a millisecond at the rate, between
    /// 4 KiB and 64 KiB (64 KiB when unlimited), so that pacing stays smooth without a system
    /// call per packet.
    pub(crate) fn chunk_limit(&self) -> usize {
        const MIN: usize = 4 << 10;
        const MAX: usize = 64 << 10;
        match self.profile.rate_bits_per_s {
            None => MAX,
            Some(rate) => {
                let half_ms = rate / 8 / 2000;
                usize::try_from(half_ms).unwrap_or(MAX).clamp(MIN, MAX)
            }
        }
    }

    /// How many bytes may wait inside the relay for this direction before the relay stops
    /// reading from the sender (who then sees TCP back-pressure): twice the bytes in flight on a
    /// full link, at least 4 MiB.
    pub(crate) fn queue_limit(&self) -> usize {
        self.profile
            .bandwidth_delay_bytes()
            .saturating_mul(2)
            .max(4 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn profile(delay_ms: u64, rate: Option<u64>) -> LinkProfile {
        LinkProfile::custom("t", Duration::from_millis(delay_ms), rate).expect("profile")
    }

    #[test]
    fn a_small_chunk_waits_the_delay_plus_its_serialization() {
        // 8 Mbit/s: one byte per microsecond.
        let mut p = Pacer::new(profile(20, Some(8_000_000)));
        let t0 = Instant::now();
        assert_eq!(
            p.deliver_at(t0, 100),
            t0 + Duration::from_millis(20) + Duration::from_micros(100)
        );
    }

    #[test]
    fn back_to_back_chunks_queue_behind_each_other() {
        let mut p = Pacer::new(profile(10, Some(8_000_000)));
        let t0 = Instant::now();
        let d = Duration::from_millis(10);
        let us = Duration::from_micros;
        // Three 1000-byte chunks arriving together leave 1 ms apart.
        assert_eq!(p.deliver_at(t0, 1000), t0 + us(1000) + d);
        assert_eq!(p.deliver_at(t0, 1000), t0 + us(2000) + d);
        assert_eq!(p.deliver_at(t0 + us(500), 1000), t0 + us(3000) + d);
        // After an idle gap the serializer starts afresh at the arrival.
        let later = t0 + Duration::from_secs(1);
        assert_eq!(p.deliver_at(later, 1000), later + us(1000) + d);
    }

    #[test]
    fn delivered_bytes_never_exceed_the_rate() {
        let rate = 100_000_000u64;
        let mut p = Pacer::new(profile(5, Some(rate)));
        let t0 = Instant::now();
        let mut sent = 0u64;
        // Arrivals faster than the rate, of varying sizes.
        for i in 0..1000u64 {
            let len = 100 + (i * 7919) % 9000;
            let at = p.deliver_at(t0 + Duration::from_micros(i * 10), len as usize);
            sent += len;
            let window = at - t0 - Duration::from_millis(5);
            let allowed = rate as f64 / 8.0 * window.as_secs_f64();
            assert!(sent as f64 <= allowed + 1.0, "{sent} bytes by {window:?}");
        }
    }

    #[test]
    fn no_shaping_delivers_on_arrival() {
        let mut p = Pacer::new(LinkProfile::loopback());
        let t0 = Instant::now();
        assert_eq!(p.deliver_at(t0, 1 << 20), t0);
        assert_eq!(p.chunk_limit(), 64 << 10);
        assert_eq!(p.queue_limit(), 4 << 20);
        assert_eq!(Pacer::new(LinkProfile::wan()).chunk_limit(), 25_000);
    }
}
