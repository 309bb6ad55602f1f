//! Keys: the ternary secret key, the public key and the key-switching keys (relinearisation and
//! Galois).

mod galois_key;
mod key_switching_key;
mod public_key;
mod relinearization_key;
mod secret_key;

pub use galois_key::GaloisKeys;
pub use key_switching_key::KeySwitchingKey;
pub use public_key::PublicKey;
pub use relinearization_key::RelinearizationKey;
pub use secret_key::SecretKey;
