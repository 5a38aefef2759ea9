//! `[input]`: the limits of what a client may send in one request's fields. A body within
//! `http.max_body_bytes` may still carry a 900 KB name or 100,000 materials; these limits
//! refuse such a body with 422 naming the field, before any case exists.

use serde::{Deserialize, Serialize};

/// `[input]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputSettings {
    /// Longest applicant name (a person's or a company's), and longest officer name, in
    /// characters.
    pub name_max_chars: usize,
    /// Longest code a client names: a matter code, a region code, a department code, in
    /// characters.
    pub code_max_chars: usize,
    /// Longest material name or code, in characters.
    pub material_max_chars: usize,
    /// Most materials in one application, supplement or supplement request.
    pub materials_max: usize,
    /// Longest opinion, reason or comment (decisions, supplement requests, collaboration
    /// answers, returns, extensions, ratings), in characters.
    pub text_max_chars: usize,
    /// Largest `form` of an application, as compact JSON, in bytes.
    pub form_max_bytes: usize,
    /// Deepest nesting of `form`: 1 for an object of plain values, 2 when one of them is an
    /// object or a list, and so on.
    pub form_max_depth: usize,
    /// Longest string in `form`, key or value, in characters.
    pub form_text_max_chars: usize,
}

impl Default for InputSettings {
    fn default() -> Self {
        Self {
            name_max_chars: 100,
            code_max_chars: 64,
            material_max_chars: 200,
            materials_max: 100,
            text_max_chars: 2000,
            form_max_bytes: 64 * 1024,
            form_max_depth: 8,
            form_text_max_chars: 4000,
        }
    }
}

impl InputSettings {
    /// Each limit with its key, for the configuration's checks.
    pub fn limits(&self) -> [(&'static str, usize); 8] {
        [
            ("input.name_max_chars", self.name_max_chars),
            ("input.code_max_chars", self.code_max_chars),
            ("input.material_max_chars", self.material_max_chars),
            ("input.materials_max", self.materials_max),
            ("input.text_max_chars", self.text_max_chars),
            ("input.form_max_bytes", self.form_max_bytes),
            ("input.form_max_depth", self.form_max_depth),
            ("input.form_text_max_chars", self.form_text_max_chars),
        ]
    }
}
