//! Latency mode's slot layout: [`Placement`] (where a vector's elements sit) and [`layout`]
//! (the search for the placements of a whole plan). The client lays its input out with it, the
//! latency evaluator its diagonals.

mod placement;
mod search;

pub use placement::{period, Grid, Placement, MAX_CIPHERTEXTS};
pub use search::{layout, required_slots};
