//! `[audit]`: the audit trail of who did what through the API (see the `audit` module and the
//! README, "Audit trail").

use super::Problem;
use serde::{Deserialize, Serialize};

/// The shortest retention allowed, in days. The Cybersecurity Law (art. 21) asks network logs
/// to be kept no less than six months, and 等保 2.0 level 3 audits rely on it.
pub const MIN_AUDIT_RETENTION_DAYS: u32 = 180;

/// `[audit]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// How long the broker keeps the audit topic's records, in days (at least 180); 0 keeps
    /// them forever. Applied when the service creates the topic (`bus.kafka.create_topics`).
    pub retention_days: u32,
    /// Whether the address of a request is taken from the last entry of `X-Forwarded-For`
    /// rather than from the connection. Only for a service reached solely through one proxy
    /// that appends the client's address: anyone else can write that header.
    pub trust_forwarded_for: bool,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            retention_days: MIN_AUDIT_RETENTION_DAYS,
            trust_forwarded_for: false,
        }
    }
}

impl AuditSettings {
    /// The topic's `retention.ms`: -1 (forever) for 0 days.
    pub fn retention_ms(&self) -> i64 {
        if self.retention_days == 0 {
            -1
        } else {
            i64::from(self.retention_days) * 24 * 3600 * 1000
        }
    }

    /// The rules these settings break.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.retention_days != 0 && self.retention_days < MIN_AUDIT_RETENTION_DAYS {
            problems.push(Problem {
                key: "audit.retention_days".into(),
                value: self.retention_days.to_string(),
                problem: format!(
                    "audit records must be kept at least {MIN_AUDIT_RETENTION_DAYS} days (six \
                     months, Cybersecurity Law art. 21); use {MIN_AUDIT_RETENTION_DAYS} or more, \
                     or 0 to keep them forever"
                ),
            });
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_below_six_months_is_refused_and_zero_means_forever() {
        let short = AuditSettings {
            retention_days: 30,
            ..AuditSettings::default()
        };
        let forever = AuditSettings {
            retention_days: 0,
            ..AuditSettings::default()
        };

        assert_eq!(short.problems()[0].key, "audit.retention_days");
        assert!(AuditSettings::default().problems().is_empty());
        assert_eq!(forever.retention_ms(), -1);
        assert_eq!(AuditSettings::default().retention_ms(), 180 * 86_400_000);
    }
}
