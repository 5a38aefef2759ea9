//! The rules of a configuration that its types alone cannot hold: unique codes, references
//! that resolve, a tree that hangs together, values in range.
//!
//! Every rule is checked and every broken one reported, so that an operator fixes a file in one
//! pass rather than one mistake per start.
//!
//! # Layout
//!
//! * `service` — the bus, the bridge, the HTTP listener, its abuse controls and input limits.
//! * `security` — token keys and the keys that seal personal data.
//! * `city` — the governance tree, departments, matters, terminals, the calendar, roles.

use super::{DepartmentSettings, Settings, SettingsError};
use std::collections::{HashMap, HashSet};

mod city;
mod security;
mod service;
#[cfg(test)]
mod tests;

/// One broken rule of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key, e.g. `matters[3].department`.
    pub key: String,
    /// The offending value.
    pub value: String,
    /// What is wrong and what would be right.
    pub problem: String,
}

/// The problems found so far.
#[derive(Default)]
struct Findings(Vec<Problem>);

impl Findings {
    /// Records that `key = value` breaks a rule.
    fn add(&mut self, key: impl Into<String>, value: impl AsRef<str>, problem: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            value: value.as_ref().to_owned(),
            problem: problem.into(),
        });
    }
}

impl Settings {
    /// Checks every rule that the types alone cannot; reports all that are broken.
    pub fn validate(&self, source_name: &str) -> Result<(), SettingsError> {
        let mut found = Findings::default();
        self.check_service(&mut found);
        self.check_http(&mut found);
        self.check_abuse_controls(&mut found);
        self.check_auth(&mut found);
        self.check_input(&mut found);
        self.check_tree(&mut found);
        let departments = self.check_departments(&mut found);
        self.check_matters(&departments, &mut found);
        self.check_terminals(&mut found);
        self.check_calendar(&mut found);
        self.check_roles(&mut found);
        self.check_crypto(&mut found);
        found.0.extend(self.audit.problems());
        found.0.extend(self.store.problems());
        if found.0.is_empty() {
            return Ok(());
        }
        Err(SettingsError::Invalid {
            source_name: source_name.to_owned(),
            problems: found.0,
        })
    }
}

/// The codes of `departments`, sorted, for an error message.
fn known(departments: &HashMap<&str, &DepartmentSettings>) -> String {
    sorted(&departments.keys().copied().collect())
}

/// `codes` sorted and joined, for an error message.
fn sorted(codes: &HashSet<&str>) -> String {
    let mut codes: Vec<_> = codes.iter().copied().collect();
    codes.sort_unstable();
    codes.join(", ")
}
