//! The audit trail: every POST (refused or not) and every clear read of personal data leaves a
//! record saying who, what and with what result; the records of the process form a hash chain
//! that verifies, and stops verifying once one record is altered.

use crate::helpers::{
    assert_refused, assert_status, spawn_app, spawn_app_with, Caller, TestApp, TERMINAL,
};
use govfusion::audit::{read_topic, verify, AuditRecord, Flush};
use govfusion::bus::Topic;
use serde_json::{json, Value};
use std::time::Duration;

/// Every audit record on the bus, in topic order, once the trail has handed all of its records
/// on; and how many it lost since it started.
async fn flushed_audit(app: &TestApp) -> (u64, Vec<bytes::Bytes>) {
    let lost = app
        .systems
        .audit
        .flush
        .send(Flush)
        .await
        .expect("the audit trail runs");
    let payloads = read_topic(app.memory_bus(), Duration::from_secs(10))
        .await
        .expect("the audit topic is read to its end");
    (lost, payloads)
}

/// Every audit record on the bus, asserting that none was lost.
async fn audit_payloads(app: &TestApp) -> Vec<bytes::Bytes> {
    let (lost, payloads) = flushed_audit(app).await;
    assert_eq!(lost, 0, "no audit record may be lost on a healthy bus");
    payloads
}

fn parse(payload: &[u8]) -> AuditRecord {
    serde_json::from_slice(payload).expect("an audit record")
}

/// The one record of `action` answered `status`.
fn the_record<'a>(records: &'a [AuditRecord], action: &str, status: u16) -> &'a AuditRecord {
    let found: Vec<_> = records
        .iter()
        .filter(|r| r.entry.action == action && r.entry.status == status)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one `{action}` answered {status}: {records:#?}"
    );
    found[0]
}

#[actix_web::test]
async fn requests_leave_a_chain_of_who_did_what_that_breaks_when_a_record_is_altered() {
    // Arrange
    let app = spawn_app().await;
    let (case_id, decision) = app.case_to_decide().await;
    let mut invalid = app.application_body("outdoor_advertising");
    invalid["applicant"]["id_number"] = json!("500103199001011234");

    // Act
    let forbidden = app
        .post_json_as(
            &Caller::officer("market"),
            &decision,
            &json!({ "decision": "approve" }),
        )
        .await;
    assert_refused(forbidden, 403, "forbidden").await;
    let anonymous = app
        .post_json_as(
            &Caller::Anonymous,
            &decision,
            &json!({ "decision": "approve" }),
        )
        .await;
    assert_eq!(anonymous.status(), 401);
    let refused = app.submit(TERMINAL, &invalid).await;
    assert_eq!(refused.status(), 422);
    assert_status(
        app.post_json(&decision, &json!({ "decision": "approve" }))
            .await,
        200,
    )
    .await;
    app.get_case(&case_id).await;
    let masked = app
        .get_as(&Caller::Supervisor, &format!("/api/v1/cases/{case_id}"))
        .await;
    assert_eq!(masked.status(), 200);
    let collaborating = app
        .get_as(
            &Caller::officer("street_office"),
            &format!("/api/v1/cases/{case_id}"),
        )
        .await;
    assert_eq!(collaborating.status(), 200);
    assert_eq!(
        app.get_as(&Caller::Anonymous, "/api/v1/matters")
            .await
            .status(),
        200
    );
    let payloads = audit_payloads(&app).await;
    let records: Vec<AuditRecord> = payloads.iter().map(|p| parse(p)).collect();

    // Assert: who, what, which ids, result.
    let submitted = the_record(&records, "application.submit", 202);
    assert_eq!(
        submitted.entry.ids.case_id.as_deref(),
        Some(case_id.as_str())
    );
    assert_eq!(submitted.entry.ids.terminal.as_deref(), Some(TERMINAL));
    assert_eq!(submitted.entry.who.role, "applicant");
    assert_eq!(
        submitted.entry.who.subject.as_deref(),
        Some("applicant-zhang")
    );
    assert_eq!(
        submitted.entry.who.name, None,
        "an applicant's name is personal data"
    );
    assert_eq!(submitted.entry.method, "POST");
    assert_eq!(
        submitted.entry.route.as_deref(),
        Some("/api/v1/terminals/{terminal_id}/applications")
    );
    assert!(
        submitted.entry.from.is_some(),
        "the peer's address is recorded"
    );
    let refused = the_record(&records, "case.decide", 403);
    assert_eq!(refused.entry.error.as_deref(), Some("forbidden"));
    assert_eq!(
        (
            refused.entry.who.role.as_str(),
            refused.entry.who.scope.as_deref()
        ),
        ("officer", Some("market"))
    );
    assert_eq!(
        refused.entry.ids.department.as_deref(),
        Some("urban_management")
    );
    assert_eq!(refused.entry.ids.case_id.as_deref(), Some(case_id.as_str()));
    let anonymous = the_record(&records, "case.decide", 401);
    assert_eq!(anonymous.entry.who.role, "anonymous");
    assert_eq!(anonymous.entry.error.as_deref(), Some("unauthenticated"));
    let invalid = the_record(&records, "application.submit", 422);
    assert_eq!(invalid.entry.error.as_deref(), Some("invalid_field"));
    let decided = the_record(&records, "case.decide", 200);
    assert_eq!(decided.entry.who.scope.as_deref(), Some("urban_management"));
    assert_eq!(decided.entry.error, None);
    let read = the_record(&records, "case.read", 200);
    assert_eq!(read.entry.who.role, "applicant");
    assert!(
        records.iter().all(|r| r.entry.who.role != "supervisor"),
        "a masked read is not a clear read"
    );
    assert!(
        records
            .iter()
            .all(|r| r.entry.who.scope.as_deref() != Some("street_office")),
        "a collaborating department sees the case masked: not a clear read"
    );
    assert!(
        records
            .iter()
            .all(|r| r.entry.route.as_deref() != Some("/api/v1/matters")),
        "the public catalogue is not audited"
    );
    assert!(
        records.iter().any(|r| r.entry.action == "inbox.read"),
        "an officer's inbox shows applicants in clear"
    );
    for payload in &payloads {
        let text = String::from_utf8_lossy(payload);
        for personal in ["张三", "500103199001011232", "13800000000"] {
            assert!(!text.contains(personal), "`{personal}` in clear in {text}");
        }
    }

    // Assert: one writer's chain, keyed by its id, that verifies…
    let summary = verify(&payloads).expect("an untouched trail verifies");
    assert_eq!(summary.writers.len(), 1);
    assert_eq!(summary.records(), records.len() as u64);
    let writer = &app.systems.audit.writer;
    assert!(app
        .memory_bus()
        .all_records(Topic::Audit)
        .iter()
        .all(|(_, r)| &r.key == writer));

    // …and breaks at the record altered.
    let mut altered: Vec<Vec<u8>> = payloads.iter().map(|p| p.to_vec()).collect();
    let at = records
        .iter()
        .position(|r| r.entry.status == 403)
        .expect("the refusal is recorded");
    let mut record: Value = serde_json::from_slice(&altered[at]).expect("JSON");
    record["status"] = json!(200);
    altered[at] = serde_json::to_vec(&record).expect("serializes");
    let broken = verify(&altered).expect_err("an altered record must break the chain");
    assert_eq!(broken.seq, records[at].seq);
    assert_eq!(&broken.writer, writer);
}

#[actix_web::test]
async fn an_audit_record_the_bus_never_takes_fails_no_request_is_counted_and_shows_as_a_gap() {
    // Arrange: a bridge that sends once, and a bus that refuses the next publish.
    let app = spawn_app_with(|settings| settings.bridge.retry_max_attempts = 1).await;
    let decision = "/api/v1/departments/urban_management/cases/unknown/decision";
    app.memory_bus().fail_next_publishes(1);

    // Act: two requests whose only publish is their audit record.
    let first = app
        .post_json_as(
            &Caller::Anonymous,
            decision,
            &json!({ "decision": "approve" }),
        )
        .await;
    let (lost, _) = flushed_audit(&app).await;
    let second = app
        .post_json_as(
            &Caller::Anonymous,
            decision,
            &json!({ "decision": "approve" }),
        )
        .await;
    let (_, payloads) = flushed_audit(&app).await;

    // Assert
    assert_eq!(
        first.status(),
        401,
        "the request is answered as without an outage"
    );
    assert_eq!(second.status(), 401);
    assert_eq!(lost, 1, "the lost record is counted");
    let broken = verify(&payloads).expect_err("the lost record is a gap in the chain");
    assert_eq!(broken.seq, 1, "{broken}");
    assert!(broken.problem.contains("missing"), "{broken}");
}
