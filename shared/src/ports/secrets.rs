use std::fmt;
use std::future::Future;

/// A secret value. `Debug` and `Display` never show it, so it cannot leak through a log line,
/// an error message or a panic; `expose()` is the one deliberate way out.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret '{0}' does not exist")]
    NotFound(String),
    #[error("secret store: {0}")]
    Backend(String),
}

/// Which write of a secret a read saw; the token a compare-and-set write names. Opaque: the
/// embedded file counts writes, Secrets Manager uses its version ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretVersion(String);

impl SecretVersion {
    pub fn new(version: impl Into<String>) -> Self {
        Self(version.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a compare-and-set write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The value is stored; this is its version (the `expected` of the next write).
    Written(SecretVersion),
    /// The secret was not at the expected version (someone else wrote first, or it exists
    /// when it was expected not to): nothing was written. Read it again and decide anew.
    Conflict,
}

pub trait Secrets: Send + Sync {
    /// The current value (adapters may serve it from a cache for a while).
    fn get(&self, name: &str) -> impl Future<Output = Result<SecretString, SecretError>> + Send;

    /// The current value and its version, read from the store now (never from a cache: the
    /// version is about to be the `expected` of a [`Secrets::put_if`]).
    fn get_versioned(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<(SecretString, SecretVersion), SecretError>> + Send;

    /// Compare-and-set: stores `value` only if the secret is still at `expected` (`None`: only
    /// if it does not exist yet). For secrets the connector itself rotates (OAuth refresh
    /// tokens), where two workers must never both act on one value.
    fn put_if(
        &self,
        name: &str,
        expected: Option<&SecretVersion>,
        value: &SecretString,
    ) -> impl Future<Output = Result<PutOutcome, SecretError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_never_formatted() {
        let s = SecretString::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
