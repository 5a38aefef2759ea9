//! "Exactly once" as the bus shows it. At-least-once delivery may put a record on the bus twice
//! (a resent record keeps its `id`), and every receiver drops a message id it has seen — so a
//! case's history can never show one message twice, and checking that proves nothing. What can
//! go wrong is a system producing two *different* messages for one cause (two approvals of one
//! case, two acceptances): two distinct ids of one type for one case. That is what this checks.

use std::collections::{HashMap, HashSet};

/// One record as these checks see it: its key (the case id), its `type` and its `id` headers.
pub type Sent<'a> = (&'a str, &'a str, &'a str);

/// The messages a case with collaboration has once each, whatever was delivered twice: the
/// hops of an event down and up the tiers are several messages of one type, so they are not
/// among them.
pub const ONCE_PER_COLLABORATING_CASE: [&str; 6] = [
    "application.published",
    "application.accepted",
    "collaboration.requested",
    "collaboration.completed",
    "approval.published",
    "approval.delivered",
];

/// A govfusion bus record as these checks see it.
pub fn sent_record(record: &govfusion::bus::Record) -> Sent<'_> {
    let header = |name| record.header(name).unwrap_or_default();
    (record.key.as_str(), header("type"), header("id"))
}

/// Asserts that for each case of `case_ids`, each message type of `kinds` is on the bus under
/// exactly one message id among `sent`.
pub fn assert_one_message_per_cause<'a>(
    case_ids: &[String],
    kinds: &[&str],
    sent: impl IntoIterator<Item = Sent<'a>>,
) {
    let ids = ids_by_case_and_kind(sent);
    for case_id in case_ids {
        for kind in kinds {
            let found: Vec<&str> = ids
                .get(&(case_id.as_str(), *kind))
                .map(|found| found.iter().copied().collect())
                .unwrap_or_default();
            assert_eq!(
                found.len(),
                1,
                "case {case_id} should have exactly one distinct {kind} on the bus, found ids \
                 {found:?}"
            );
        }
    }
}

/// The distinct message ids on the bus, by case and message type.
pub fn ids_by_case_and_kind<'a>(
    sent: impl IntoIterator<Item = Sent<'a>>,
) -> HashMap<(&'a str, &'a str), HashSet<&'a str>> {
    let mut ids: HashMap<(&str, &str), HashSet<&str>> = HashMap::new();
    for (case_id, kind, id) in sent {
        ids.entry((case_id, kind)).or_default().insert(id);
    }
    ids
}

/// Asserts that no message id is twice in `case`'s history (a case as the API shows it): each
/// step was recorded once, however often its message was delivered.
pub fn assert_each_step_once(case: &serde_json::Value) {
    let ids: Vec<&str> = case["history"]
        .as_array()
        .expect("a history")
        .iter()
        .filter_map(|entry| entry["message_id"].as_str())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "a step twice in {case}");
}
