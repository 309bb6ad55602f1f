//! [`Mode`]: which packing a session uses, and the rule of which one each call takes.

/// Which packing a call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One image per slot: a batch of up to N/2 images shares every ciphertext.
    Throughput,
    /// One image per ciphertext, diagonal matrix-vector products.
    Latency,
    /// Latency for one-image calls when the model's layout fits, throughput otherwise.
    Auto,
}

impl Mode {
    /// The name the setup reports (`throughput`, `latency`, `auto`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Throughput => "throughput",
            Mode::Latency => "latency",
            Mode::Auto => "auto",
        }
    }

    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            Mode::Throughput => 0,
            Mode::Latency => 1,
            Mode::Auto => 2,
        }
    }

    /// Whether a call of `n` images runs in latency mode when the server set up latency mode
    /// (`latency`) and throughput mode (`throughput`): the one rule every client follows.
    /// Latency mode always; throughput mode never; auto for one image, or for any number when
    /// throughput mode is not set up (its batches would not fit the server's memory budget).
    pub fn runs_latency(self, n: usize, latency: bool, throughput: bool) -> bool {
        match self {
            Mode::Latency => true,
            Mode::Throughput => false,
            Mode::Auto => latency && (n == 1 || !throughput),
        }
    }

    /// From a wire code.
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Mode::Throughput),
            1 => Some(Mode::Latency),
            2 => Some(Mode::Auto),
            _ => None,
        }
    }
}
