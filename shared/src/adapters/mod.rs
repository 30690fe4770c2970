//! Implementations of the ports. `embedded`: one SQLite file and an encrypted secrets file.
pub mod embedded;

#[cfg(feature = "aws")]
pub mod aws;
