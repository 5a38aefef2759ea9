//! [`FormFields`]: an application's free-form fields, kept as the compact JSON text they were
//! encoded to once, at the intake.
//!
//! No system reads the fields: the terminal checks them when they are handed in, and from then
//! on they are carried — in the application on the bus, in every system's state, in the case
//! view — and shown. Decoded into a `serde_json::Value`, even `{"simulated": true}` costs a
//! B-tree node of some 600 bytes, at every system that keeps the application; as text it
//! costs its length.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// An application's free-form fields as compact JSON text. Two are equal when their texts
/// are: the intake encodes every application's fields the same way (compact, the keys of
/// each object sorted).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FormFields(Box<RawValue>);

impl FormFields {
    /// The fields of `value`, encoded as compact JSON.
    pub fn of(value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl Default for FormFields {
    /// No fields: `null`, as a form left out of an application.
    fn default() -> Self {
        Self(RawValue::NULL.to_owned())
    }
}

impl PartialEq for FormFields {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for FormFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_travel_as_the_compact_json_they_were_encoded_to() {
        let fields = FormFields::of(&json!({ "seats": 40, "area_m2": 120, "name": "餐馆" }))
            .expect("fields");
        assert_eq!(
            fields.as_str(),
            r#"{"area_m2":120,"name":"餐馆","seats":40}"#
        );
        let envelope = json!({ "form": fields });
        assert_eq!(envelope["form"]["seats"], 40);
        let back: FormFields =
            serde_json::from_str(&serde_json::to_string(&fields).expect("text")).expect("read");
        assert_eq!(back, fields);
        assert_eq!(FormFields::default().as_str(), "null");
    }
}
