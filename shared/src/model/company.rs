//! The company / legal entity a document is booked in.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A company or legal entity inside one system: the set of books a document belongs to and a
/// master record lives in. Business Central: the company id of `/companies({id})`; F&O: the
/// `dataAreaId` (`usmf`); Basware: `companyCode`; Concur: the `companyId` / `entityId` of a
/// financial document; SAP Business One: the company database (and branch, when the source
/// says). Opaque: compared exactly as the system gives it, never parsed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Company(pub String);

impl Company {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Company {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
