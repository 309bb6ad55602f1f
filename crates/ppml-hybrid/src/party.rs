//! One party of a session: its role, its link to the peer and its OT pools. Every two-party
//! protocol of this crate is a method here that both parties call in the same order.

use crate::error::Result;
use crate::link::{Link, LinkStats};
use crate::ot::{OtPools, Role};

/// A party: role, link and precomputed OTs.
pub struct Party {
    /// The link to the peer.
    pub link: Box<dyn Link>,
    /// The OT pools.
    pub ot: OtPools,
}

impl Party {
    /// Connects over `link`: runs the base OTs of both directions.
    pub fn new(mut link: Box<dyn Link>, role: Role) -> Result<Self> {
        let ot = OtPools::setup(link.as_mut(), role)?;
        Ok(Self { link, ot })
    }

    /// This party's role.
    pub fn role(&self) -> Role {
        self.ot.role()
    }

    /// True for the server (party 0, who adds public constants to its share).
    pub fn is_server(&self) -> bool {
        self.role() == Role::Server
    }

    /// The link's counters.
    pub fn stats(&self) -> LinkStats {
        self.link.stats()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Runs a two-party protocol as two threads over an in-memory link.

    use super::*;
    use crate::error::HybridError;
    use crate::link::memory_pair;
    use crate::ot::OtCount;
    use std::time::Duration;

    /// Runs `server` and `client` on connected parties whose pools hold `count` OTs; returns
    /// both results and checks both pools were used up exactly.
    pub fn run2<A: Send + 'static, B: Send + 'static>(
        count: OtCount,
        server: impl FnOnce(&mut Party) -> Result<A> + Send + 'static,
        client: impl FnOnce(&mut Party) -> Result<B> + Send + 'static,
    ) -> Result<(A, B)> {
        let (ls, lc) = memory_pair(Duration::from_secs(60));
        let h = std::thread::spawn(move || -> Result<B> {
            let mut p = Party::new(Box::new(lc), Role::Client)?;
            p.ot.refill(p.link.as_mut(), count)?;
            let out = client(&mut p)?;
            assert_eq!(p.ot.left(), (0, 0), "client pools not used up exactly");
            Ok(out)
        });
        let mut p = Party::new(Box::new(ls), Role::Server)?;
        p.ot.refill(p.link.as_mut(), count)?;
        let a = server(&mut p)?;
        assert_eq!(p.ot.left(), (0, 0), "server pools not used up exactly");
        let b = h.join().map_err(|_| HybridError::InvalidContent {
            what: "client thread panicked",
            index: 0,
        })??;
        Ok((a, b))
    }
}
