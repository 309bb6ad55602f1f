//! Who is who in a deployment: node ids shared by the client, the parties and the errors.

/// The client's node id (after the three parties `0`, `1`, `2`; party 2 is `mpc2`'s dealer and
/// the provider of material made ahead under both protocols).
pub(crate) const CLIENT_ID: usize = 3;
