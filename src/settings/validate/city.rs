//! The city's rules: a tree that hangs together, unique codes, references that resolve, a
//! calendar that makes sense, roles the city has.

use super::{known, sorted, Findings};
use crate::settings::{BusKind, DepartmentSettings, Role, Settings};
use std::collections::{HashMap, HashSet};

impl Settings {
    /// Centres: unique codes across the whole tree; every street in a known district; every
    /// district with a street.
    pub(super) fn check_tree(&self, found: &mut Findings) {
        const DUPLICATE: &str =
            "duplicate centre code; every centre in the tree needs its own code";
        let governance = &self.governance;
        let mut centre_codes = HashSet::from([&governance.city.code]);
        if governance.districts.is_empty() {
            found.add(
                "governance.districts",
                "[]",
                "the city needs at least one district centre",
            );
        }
        for (d, district) in governance.districts.iter().enumerate() {
            if !centre_codes.insert(&district.code) {
                found.add(
                    format!("governance.districts[{d}].code"),
                    &district.code,
                    DUPLICATE,
                );
            }
        }
        let districts: HashSet<&str> = governance
            .districts
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        for (s, street) in governance.streets.iter().enumerate() {
            if !centre_codes.insert(&street.code) {
                found.add(
                    format!("governance.streets[{s}].code"),
                    &street.code,
                    DUPLICATE,
                );
            }
            if !districts.contains(street.district.as_str()) {
                found.add(
                    format!("governance.streets[{s}].district"),
                    &street.district,
                    format!(
                        "no district centre has this code (known: {})",
                        sorted(&districts)
                    ),
                );
            }
        }
        for (d, district) in governance.districts.iter().enumerate() {
            if !governance
                .streets
                .iter()
                .any(|s| s.district == district.code)
            {
                found.add(
                    format!("governance.districts[{d}].code"),
                    &district.code,
                    "the district has no street centre; add one under [[governance.streets]]",
                );
            }
        }
    }

    /// Departments: valid, unique codes; a `return_to` that names another department. Returns
    /// them by code.
    pub(super) fn check_departments(
        &self,
        found: &mut Findings,
    ) -> HashMap<&str, &DepartmentSettings> {
        let mut departments = HashMap::new();
        for (i, dept) in self.departments.iter().enumerate() {
            if dept.code.as_str().is_empty() || dept.code.as_str().contains('/') {
                found.add(
                    format!("departments[{i}].code"),
                    &dept.code,
                    "a department code must be non-empty and contain no `/`",
                );
            }
            if departments.insert(dept.code.as_str(), dept).is_some() {
                found.add(
                    format!("departments[{i}].code"),
                    &dept.code,
                    "duplicate department code",
                );
            }
        }
        for (i, dept) in self.departments.iter().enumerate() {
            let Some(alternative) = &dept.return_to else {
                continue;
            };
            if alternative == &dept.code || !departments.contains_key(alternative.as_str()) {
                found.add(
                    format!("departments[{i}].return_to"),
                    alternative,
                    format!(
                        "must name another department (known: {})",
                        known(&departments)
                    ),
                );
            }
        }
        departments
    }

    /// Matters: unique codes; a known department; collaborators that exist at the tier they
    /// are asked at, other than the matter's own department, each once.
    pub(super) fn check_matters(
        &self,
        departments: &HashMap<&str, &DepartmentSettings>,
        found: &mut Findings,
    ) {
        let unknown = || {
            format!(
                "no department has this code (known: {})",
                known(departments)
            )
        };
        let mut matters = HashSet::new();
        for (i, matter) in self.matters.iter().enumerate() {
            if !matters.insert(&matter.code) {
                found.add(
                    format!("matters[{i}].code"),
                    &matter.code,
                    "duplicate matter code",
                );
            }
            if !departments.contains_key(matter.department.as_str()) {
                found.add(
                    format!("matters[{i}].department"),
                    &matter.department,
                    unknown(),
                );
            }
            let mut seen = HashSet::new();
            for (c, collaborator) in matter.collaborators.iter().enumerate() {
                let key = format!("matters[{i}].collaborators[{c}]");
                let code = &collaborator.department;
                match departments.get(code.as_str()) {
                    None => found.add(format!("{key}.department"), code, unknown()),
                    Some(dept) if dept.tier != collaborator.tier => found.add(
                        format!("{key}.tier"),
                        collaborator.tier.to_string(),
                        format!(
                            "department {} sits at the {} tier; the collaborator's tier must match",
                            dept.code, dept.tier
                        ),
                    ),
                    Some(_) => {}
                }
                if *code == matter.department {
                    found.add(
                        format!("{key}.department"),
                        code,
                        "a department cannot collaborate on its own matter",
                    );
                }
                if !seen.insert(code) {
                    found.add(
                        format!("{key}.department"),
                        code,
                        "listed twice as a collaborator of this matter",
                    );
                }
            }
        }
    }

    /// Terminals: unique ids.
    pub(super) fn check_terminals(&self, found: &mut Findings) {
        let mut terminals = HashSet::new();
        for (i, terminal) in self.terminals.iter().enumerate() {
            if !terminals.insert(&terminal.id) {
                found.add(
                    format!("terminals[{i}].id"),
                    &terminal.id,
                    "duplicate terminal id",
                );
            }
        }
    }

    /// The calendar and supervision rules: office hours that make sense, a yellow share below
    /// 100 %, and no date listed both as a holiday and as a make-up working day.
    pub(super) fn check_calendar(&self, found: &mut Findings) {
        let calendar = &self.calendar;
        if calendar.office_closes <= calendar.office_opens {
            found.add(
                "calendar.office_closes",
                calendar.office_closes.0.format("%H:%M").to_string(),
                "offices must close after they open",
            );
        }
        for day in calendar
            .holidays
            .iter()
            .filter(|day| calendar.workdays.contains(day))
        {
            found.add(
                "calendar.workdays",
                day.to_string(),
                "the date is also listed as a holiday; keep it in one list",
            );
        }
        let supervision = &self.supervision;
        if !(1..=99).contains(&supervision.yellow_at_percent) {
            found.add(
                "supervision.yellow_at_percent",
                supervision.yellow_at_percent.to_string(),
                "must be between 1 and 99",
            );
        }
        if supervision.check_interval_ms == 0 {
            found.add(
                "supervision.check_interval_ms",
                "0",
                "deadlines need a check interval of at least 1 ms",
            );
        }
    }

    /// Roles that name what config does not have, or need what is not configured.
    pub(super) fn check_roles(&self, found: &mut Findings) {
        let roles = &self.service.roles;
        let listed = roles
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        if roles.is_empty() {
            found.add(
                "service.roles",
                "",
                "name at least one role: all, intake, governance or department:<code>",
            );
        }
        for role in roles {
            let Role::Department(code) = role else {
                continue;
            };
            match self.departments.iter().find(|d| &d.code == code) {
                None => found.add(
                    "service.roles",
                    &listed,
                    format!("no department `{code}` in [[departments]]"),
                ),
                Some(d) if d.external => found.add(
                    "service.roles",
                    &listed,
                    format!("department `{code}` is external: an outside system plays it"),
                ),
                Some(_) => {}
            }
        }
        let resolved = self.roles();
        let url = self.service.intake_feed_url.trim();
        if self.service.intake_instances > 1 {
            self.check_intake_instances(found);
        } else if resolved.governance
            && !resolved.intake
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            found.add(
                "service.intake_feed_url",
                url,
                "a process that runs `governance` without `intake` reads new applications from \
                 the intake system's HTTP feed: give its base URL, e.g. http://intake-host:8080 \
                 (or GOVFUSION__SERVICE__INTAKE_FEED_URL)",
            );
        }
    }

    /// Several intake processes: each knows its place, they share a Kafka cluster and a
    /// PostgreSQL repository, and the city centre's process knows every feed.
    fn check_intake_instances(&self, found: &mut Findings) {
        let service = &self.service;
        let instances = service.intake_instances;
        if service.intake_instance >= instances {
            found.add(
                "service.intake_instance",
                service.intake_instance.to_string(),
                format!(
                    "must be below service.intake_instances ({instances}): instances count from 0"
                ),
            );
        }
        if instances > self.bus.partitions {
            found.add(
                "service.intake_instances",
                instances.to_string(),
                format!(
                    "at most bus.partitions ({}): each intake process takes a share of the partitions",
                    self.bus.partitions
                ),
            );
        }
        if self.bus.kind != BusKind::Kafka {
            found.add(
                "service.intake_instances",
                instances.to_string(),
                "several intake processes need a bus they share: bus kind `kafka`",
            );
        }
        if self.roles().intake && self.store.is_sqlite() {
            found.add(
                "service.intake_instances",
                instances.to_string(),
                "several intake processes share one case repository: set store.url to a \
                 PostgreSQL database (postgres://…)",
            );
        }
        if !self.roles().governance {
            return;
        }
        let urls = &service.intake_feed_urls;
        if urls.len() != instances as usize {
            found.add(
                "service.intake_feed_urls",
                urls.join(", "),
                format!(
                    "the city centre reads the feed of each of the {instances} intake processes: \
                     give their base URLs, instance 0 first"
                ),
            );
        }
        for (i, url) in urls.iter().enumerate() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                found.add(
                    format!("service.intake_feed_urls[{i}]"),
                    url,
                    "must be an http(s) URL, e.g. http://intake-0:8080",
                );
            }
        }
    }
}
