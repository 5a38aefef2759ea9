//! The city as the systems look it up: matters, departments, centres and terminals from the
//! validated [`Settings`], indexed by code. Read-only and shared by every actor.

use crate::calendar::WorkingCalendar;
use crate::clock::{SharedClock, SystemClock};
use crate::crypto::Keyring;
use crate::domain::{
    know_code, CentreCode, DepartmentCode, Hop, MatterCode, Party, Region, SystemId, Tier,
};
use crate::settings::{
    DepartmentSettings, MatterSettings, Settings, SupervisionSettings, TerminalSettings,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A governance centre and its place in the tree.
#[derive(Debug, Clone, Serialize)]
pub struct Centre {
    /// Region code.
    pub code: CentreCode,
    /// Region name.
    pub name: String,
    /// Tier.
    pub tier: Tier,
    /// The centre one tier up (none for the city).
    pub parent: Option<CentreCode>,
    /// The centres one tier down, in config order.
    pub children: Vec<CentreCode>,
}

impl Centre {
    /// This centre as a hop of a collaboration event's route.
    pub fn hop(&self) -> Hop {
        Hop {
            code: self.code.clone(),
            name: self.name.clone(),
            tier: self.tier,
        }
    }
}

/// Why an application refers to something the city does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No matter with this code.
    #[error("unknown matter `{0}`")]
    UnknownMatter(MatterCode),
    /// No district centre with this code.
    #[error("unknown district `{0}`")]
    UnknownDistrict(CentreCode),
    /// No street centre with this code in the district.
    #[error("unknown street `{street}` in district `{district}`")]
    UnknownStreet {
        /// The district given.
        district: CentreCode,
        /// The street given.
        street: CentreCode,
    },
}

/// Indexed, validated configuration of the city.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Matters in config order.
    pub matters: Vec<MatterSettings>,
    /// Departments in config order.
    pub departments: Vec<DepartmentSettings>,
    /// Terminals in config order.
    pub terminals: Vec<TerminalSettings>,
    /// The city centre's code.
    pub city: CentreCode,
    /// The working calendar deadlines are counted on.
    pub calendar: WorkingCalendar,
    /// Warning, escalation and extension rules.
    pub supervision: SupervisionSettings,
    /// Where every system reads the time.
    pub clock: SharedClock,
    /// How long a person's act (a decision, a reassignment, a rating) waits for its messages
    /// to be on the bus before it is answered as taken but not yet sent
    /// (`service.submit_timeout_ms`, as for submissions).
    pub act_timeout: Duration,
    /// The keys that seal and open the applicant block on the bus (`[crypto]`).
    pub keyring: Keyring,
    /// How long a case may make no progress before it counts as stalled
    /// (`service.stalled_after_secs`); also how long a message waits for the case it needs.
    pub stalled_after: Duration,
    /// How long a department or centre remembers a case it closed: the flow topics' retention
    /// (`bus.flow_retention_hours`).
    pub flow_retention: chrono::Duration,
    matter_index: HashMap<MatterCode, usize>,
    department_index: HashMap<DepartmentCode, usize>,
    centres: HashMap<CentreCode, Centre>,
}

impl Catalog {
    /// Builds the catalog from settings that passed [`Settings::validate`], on the machine's
    /// clock.
    pub fn new(settings: &Settings) -> Self {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    /// Builds the catalog with the clock every system will read, and registers the city's
    /// codes and the parties of its cases' histories so that those read from the wire, and
    /// the history entries, share their text ([`know_code`]).
    pub fn with_clock(settings: &Settings, clock: SharedClock) -> Self {
        let gov = &settings.governance;
        let centre_codes: Vec<&CentreCode> = std::iter::once(&gov.city.code)
            .chain(gov.districts.iter().map(|d| &d.code))
            .chain(gov.streets.iter().map(|s| &s.code))
            .collect();
        let department_codes = || settings.departments.iter().map(|d| &d.code);
        centre_codes
            .iter()
            .map(|c| c.as_str())
            .chain(department_codes().map(|c| c.as_str()))
            .chain(settings.matters.iter().map(|m| m.code.as_str()))
            .chain(settings.terminals.iter().map(|t| t.id.as_str()))
            .for_each(know_code);
        // The parties of a case's history: every system's bus id and every terminal's.
        let centres = centre_codes
            .iter()
            .map(|&c| SystemId::Governance(c.clone()));
        let departments = department_codes().map(|c| SystemId::Department(c.clone()));
        [SystemId::Intake, SystemId::Supervision]
            .into_iter()
            .chain(centres)
            .chain(departments)
            .map(|system| Party::from(&system))
            .chain(
                settings
                    .terminals
                    .iter()
                    .map(|t| Party::terminal(t.id.as_str())),
            )
            .for_each(|party| know_code(party.as_str()));
        let mut centres = HashMap::new();
        centres.insert(
            gov.city.code.clone(),
            Centre {
                code: gov.city.code.clone(),
                name: gov.city.name.clone(),
                tier: Tier::City,
                parent: None,
                children: gov.districts.iter().map(|d| d.code.clone()).collect(),
            },
        );
        for district in &gov.districts {
            centres.insert(
                district.code.clone(),
                Centre {
                    code: district.code.clone(),
                    name: district.name.clone(),
                    tier: Tier::District,
                    parent: Some(gov.city.code.clone()),
                    children: gov
                        .streets
                        .iter()
                        .filter(|s| s.district == district.code)
                        .map(|s| s.code.clone())
                        .collect(),
                },
            );
        }
        for street in &gov.streets {
            centres.insert(
                street.code.clone(),
                Centre {
                    code: street.code.clone(),
                    name: street.name.clone(),
                    tier: Tier::Street,
                    parent: Some(street.district.clone()),
                    children: Vec::new(),
                },
            );
        }
        Self {
            matter_index: index(&settings.matters, |m| &m.code),
            department_index: index(&settings.departments, |d| &d.code),
            matters: settings.matters.clone(),
            departments: settings.departments.clone(),
            terminals: settings.terminals.clone(),
            city: gov.city.code.clone(),
            calendar: WorkingCalendar::new(&settings.calendar),
            supervision: settings.supervision.clone(),
            clock,
            act_timeout: Duration::from_millis(settings.service.submit_timeout_ms),
            stalled_after: Duration::from_secs(settings.service.stalled_after_secs),
            flow_retention: settings.bus.flow_retention(),
            // Validation built this same keyring from the same settings and refused them if it
            // failed; only a key file or variable that changed in the instant since can fail
            // here, and then nothing can be sealed: start-up must stop, saying which key.
            keyring: Keyring::from_settings(&settings.crypto)
                .unwrap_or_else(|error| panic!("{error}")),
            centres,
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Working days `department` has to answer an event of `matter`: the matter's value, else
    /// the department's, else the default.
    pub fn collaboration_days(&self, matter: &MatterCode, department: &DepartmentCode) -> u32 {
        self.matter(matter)
            .ok()
            .and_then(|m| m.collaboration_days)
            .or_else(|| {
                self.department(department)
                    .and_then(|d| d.collaboration_days)
            })
            .unwrap_or(self.supervision.collaboration_days)
    }

    /// The matter with `code`.
    pub fn matter(&self, code: &MatterCode) -> Result<&MatterSettings, LookupError> {
        self.matter_index
            .get(code)
            .map(|&i| &self.matters[i])
            .ok_or_else(|| LookupError::UnknownMatter(code.clone()))
    }

    /// The department with `code`.
    pub fn department(&self, code: &DepartmentCode) -> Option<&DepartmentSettings> {
        self.department_index
            .get(code)
            .map(|&i| &self.departments[i])
    }

    /// The centre with `code`.
    pub fn centre(&self, code: &CentreCode) -> Option<&Centre> {
        self.centres.get(code)
    }

    /// Whether `centre` is `ancestor` or lies below it in the tree.
    pub fn within(&self, centre: &CentreCode, ancestor: &CentreCode) -> bool {
        let mut at = Some(centre);
        while let Some(code) = at {
            if code == ancestor {
                return true;
            }
            at = self.centres.get(code).and_then(|c| c.parent.as_ref());
        }
        false
    }

    /// Every centre, city first, then each district followed by its streets.
    pub fn centres_in_order(&self) -> Vec<&Centre> {
        let mut out = Vec::new();
        let mut stack = vec![&self.city];
        while let Some(code) = stack.pop() {
            if let Some(centre) = self.centres.get(code) {
                out.push(centre);
                stack.extend(centre.children.iter().rev());
            }
        }
        out
    }

    /// Checks that the district exists and the street belongs to it.
    pub fn check_region(&self, region: &Region) -> Result<(), LookupError> {
        match self.centres.get(&region.district) {
            Some(c) if c.tier == Tier::District => {}
            _ => return Err(LookupError::UnknownDistrict(region.district.clone())),
        }
        match self.centres.get(&region.street) {
            Some(c) if c.tier == Tier::Street && c.parent.as_ref() == Some(&region.district) => {
                Ok(())
            }
            _ => Err(LookupError::UnknownStreet {
                district: region.district.clone(),
                street: region.street.clone(),
            }),
        }
    }

    /// A department's name, or its code when unknown.
    pub fn department_name<'a>(&'a self, code: &'a DepartmentCode) -> &'a str {
        self.department(code)
            .map(|d| d.name.as_str())
            .unwrap_or(code.as_str())
    }
}

fn index<T, K: Clone + Eq + std::hash::Hash>(
    items: &[T],
    key: impl Fn(&T) -> &K,
) -> HashMap<K, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| (key(item).clone(), i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::DEFAULT_CONFIG;

    #[test]
    fn the_parties_of_a_citys_histories_share_their_text() {
        let settings = Settings::from_toml(DEFAULT_CONFIG, "default", false).unwrap();
        let _catalog = Catalog::new(&settings);
        let shared = |a: &Party, b: &Party| a.as_str().as_ptr() == b.as_str().as_ptr();

        let department = SystemId::Department(settings.departments[0].code.clone());
        let made = Party::from(&department);
        let read: Party =
            serde_json::from_value(serde_json::json!(department.to_string())).unwrap();
        assert!(shared(&made, &read), "{made} is not shared");
        let street = SystemId::Governance(settings.governance.streets[0].code.clone());
        assert!(shared(&Party::from(&street), &Party::from(&street)));
        assert!(shared(
            &Party::from(&SystemId::Intake),
            &Party::shared("intake")
        ));
        let terminal = settings.terminals[0].id.as_str();
        assert!(shared(
            &Party::terminal(terminal),
            &Party::terminal(terminal)
        ));
        assert_eq!(
            Party::terminal(terminal),
            format!("terminal/{terminal}").as_str()
        );
    }
}
