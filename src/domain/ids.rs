//! Identifiers and codes. Each wraps a string so that a case id cannot be passed where an event
//! id is expected, nor a department code where a centre code is.
//!
//! The string is shared (`Arc<str>`): a case id is kept by every system a case reaches, in its
//! records, its handled-message sets and its snapshots' keys, and a clone of it is a reference
//! count, not a new allocation of the text. The text itself never changes once made. Case and
//! event ids read apart (each system reads them from its own messages) share one text while
//! anyone holds it (`interned`), and configured codes share the configuration's.
//!
//! Every one is serialised as the bare string it wraps (`#[serde(transparent)]`), so the wire
//! contract, the HTTP API and the TOML config read exactly as they did when these were `String`s.
//! Shapes are checked where they always were: config codes by `Settings::validate`, ids and codes
//! on the wire by the system that looks them up.

use super::interned::Interned;
use crate::maps::Set;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

/// Reads a string into an `Arc<str>` with one allocation (serde's own `Arc<str>` reads a
/// `Box<str>` first and copies it), made by its function: a new text, or a shared one.
struct Text(fn(&str) -> Arc<str>);

impl Visitor<'_> for Text {
    type Value = Arc<str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Arc<str>, E> {
        Ok((self.0)(s))
    }
}

/// The codes of the configured city (departments, centres, matters, terminals), registered by
/// [`know_code`] when the catalog is built. A code read from the wire or a URL whose text is
/// one of them shares its text instead of allocating its own: every application, event and
/// record names several. Only the configuration adds to the set, so it stays as small as the
/// city's description; a code that is not in it (a typo, a poison message) gets its own text.
static KNOWN_CODES: LazyLock<RwLock<Set<Arc<str>>>> = LazyLock::new(Default::default);

/// Registers `code`, a code of the configured city, so that codes of its text read from now
/// on share it.
pub fn know_code(code: &str) {
    let mut known = KNOWN_CODES.write().unwrap_or_else(PoisonError::into_inner);
    if !known.contains(code) {
        known.insert(Arc::from(code));
    }
}

/// A text of its own.
fn new_text(text: &str) -> Arc<str> {
    Arc::from(text)
}

/// Case and event ids read while someone holds the same one: each open case's id is named by
/// every system it reaches, and each reads it from its own messages.
static HELD_IDS: LazyLock<Interned> = LazyLock::new(Interned::new);

/// `id`'s text: shared with whoever holds the same id (see [`Interned`]).
fn held_text(id: &str) -> Arc<str> {
    HELD_IDS.text(id)
}

/// `code`'s text: shared with the configured code of that text, if there is one.
fn code_text(code: &str) -> Arc<str> {
    let known = KNOWN_CODES.read().unwrap_or_else(PoisonError::into_inner);
    known.get(code).cloned().unwrap_or_else(|| new_text(code))
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        string_id!($(#[$doc])* $name, new_text);
    };
    ($(#[$doc:meta])* $name:ident, $text:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String)]
        pub struct $name(Arc<str>);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(Text($text)).map(Self)
            }
        }

        impl $name {
            /// Wraps an existing id (as read from the wire or a URL). A code of the configured
            /// city shares that code's text ([`know_code`]); a case or event id shares the text
            /// of the same id held elsewhere (`held_text`); any other text is its own.
            pub fn from_string(s: impl AsRef<str>) -> Self {
                Self($text(s.as_ref()))
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

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self($text(s))
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self($text(&s))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Lets a map keyed by this type be looked up with a `&str`. Sound because the derived
        /// `Hash`, `Eq` and `Ord` are those of the wrapped string.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }
    };
}

string_id!(
    /// A case (办件) id, issued by the intake system; the record key of every bus message.
    CaseId,
    held_text
);
string_id!(
    /// A bus message id. Ids are derived from what caused the message, so re-publishing after a
    /// failure produces the same id and consumers can drop the duplicate.
    MessageId
);
string_id!(
    /// A collaboration event id: one piece of help asked of one department.
    EventId,
    held_text
);
string_id!(
    /// The trace a case's messages carry, as the envelope's `trace_id` names it. Every system a
    /// case reaches keeps it with its records of the case (for the messages it sends later), so
    /// those records share one text while anyone holds it (`held_text`).
    TraceId,
    held_text
);

string_id!(
    /// A department's code (`market`, `fire`, …), from `[[departments]]`; its bus id is
    /// `department/<code>`.
    DepartmentCode,
    code_text
);
string_id!(
    /// A governance centre's code: the region code of the city, a district or a street
    /// (`500000`, `500103`, `500103001`), from `[governance]`; its bus id is
    /// `governance/<code>`.
    CentreCode,
    code_text
);
string_id!(
    /// A matter's (事项) code, from `[[matters]]`.
    MatterCode,
    code_text
);
string_id!(
    /// A terminal's id, from `[[terminals]]`; used in the submission URL.
    TerminalId,
    code_text
);
string_id!(
    /// An acceptance receipt's number (受理回执编号), issued by the accepting department,
    /// unique per case.
    ReceiptNo
);
string_id!(
    /// Who took or received a step of a case's history: a system's bus id (`intake`,
    /// `department/market`, `governance/500103`) or the terminal an application came from
    /// (`terminal/t1`). The catalog registers those of the configured city, so each entry
    /// shares their text ([`Party::shared`]).
    Party,
    code_text
);

impl Party {
    /// `name`, sharing the text of the configured party of that name, if there is one.
    pub fn shared(name: &str) -> Self {
        Self(code_text(name))
    }

    /// The terminal `id`: `terminal/<id>`.
    pub fn terminal(id: &str) -> Self {
        Self::shared(&format!("terminal/{id}"))
    }
}

impl CaseId {
    /// A new, globally unique case id (time-ordered UUID v7).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn codes_serialise_as_the_bare_string_and_read_it_back() {
        let code = DepartmentCode::from_string("market");
        assert_eq!(serde_json::to_string(&code).unwrap(), r#""market""#);
        let back: DepartmentCode = serde_json::from_str(r#""market""#).unwrap();
        assert_eq!(back, code);
        assert_eq!(back, "market");
        assert_eq!(back.to_string(), "market");
    }

    #[test]
    fn ids_read_escaped_text_and_refuse_what_is_not_a_string() {
        let id: CaseId = serde_json::from_str(r#""case\u002d1""#).unwrap();
        assert_eq!(id, "case-1");
        let wrong = serde_json::from_str::<CaseId>("17").unwrap_err();
        assert!(wrong.to_string().contains("expected a string"), "{wrong}");
        let envelope: HashMap<String, EventId> =
            serde_json::from_slice(br#"{"event_id":"e-7"}"#).unwrap();
        assert_eq!(envelope["event_id"], "e-7");
    }

    #[test]
    fn a_clone_shares_the_text() {
        let id = CaseId::generate();
        let kept = id.clone();
        assert!(Arc::ptr_eq(&id.0, &kept.0));
        assert_eq!(id.as_str().len(), 32);
    }

    #[test]
    fn a_configured_code_read_from_the_wire_shares_its_text_and_no_other_does() {
        know_code("ids-test-market");
        let read = |text: &str| format!("\"{text}\"");
        let department: DepartmentCode = serde_json::from_str(&read("ids-test-market")).unwrap();
        let matter: MatterCode = serde_json::from_str(&read("ids-test-market")).unwrap();
        assert_eq!(department, "ids-test-market");
        assert!(Arc::ptr_eq(&department.0, &matter.0));
        let unknown: CentreCode = serde_json::from_str(&read("ids-test-unknown")).unwrap();
        let again: CentreCode = serde_json::from_str(&read("ids-test-unknown")).unwrap();
        assert_eq!(unknown, again);
        assert!(
            !Arc::ptr_eq(&unknown.0, &again.0),
            "only configured codes are shared"
        );
        let case: CaseId = serde_json::from_str(&read("ids-test-market")).unwrap();
        assert!(
            !Arc::ptr_eq(&case.0, &department.0),
            "ids are never shared by text"
        );
    }

    #[test]
    fn a_trace_id_kept_by_one_system_is_shared_by_the_next_that_reads_it() {
        let kept = TraceId::from("ids-test-0123456789abcdef0123456789abcdef");
        let read: TraceId =
            serde_json::from_str(r#""ids-test-0123456789abcdef0123456789abcdef""#).unwrap();
        assert!(Arc::ptr_eq(&kept.0, &read.0));
        let text = Arc::downgrade(&kept.0);
        drop((kept, read));
        assert!(text.upgrade().is_none(), "the table holds no text itself");
        let again = TraceId::from("ids-test-0123456789abcdef0123456789abcdef");
        assert_eq!(again, "ids-test-0123456789abcdef0123456789abcdef");
    }

    #[test]
    fn a_configured_party_is_shared_and_reads_as_its_name() {
        know_code("department/ids-test-fire");
        let made = Party::shared("department/ids-test-fire");
        let read: Party = serde_json::from_str(r#""department/ids-test-fire""#).unwrap();
        assert!(Arc::ptr_eq(&made.0, &read.0));
        assert_eq!(
            serde_json::to_string(&made).unwrap(),
            r#""department/ids-test-fire""#
        );
        let other = Party::shared("terminal/ids-test-unknown");
        assert_eq!(other, "terminal/ids-test-unknown");
    }

    #[test]
    fn a_map_keyed_by_code_is_looked_up_by_str() {
        let centres = HashMap::from([(CentreCode::from_string("500103"), "渝中区")]);
        assert_eq!(centres.get("500103"), Some(&"渝中区"));
        assert_eq!(
            centres.get(&CentreCode::from_string("500103")),
            Some(&"渝中区")
        );
        assert_eq!(centres.get("500000"), None);
    }
}
