//! The rules of a configuration that its types alone cannot hold: unique codes, references
//! that resolve, a tree that hangs together, values in range.
//!
//! Every rule is checked and every broken one reported, so that an operator fixes a file in one
//! pass rather than one mistake per start.

use super::{BusKind, DepartmentSettings, Role, Settings, SettingsError};
use std::collections::{HashMap, HashSet};

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

    /// The bus, the bridge and the service's own limits.
    fn check_service(&self, found: &mut Findings) {
        if self.bus.partitions == 0 {
            found.add(
                "bus.partitions",
                "0",
                "a topic needs at least one partition",
            );
        }
        if self.bus.kind == BusKind::Kafka && self.bus.brokers.trim().is_empty() {
            found.add(
                "bus.brokers",
                "",
                "bus kind `kafka` needs the cluster's bootstrap servers, e.g. \"h1:9092,h2:9092\" \
                 (or GOVFUSION__BUS__BROKERS)",
            );
        }
        if self.service.stalled_after_secs == 0 {
            found.add(
                "service.stalled_after_secs",
                "0",
                "must be at least 1: every open case would be listed as stalled at once",
            );
        }
        let max_record = self.bus.max_record_bytes;
        if !(super::MIN_RECORD_BYTES..=1_000_000_000).contains(&max_record) {
            found.add(
                "bus.max_record_bytes",
                max_record.to_string(),
                format!(
                    "must be between {} and 1000000000 (librdkafka's range for \
                     message.max.bytes), at or below the broker's record limit",
                    super::MIN_RECORD_BYTES
                ),
            );
        }
        self.check_producer_limit(found);
        if let Err(problem) = self.bus.kafka.sasl_password() {
            found.add(problem.key, problem.value, problem.problem);
        }
        if self.bridge.batch_max_records == 0 {
            found.add(
                "bridge.batch_max_records",
                "0",
                "a batch must hold at least one record",
            );
        }
    }

    /// A `message.max.bytes` in `bus.kafka.options` overrides the one set from
    /// `bus.max_record_bytes`: below it, the producer refuses records that the 413 check lets
    /// through, and every case they carry fails.
    fn check_producer_limit(&self, found: &mut Findings) {
        const KEY: &str = "bus.kafka.options.\"message.max.bytes\"";
        let Some(option) = self.bus.kafka.options.get("message.max.bytes") else {
            return;
        };
        let max_record = self.bus.max_record_bytes;
        match option.trim().parse::<u64>() {
            Ok(bytes) if bytes >= max_record => {}
            Ok(_) => found.add(
                KEY,
                option,
                format!(
                    "is below bus.max_record_bytes ({max_record}): the producer would refuse \
                     records the service takes. Remove it (the producer's message.max.bytes is \
                     set from bus.max_record_bytes) or lower bus.max_record_bytes to it"
                ),
            ),
            Err(_) => found.add(
                KEY,
                option,
                "must be a whole number of bytes (or be removed: the producer's \
                 message.max.bytes is set from bus.max_record_bytes)",
            ),
        }
    }

    /// Exactly one source of token keys, and what a token must say.
    fn check_auth(&self, found: &mut Findings) {
        let auth = &self.auth;
        if auth.key_source().is_none() {
            let given: Vec<&str> = [
                (!auth.jwks_url.trim().is_empty()).then_some("jwks_url"),
                (!auth.jwks_file.trim().is_empty()).then_some("jwks_file"),
                auth.development_keys.then_some("development_keys"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let problem = if given.is_empty() {
                "nothing verifies the API's bearer tokens: set auth.jwks_url (your identity \
                 provider's JWKS endpoint) or auth.jwks_file; or, for development only, \
                 auth.development_keys = true, with which this service signs tokens with a key \
                 it keeps on disk and anyone who can read that file can act as anyone"
            } else {
                "choose one source of token keys: auth.jwks_url, auth.jwks_file or \
                 auth.development_keys"
            };
            found.add("auth", given.join(", "), problem);
        }
        if auth.issuer.trim().is_empty() {
            found.add(
                "auth.issuer",
                "",
                "give the `iss` tokens must carry: the identity provider's issuer URL",
            );
        }
        if auth.audience.trim().is_empty() {
            found.add(
                "auth.audience",
                "",
                "give the `aud` tokens must carry: this service's client id at the provider",
            );
        }
        let url = auth.jwks_url.trim();
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            found.add("auth.jwks_url", url, "must be an http(s) URL");
        }
    }

    /// The HTTP listener's limits: a zero would refuse every client or keep no answer.
    fn check_http(&self, found: &mut Findings) {
        let http = &self.http;
        let must_be_positive = [
            (
                "http.head_timeout_ms",
                http.head_timeout_ms,
                "a client needs time to send a request's head",
            ),
            (
                "http.body_timeout_ms",
                http.body_timeout_ms,
                "a client needs time to send a request's body",
            ),
            (
                "http.idempotency_ttl_secs",
                http.idempotency_ttl_secs,
                "a stored answer must be kept for at least a second to answer a retry",
            ),
            (
                "http.idempotency_max_entries",
                http.idempotency_max_entries as u64,
                "the store must hold at least one key",
            ),
        ];
        for (key, value, why) in must_be_positive {
            if value == 0 {
                found.add(key, "0", format!("must be at least 1: {why}"));
            }
        }
        self.check_body_limit(found);
    }

    /// The rate limit and the CORS allow-list: a rate or budget of 0 refuses everyone; an origin
    /// that is not `scheme://host[:port]` never matches a browser's `Origin` (and the CORS
    /// middleware refuses to start with one that is not a URI at all).
    fn check_abuse_controls(&self, found: &mut Findings) {
        let limit = &self.http.rate_limit;
        if limit.enabled && !(limit.per_second.is_finite() && limit.per_second > 0.0) {
            found.add(
                "http.rate_limit.per_second",
                limit.per_second.to_string(),
                "must be more than 0 (0.5 is one request every two seconds), or set \
                 http.rate_limit.enabled = false",
            );
        }
        if limit.enabled && limit.burst == 0 {
            found.add(
                "http.rate_limit.burst",
                "0",
                "must be at least 1: a budget of 0 refuses every request",
            );
        }
        for (i, origin) in self.http.cors_allowed_origins.iter().enumerate() {
            if let Err(problem) = check_origin(origin) {
                found.add(format!("http.cors_allowed_origins[{i}]"), origin, problem);
            }
        }
    }

    /// A body the API takes must fit in a record on the bus, or its case could be answered
    /// 202 and then fail when the bus refuses its record.
    fn check_body_limit(&self, found: &mut Findings) {
        let body = self.http.max_body_bytes as u64;
        let carried = self.bus.max_carried_body_bytes();
        if body == 0 {
            found.add(
                "http.max_body_bytes",
                "0",
                format!("must be at least 1 (and at most {carried}): every POST has a body"),
            );
        } else if body > carried {
            found.add(
                "http.max_body_bytes",
                body.to_string(),
                format!(
                    "is more than one record on the bus can carry: bus.max_record_bytes ({}) \
                     less {} bytes for the envelope is {carried}. Lower it to {carried} or \
                     less, or raise bus.max_record_bytes (at or below the broker's limit)",
                    self.bus.max_record_bytes,
                    super::ENVELOPE_OVERHEAD_BYTES
                ),
            );
        }
    }

    /// The input limits: a zero would refuse every request that has the field.
    fn check_input(&self, found: &mut Findings) {
        for (key, value) in self.input.limits() {
            if value == 0 {
                found.add(
                    key,
                    "0",
                    "must be at least 1: a limit of 0 refuses every request with the field",
                );
            }
        }
    }

    /// Centres: unique codes across the whole tree; every street in a known district; every
    /// district with a street.
    fn check_tree(&self, found: &mut Findings) {
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
    fn check_departments(&self, found: &mut Findings) -> HashMap<&str, &DepartmentSettings> {
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
    fn check_matters(
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
    fn check_terminals(&self, found: &mut Findings) {
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
    fn check_calendar(&self, found: &mut Findings) {
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

    /// The keys: each readable and 32 bytes long, ids unique, the current one among them.
    fn check_crypto(&self, found: &mut Findings) {
        let crypto = &self.crypto;
        let mut ids = HashSet::new();
        for (i, key) in crypto.keys.iter().enumerate() {
            if key.id.trim().is_empty() {
                found.add(
                    format!("crypto.keys[{i}].id"),
                    &key.id,
                    "a key needs an id: it is written beside every record it seals",
                );
            } else if !ids.insert(key.id.as_str()) {
                found.add(
                    format!("crypto.keys[{i}].id"),
                    &key.id,
                    "duplicate key id: a record names its key by id",
                );
            }
            if let Err(problem) = key.material() {
                found.add(
                    format!("crypto.keys[{i}].{}", problem.field),
                    problem.value,
                    problem.problem,
                );
            }
        }
        if !ids.contains(crypto.current.as_str()) {
            let known = crypto
                .keys
                .iter()
                .map(|k| format!("`{}`", k.id))
                .collect::<Vec<_>>()
                .join(", ");
            found.add(
                "crypto.current",
                &crypto.current,
                format!(
                    "no key in [[crypto.keys]] has this id (known: {known}): new records could \
                     not be sealed"
                ),
            );
        }
    }

    /// Roles that name what config does not have, or need what is not configured.
    fn check_roles(&self, found: &mut Findings) {
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
        if resolved.governance
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
}

/// Whether `origin` is what a browser sends as `Origin`: `http(s)://host[:port]`, nothing
/// more. Compared as text, so `https://a.gov.cn/` (a trailing slash) would never match.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    const SHAPE: &str = "an origin is `https://host` or `https://host:port`: a scheme, a host, \
                         an optional port, in lower case, no path (not even `/`), no `*`";
    let uri: actix_web::http::Uri = origin.parse().map_err(|_| SHAPE)?;
    // Browsers send the scheme and host in lower case, and origins are compared as text.
    let lower_case = origin == origin.to_ascii_lowercase();
    let scheme_ok = lower_case && matches!(uri.scheme_str(), Some("http" | "https"));
    let host_ok = uri.host().is_some_and(|h| !h.is_empty() && h != "*");
    let bare = uri.authority().is_some_and(|a| !a.as_str().contains('@'))
        && uri.query().is_none()
        && origin
            == format!(
                "{}://{}",
                uri.scheme_str().unwrap_or(""),
                uri.authority().map_or("", |a| a.as_str())
            );
    if scheme_ok && host_ok && bare {
        Ok(())
    } else {
        Err(SHAPE)
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

#[cfg(test)]
mod tests {
    use crate::settings::{Settings, SettingsError, DEFAULT_CONFIG};

    /// The default configuration with a `message.max.bytes` of `bytes` under
    /// `[bus.kafka.options]`.
    fn with_producer_limit(bytes: &str) -> Result<Settings, SettingsError> {
        // The table's header at the start of a line, not a comment naming it.
        let table = "\n[bus.kafka.options]";
        assert!(
            DEFAULT_CONFIG.contains(table),
            "the default config has {table}"
        );
        let text = DEFAULT_CONFIG.replacen(
            table,
            &format!("{table}\n\"message.max.bytes\" = \"{bytes}\""),
            1,
        );
        Settings::from_toml(&text, "test.toml", false)
    }

    #[test]
    fn a_producer_limit_below_the_record_limit_is_refused_naming_both_keys() {
        // Act
        let error = with_producer_limit("500000").expect_err("below bus.max_record_bytes");

        // Assert
        let error = error.to_string();
        assert!(
            error.contains("bus.kafka.options.\"message.max.bytes\""),
            "{error}"
        );
        assert!(error.contains("500000"), "{error}");
        assert!(error.contains("bus.max_record_bytes (1000000)"), "{error}");
    }

    #[test]
    fn a_producer_limit_at_or_above_the_record_limit_is_taken() {
        for bytes in ["1000000", "2000000"] {
            let settings = with_producer_limit(bytes).expect("not below the record limit");
            assert_eq!(settings.bus.kafka.options["message.max.bytes"], bytes);
        }
    }

    #[test]
    fn a_producer_limit_that_is_not_a_number_is_refused() {
        let error = with_producer_limit("1MB").expect_err("not a number");
        assert!(
            error.to_string().contains("whole number of bytes"),
            "{error}"
        );
    }

    /// The default configuration with `from` replaced by `to` (once).
    fn default_with(from: &str, to: &str) -> Result<Settings, SettingsError> {
        assert!(
            DEFAULT_CONFIG.contains(from),
            "`{from}` not in the default config"
        );
        Settings::from_toml(&DEFAULT_CONFIG.replacen(from, to, 1), "test.toml", false)
    }

    #[test]
    fn a_rate_limit_of_nothing_is_refused_with_both_keys_unless_it_is_off() {
        let zero = DEFAULT_CONFIG
            .replacen("per_second = 100.0", "per_second = 0.0", 1)
            .replacen("burst = 1000", "burst = 0", 1);
        let off = zero.replacen("enabled = true", "enabled = false", 1);

        let error = Settings::from_toml(&zero, "test.toml", false)
            .expect_err("a rate of 0")
            .to_string();
        let off = Settings::from_toml(&off, "test.toml", false);

        assert_eq!(error.lines().count(), 2, "{error}");
        assert!(
            error.contains("http.rate_limit.per_second = \"0\""),
            "{error}"
        );
        assert!(error.contains("http.rate_limit.burst = \"0\""), "{error}");
        assert!(off.is_ok(), "limits off need no rate: {off:?}");
    }

    #[test]
    fn cors_origins_must_be_what_a_browser_sends() {
        let listed = r#"cors_allowed_origins = ["https://zwfw.city.gov.cn", "http://localhost:3000", "https://a.gov.cn/", "*", "zwfw.city.gov.cn", "https://Portal.gov.cn"]"#;
        let error = default_with("cors_allowed_origins = []", listed)
            .expect_err("four are not origins")
            .to_string();

        assert_eq!(error.lines().count(), 4, "{error}");
        for (i, origin) in [
            (2, "https://a.gov.cn/"),
            (3, "*"),
            (4, "zwfw.city.gov.cn"),
            (5, "https://Portal.gov.cn"),
        ] {
            let key = format!("http.cors_allowed_origins[{i}] = \"{origin}\"");
            assert!(error.contains(&key), "no `{key}` in {error}");
        }
    }

    #[test]
    fn a_sasl_password_from_two_sources_is_reported_with_the_other_mistakes() {
        let text = DEFAULT_CONFIG
            .replacen(
                "\n[bus.kafka.options]",
                "\nsasl_password_env = \"GOVFUSION_TEST_SASL_A\"\n\
                 \n[bus.kafka.options]\n\"sasl.password\" = \"inline-secret\"",
                1,
            )
            .replacen("partitions = 6", "partitions = 0", 1);

        let error = Settings::from_toml(&text, "test.toml", false)
            .expect_err("two sources of the password")
            .to_string();

        assert_eq!(error.lines().count(), 2, "{error}");
        assert!(error.contains("bus.partitions"), "{error}");
        assert!(error.contains("bus.kafka = "), "{error}");
        assert!(error.contains("at most one"), "{error}");
        assert!(
            !error.contains("inline-secret"),
            "the password is shown: {error}"
        );
    }

    #[test]
    fn a_sasl_password_file_that_cannot_be_read_is_named() {
        let error = default_with(
            "\n[bus.kafka.options]",
            "\nsasl_password_file = \"/nonexistent/govfusion-kafka-password\"\n\n[bus.kafka.options]",
        )
        .expect_err("no such file")
        .to_string();

        assert!(
            error.contains(
                "bus.kafka.sasl_password_file = \"/nonexistent/govfusion-kafka-password\""
            ),
            "{error}"
        );
        assert!(error.contains("cannot read the file"), "{error}");
    }
}
