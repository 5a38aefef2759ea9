//! The envelope every bus record carries (DESIGN.md, "Wire contract").
//!
//! The `data` field is kept as raw JSON until a handler asks for it by type, so that routing a
//! record (by `type` and `target`) never pays for decoding a payload it does not need.

use super::{CaseId, CentreCode, DepartmentCode, MessageId};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;
use std::str::FromStr;

/// The envelope schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Why a record could not be turned into (or out of) an envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The bytes are not an envelope: bad JSON, a missing field, an unknown type. What serde
    /// found wrong, without the values it quotes: the reason goes to logs and dead-letter
    /// headers, and a value may be someone's ID number.
    #[error("record is not a valid govfusion envelope: {0}")]
    Malformed(String),
    /// The envelope is fine but its `data` does not match its `type`.
    #[error("`data` of a `{kind}` message is invalid: {reason}")]
    BadData {
        /// The envelope's type.
        kind: MessageType,
        /// What serde found wrong, without the values it quotes (as for `Malformed`).
        reason: String,
    },
    /// A schema version this build does not understand.
    #[error("unsupported envelope schema {0} (this build reads schema {SCHEMA_VERSION})")]
    UnsupportedSchema(u32),
}

/// Every kind of message on the bus. The serialized name is the envelope's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum MessageType {
    /// A governance centre published a new application to its responsible department.
    #[serde(rename = "application.published")]
    ApplicationPublished,
    /// The department accepted the case and issued a receipt.
    #[serde(rename = "application.accepted")]
    ApplicationAccepted,
    /// The department asks for other departments' collaboration.
    #[serde(rename = "collaboration.requested")]
    CollaborationRequested,
    /// A centre routes one collaboration event one tier down (or to the collaborating department).
    #[serde(rename = "collaboration.dispatched")]
    CollaborationDispatched,
    /// A collaborating department answered, or a centre passes an answer one tier up.
    #[serde(rename = "collaboration.answered")]
    CollaborationAnswered,
    /// The city centre hands every answer back to the requesting department.
    #[serde(rename = "collaboration.completed")]
    CollaborationCompleted,
    /// The department published its approval (process steps and outcome).
    #[serde(rename = "approval.published")]
    ApprovalPublished,
    /// The city centre handed the approval to the intake system: the case is complete.
    #[serde(rename = "approval.delivered")]
    ApprovalDelivered,
    /// The department asks the applicant for supplementary materials; the clock stops.
    #[serde(rename = "case.suspended")]
    CaseSuspended,
    /// The applicant supplied them through a terminal.
    #[serde(rename = "case.supplemented")]
    CaseSupplemented,
    /// The department resumed the case; the due date moved by the days suspended.
    #[serde(rename = "case.resumed")]
    CaseResumed,
    /// The applicant rated the completed case.
    #[serde(rename = "case.rated")]
    CaseRated,
    /// The collaborating department signed for an event (签收).
    #[serde(rename = "collaboration.signed")]
    CollaborationSigned,
    /// The collaborating department returned an event as not its own (退单), or a centre
    /// passes a return one tier up for reassignment.
    #[serde(rename = "collaboration.returned")]
    CollaborationReturned,
    /// The collaborating department asks for more time (延期申请).
    #[serde(rename = "collaboration.extension_requested")]
    CollaborationExtensionRequested,
    /// The dispatching centre approved or refused an extension.
    #[serde(rename = "collaboration.extension_decided")]
    CollaborationExtensionDecided,
    /// An event unanswered at its deadline, reported one tier up (督办).
    #[serde(rename = "collaboration.escalated")]
    CollaborationEscalated,
    /// A case or an event is nearly due (yellow) or overdue (red).
    #[serde(rename = "supervision.warning")]
    SupervisionWarning,
    /// What a system remembers about a case, written so that it survives a restart
    /// (internal: source and target are the system itself).
    #[serde(rename = "state.snapshot")]
    StateSnapshot,
}

impl MessageType {
    /// The wire name, as in the envelope's `type` field and the `type` header.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::ApplicationPublished => "application.published",
            MessageType::ApplicationAccepted => "application.accepted",
            MessageType::CollaborationRequested => "collaboration.requested",
            MessageType::CollaborationDispatched => "collaboration.dispatched",
            MessageType::CollaborationAnswered => "collaboration.answered",
            MessageType::CollaborationCompleted => "collaboration.completed",
            MessageType::ApprovalPublished => "approval.published",
            MessageType::ApprovalDelivered => "approval.delivered",
            MessageType::CaseSuspended => "case.suspended",
            MessageType::CaseSupplemented => "case.supplemented",
            MessageType::CaseResumed => "case.resumed",
            MessageType::CaseRated => "case.rated",
            MessageType::CollaborationSigned => "collaboration.signed",
            MessageType::CollaborationReturned => "collaboration.returned",
            MessageType::CollaborationExtensionRequested => "collaboration.extension_requested",
            MessageType::CollaborationExtensionDecided => "collaboration.extension_decided",
            MessageType::CollaborationEscalated => "collaboration.escalated",
            MessageType::SupervisionWarning => "supervision.warning",
            MessageType::StateSnapshot => "state.snapshot",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A system on the bus: the `source` and `target` of an envelope.
///
/// On the wire: `intake`, `governance/<centre code>`, `department/<department code>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SystemId {
    /// The intake system (收件系统).
    Intake,
    /// A governance centre, by its code.
    Governance(CentreCode),
    /// A department approval system, by its code.
    Department(DepartmentCode),
    /// The supervision system (监督): watches deadlines, warns and escalates.
    Supervision,
}

impl fmt::Display for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SystemId::Intake => f.write_str("intake"),
            SystemId::Governance(code) => {
                f.write_str("governance/")?;
                f.write_str(code.as_str())
            }
            SystemId::Department(code) => {
                f.write_str("department/")?;
                f.write_str(code.as_str())
            }
            SystemId::Supervision => f.write_str("supervision"),
        }
    }
}

impl From<&SystemId> for super::Party {
    /// The system's bus id, shared with the configured system's ([`super::Party::shared`]).
    fn from(system: &SystemId) -> Self {
        thread_local! {
            /// The bus id being looked up, written into a buffer kept for the next.
            static NAME: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let (prefix, code) = match system {
            SystemId::Intake => return Self::shared("intake"),
            SystemId::Supervision => return Self::shared("supervision"),
            SystemId::Governance(code) => ("governance/", code.as_str()),
            SystemId::Department(code) => ("department/", code.as_str()),
        };
        NAME.with_borrow_mut(|name| {
            name.clear();
            name.push_str(prefix);
            name.push_str(code);
            Self::shared(name)
        })
    }
}

impl FromStr for SystemId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            None if s == "intake" => Ok(SystemId::Intake),
            None if s == "supervision" => Ok(SystemId::Supervision),
            Some(("governance", code)) if !code.is_empty() => {
                Ok(SystemId::Governance(CentreCode::from_string(code)))
            }
            Some(("department", code)) if !code.is_empty() => {
                Ok(SystemId::Department(DepartmentCode::from_string(code)))
            }
            _ => Err(format!(
                "`{s}` is not a system id (expected `intake`, `supervision`, `governance/<code>` or `department/<code>`)"
            )),
        }
    }
}

impl Serialize for SystemId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SystemId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One bus message: routing fields plus a typed payload in `data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Unique message id; consumers drop a second delivery of the same id.
    pub id: MessageId,
    /// What the message says; fixes the shape of `data` and the topic.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The case this message belongs to; also the record key.
    pub case_id: CaseId,
    /// The system that published it.
    pub source: SystemId,
    /// The system that must act on it.
    pub target: SystemId,
    /// When the source produced it.
    #[serde(serialize_with = "super::timestamp::serialize")]
    pub occurred_at: DateTime<Utc>,
    /// Follows one case across every system; set by the intake system.
    pub trace_id: String,
    /// Envelope schema version.
    pub schema: u32,
    /// The payload, decoded on demand with [`Envelope::data`].
    pub data: Box<RawValue>,
    /// The officer whose act caused this message (a decision, a supplement request, a
    /// signature, an answer, a return, an extension request, a reassignment), as their token
    /// named them; absent on what systems do by themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acted_by: Option<Officer>,
}

/// An officer, as their access token names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Officer {
    /// Their account at the identity provider (the token's `sub`).
    pub id: String,
    /// Their display name (the token's `name`).
    pub name: String,
}

/// The routing fields of a new envelope, before its payload.
#[derive(Debug, Clone)]
pub struct EnvelopeHead {
    /// See [`Envelope::id`].
    pub id: MessageId,
    /// See [`Envelope::kind`].
    pub kind: MessageType,
    /// See [`Envelope::case_id`].
    pub case_id: CaseId,
    /// See [`Envelope::source`].
    pub source: SystemId,
    /// See [`Envelope::target`].
    pub target: SystemId,
    /// See [`Envelope::trace_id`].
    pub trace_id: String,
}

impl Envelope {
    /// Builds an envelope stamped now by the machine's clock, serializing `data`.
    pub fn new<T: Serialize>(head: EnvelopeHead, data: &T) -> Self {
        Self::new_at(head, data, Utc::now())
    }

    /// Builds an envelope stamped `occurred_at`, serializing `data`.
    pub fn new_at<T: Serialize>(head: EnvelopeHead, data: &T, occurred_at: DateTime<Utc>) -> Self {
        // Serializing our own payload types cannot fail: they hold only strings, numbers,
        // timestamps and `serde_json::Value`s, all of which always serialize.
        let data =
            serde_json::value::to_raw_value(data).expect("payload types always serialize to JSON");
        Self {
            id: head.id,
            kind: head.kind,
            case_id: head.case_id,
            source: head.source,
            target: head.target,
            occurred_at,
            trace_id: head.trace_id,
            schema: SCHEMA_VERSION,
            data,
            acted_by: None,
        }
    }

    /// The record key: the case id, so that one case's messages share a partition — except a
    /// state snapshot, keyed by system and case so that compaction keeps each system's latest.
    pub fn record_key(&self) -> String {
        match self.kind {
            MessageType::StateSnapshot => format!("{}|{}", self.source, self.case_id),
            _ => self.case_id.to_string(),
        }
    }

    /// Decodes the payload as `T`.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        serde_json::from_str(self.data.get()).map_err(|error| EnvelopeError::BadData {
            kind: self.kind,
            reason: super::masking::without_values(&error),
        })
    }

    /// Checks that the payload is what its type says, for a system that does not otherwise
    /// read it: a message only its addressee reads in full must be refused (dead-lettered)
    /// there when it is unreadable, never dropped in silence. Snapshots are checked by the
    /// system that restores them.
    pub fn check_data(&self) -> Result<(), EnvelopeError> {
        use super::payloads as p;
        match self.kind {
            MessageType::ApplicationPublished => self.data::<p::Application>().map(drop),
            MessageType::ApplicationAccepted => self.data::<p::Receipt>().map(drop),
            MessageType::CollaborationRequested => self.data::<p::CollaborationRequest>().map(drop),
            MessageType::CollaborationDispatched => self.data::<p::CollaborationEvent>().map(drop),
            MessageType::CollaborationAnswered => self.data::<p::CollaborationResult>().map(drop),
            MessageType::CollaborationCompleted => {
                self.data::<p::CollaborationCompleted>().map(drop)
            }
            MessageType::ApprovalPublished | MessageType::ApprovalDelivered => {
                self.data::<p::Approval>().map(drop)
            }
            MessageType::CaseSuspended => self.data::<p::Suspension>().map(drop),
            MessageType::CaseSupplemented => self.data::<p::Supplement>().map(drop),
            MessageType::CaseResumed => self.data::<p::Resumption>().map(drop),
            MessageType::CaseRated => self.data::<p::Rating>().map(drop),
            MessageType::CollaborationSigned => self.data::<p::EventSigned>().map(drop),
            MessageType::CollaborationReturned => self.data::<p::EventReturned>().map(drop),
            MessageType::CollaborationExtensionRequested => {
                self.data::<p::ExtensionRequest>().map(drop)
            }
            MessageType::CollaborationExtensionDecided => {
                self.data::<p::ExtensionDecision>().map(drop)
            }
            MessageType::CollaborationEscalated => self.data::<p::Escalation>().map(drop),
            MessageType::SupervisionWarning => self.data::<p::Warning>().map(drop),
            MessageType::StateSnapshot => Ok(()),
        }
    }

    /// Decodes an envelope from a record's bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|error| EnvelopeError::Malformed(super::masking::without_values(&error)))?;
        if envelope.schema != SCHEMA_VERSION {
            return Err(EnvelopeError::UnsupportedSchema(envelope.schema));
        }
        Ok(envelope)
    }

    /// Encodes the envelope as JSON bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        // An envelope holds only JSON-safe values (see `new`), so this cannot fail.
        serde_json::to_vec(self).expect("envelopes always serialize to JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_ids_round_trip_and_reject_garbage() {
        for s in ["intake", "governance/500000", "department/market"] {
            let id: SystemId = s.parse().unwrap();
            assert_eq!(id.to_string(), s);
        }
        assert!("governance/".parse::<SystemId>().is_err());
        assert!("terminal/x".parse::<SystemId>().is_err());
    }

    #[test]
    fn a_system_id_read_from_the_wire_shares_its_configured_codes_text() {
        crate::domain::know_code("envelope-test-fire");
        let configured = DepartmentCode::from_string("envelope-test-fire");
        let read: SystemId = serde_json::from_str(r#""department/envelope-test-fire""#).unwrap();
        let SystemId::Department(code) = &read else {
            panic!("{read} is not a department");
        };
        assert_eq!(code.as_str().as_ptr(), configured.as_str().as_ptr());
        let unknown: SystemId = "governance/envelope-test-999".parse().unwrap();
        let again: SystemId = "governance/envelope-test-999".parse().unwrap();
        assert_eq!(unknown, again);
        let (SystemId::Governance(a), SystemId::Governance(b)) = (&unknown, &again) else {
            panic!("not centres");
        };
        assert_ne!(
            a.as_str().as_ptr(),
            b.as_str().as_ptr(),
            "only configured codes are shared"
        );
    }

    #[test]
    fn envelope_round_trips_and_rejects_unknown_type() {
        let env = Envelope::new(
            EnvelopeHead {
                id: MessageId::from_string("m1"),
                kind: MessageType::ApplicationAccepted,
                case_id: CaseId::from_string("c1"),
                source: SystemId::Department("market".into()),
                target: SystemId::Governance("500000".into()),
                trace_id: "t".into(),
            },
            &serde_json::json!({"x": 1}),
        );
        let back = Envelope::from_slice(&env.to_vec()).unwrap();
        assert_eq!(back.id, env.id);
        assert_eq!(back.kind, MessageType::ApplicationAccepted);

        let bad = String::from_utf8(env.to_vec())
            .unwrap()
            .replace("application.accepted", "application.eaten");
        assert!(matches!(
            Envelope::from_slice(bad.as_bytes()),
            Err(EnvelopeError::Malformed(_))
        ));
    }
}
