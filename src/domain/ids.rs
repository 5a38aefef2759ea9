//! Identifiers. Each wraps a string so that a case id cannot be passed where an event id is
//! expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an existing id (as read from the wire or a URL).
            pub fn from_string(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A case (办件) id, issued by the intake system; the record key of every bus message.
    CaseId
);
string_id!(
    /// A bus message id. Ids are derived from what caused the message, so re-publishing after a
    /// failure produces the same id and consumers can drop the duplicate.
    MessageId
);
string_id!(
    /// A collaboration event id: one piece of help asked of one department.
    EventId
);

impl CaseId {
    /// A new, globally unique case id (time-ordered UUID v7).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }
}
