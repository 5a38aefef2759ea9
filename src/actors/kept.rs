//! [`Kept`]: what a stateful system writes as a case's snapshot state, open or closed, and how
//! it is read back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// What a stateful system writes as a case's snapshot state: the state while the case is
/// open, a closed marker once it is closed. The open state is written as it always was, so
/// snapshots written before closing existed still load.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Kept<T> {
    /// The case is closed at the system.
    Closed(ClosedMarker),
    /// The case's state.
    Open(T),
}

/// The state of a case's last snapshot at a system that closed it:
/// `{"closed_at": "<RFC 3339>"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedMarker {
    /// When the system closed the case.
    pub closed_at: DateTime<Utc>,
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Kept<T> {
    /// A closed marker when the state has a `closed_at`, else the state, with the error of
    /// the shape it was read as. The state is read from its JSON text, not through a
    /// `serde_json::Value`: what a state keeps as text ([`FormFields`](crate::domain::FormFields))
    /// can only be read from text.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        // Not an object: read as the state, whose error then says what it is not.
        let closed = serde_json::from_str::<StateShape>(text.get()).is_ok_and(|s| s.closed_at);
        let kept = if closed {
            serde_json::from_str(text.get()).map(Kept::Closed)
        } else {
            serde_json::from_str(text.get()).map(Kept::Open)
        };
        kept.map_err(serde::de::Error::custom)
    }
}

/// Whether a state object has a `closed_at` field, whatever its value.
#[derive(Deserialize)]
struct StateShape {
    #[serde(default, deserialize_with = "present")]
    closed_at: bool,
}

/// `true` for a field that is there, whatever it holds.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}
