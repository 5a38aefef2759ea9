//! The city's sections of the configuration: `[calendar]`, `[supervision]`, `[governance]`,
//! `[[departments]]`, `[[matters]]`, `[[terminals]]`.

use crate::domain::{
    CentreCode, Channel, CollaborationOutcome, Collaborator, DepartmentCode, MatterCode, Mode,
    TerminalId, Tier,
};
use chrono::{FixedOffset, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

/// `[calendar]`: the working calendar (工作日历).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSettings {
    /// The city's local time as an offset from UTC, e.g. `+08:00`.
    pub utc_offset: UtcOffset,
    /// When offices open on a working day, local time, e.g. `09:00`.
    pub office_opens: LocalTime,
    /// When they close, e.g. `17:00`; working hours are counted between the two.
    pub office_closes: LocalTime,
    /// Monday-to-Friday dates that are public holidays.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Weekend dates that are working days (调休上班).
    #[serde(default)]
    pub workdays: Vec<NaiveDate>,
}

/// An offset from UTC, written `+08:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcOffset(pub FixedOffset);

impl Serialize for UtcOffset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<FixedOffset>().map(UtcOffset).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is not a UTC offset; write it like \"+08:00\""
            ))
        })
    }
}

/// A time of day, written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime(pub NaiveTime);

impl Serialize for LocalTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.format("%H:%M"))
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        NaiveTime::parse_from_str(&text, "%H:%M")
            .map(LocalTime)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a time of day; write it like \"09:00\""
                ))
            })
    }
}

/// `[supervision]`: deadline warnings (预警), escalation (督办) and extensions (延期).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionSettings {
    /// A yellow warning is raised when this share of the time allowed is used, in percent.
    pub yellow_at_percent: u32,
    /// How often deadlines are checked, in milliseconds.
    pub check_interval_ms: u64,
    /// Working days a collaborating department has to answer an event, unless its matter or
    /// the department sets its own.
    pub collaboration_days: u32,
    /// Most working days one extension may add; a longer request is refused.
    pub max_extension_days: u32,
    /// Extensions one event may get.
    pub max_extensions: u32,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self {
            yellow_at_percent: 80,
            check_interval_ms: 60_000,
            collaboration_days: 3,
            max_extension_days: 5,
            max_extensions: 1,
        }
    }
}

/// `[governance]`: the city centre, its district centres, and the street centres of each
/// district.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceSettings {
    /// The city centre.
    pub city: CenterSettings,
    /// District centres.
    pub districts: Vec<CenterSettings>,
    /// Street centres, each naming its district.
    pub streets: Vec<StreetSettings>,
}

/// A centre: its region code and the region's Chinese name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CenterSettings {
    /// Region code, unique in the tree; also the centre's bus id (`governance/<code>`).
    pub code: CentreCode,
    /// Region name, e.g. 重庆市.
    pub name: String,
}

/// `[[governance.streets]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreetSettings {
    /// Region code.
    pub code: CentreCode,
    /// Region name, e.g. 解放碑街道.
    pub name: String,
    /// Code of the district centre the street belongs to.
    pub district: CentreCode,
}

/// `[[departments]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentSettings {
    /// Department code, unique; its bus id is `department/<code>`.
    pub code: DepartmentCode,
    /// Chinese name.
    pub name: String,
    /// The tier it sits at.
    pub tier: Tier,
    /// `auto` (rules decide) or `manual` (staff decide through the HTTP API).
    pub mode: Mode,
    /// An outside system plays this department through Kafka alone (see
    /// `docs/asyncapi.yaml`); govfusion starts no actor for it.
    #[serde(default)]
    pub external: bool,
    /// What an `auto` department answers to a collaboration event.
    #[serde(default = "default_collaboration_answer")]
    pub collaboration_answer: CollaborationOutcome,
    /// The opinion sent with that answer.
    #[serde(default = "default_collaboration_opinion")]
    pub collaboration_opinion: String,
    /// Working days this department has to answer a collaboration event, unless the matter
    /// sets its own; default `supervision.collaboration_days`.
    #[serde(default)]
    pub collaboration_days: Option<u32>,
    /// Where a governance centre re-routes an event this department returns (退单) as not its
    /// own; without one, the return goes one tier up for a centre to reassign.
    #[serde(default)]
    pub return_to: Option<DepartmentCode>,
}

fn default_collaboration_answer() -> CollaborationOutcome {
    CollaborationOutcome::Agree
}
fn default_collaboration_opinion() -> String {
    "经核查，符合要求".to_owned()
}

/// `[[matters]]`
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatterSettings {
    /// Matter code, unique.
    pub code: MatterCode,
    /// Chinese name.
    pub name: String,
    /// Responsible department code.
    pub department: DepartmentCode,
    /// Materials an application must include.
    pub required_materials: Vec<String>,
    /// Departments that must collaborate, with the tier each sits at.
    #[serde(default)]
    pub collaborators: Vec<Collaborator>,
    /// Promised handling time in working days (承诺时限).
    pub promised_days: u32,
    /// Working days each collaborating department has to answer its event; default: the
    /// department's own `collaboration_days`, else `supervision.collaboration_days`.
    #[serde(default)]
    pub collaboration_days: Option<u32>,
}

/// `[[terminals]]`
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminalSettings {
    /// Terminal id, unique; used in the submission URL.
    pub id: TerminalId,
    /// `pc`, `app` or `kiosk`.
    pub channel: Channel,
    /// Where it is (a hall, a web address, an app store name).
    pub location: String,
}
