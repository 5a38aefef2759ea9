//! A department marked `external = true` is played by an outside system through Kafka alone, as
//! the wire contract says (DESIGN.md, "Wire contract"; the outputs mirror
//! `src/actors/department.rs`): it consumes `<prefix>.applications` in the group
//! `<prefix>.department.<code>`, and answers with JSON envelopes keyed by case id carrying the
//! `id`, `type`, `target` and `trace_id` headers. The test plays ecology with raw rdkafka.

use crate::helpers::{poll, settings, spawn_app, step_names, Broker};
use crate::raw::{produce, producer, read_topics, to_raw, RawRecord};
use chrono::{Duration, Utc};
use govfusion::bus::Topic;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::{json, Value};
use std::collections::HashSet;

/// The external department's reason, to recognise its decision in the applicant's view.
const REASON: &str = "外部生态环境审批系统：排放监测方案审核通过";
/// The city centre, where a department's acceptance and approval go.
const CITY: &str = "governance/500000";

#[actix_web::test]
async fn an_external_department_decides_through_kafka_alone_on_the_embedded_cluster() {
    external_department_decides(Broker::Embedded).await;
}

#[actix_web::test]
#[ignore = "needs GOVFUSION_TEST_KAFKA (a Kafka-protocol broker); .ci/run provides it"]
async fn an_external_department_decides_through_kafka_alone_on_a_real_broker() {
    external_department_decides(Broker::real()).await;
}

async fn external_department_decides(broker: Broker) {
    // Arrange
    let mut settings = settings(&broker);
    let ecology = settings
        .departments
        .iter_mut()
        .find(|d| d.code == "ecology")
        .expect("the default config has an ecology department");
    ecology.external = true;
    let prefix = settings.bus.topic_prefix.clone();
    let app = spawn_app(settings).await;
    assert!(
        !app.systems.desks.departments.contains_key("ecology"),
        "an external department must have no built-in actor"
    );
    let (opened_tx, mut opened) = tokio::sync::mpsc::unbounded_channel();
    let outside = actix_web::rt::spawn(play_ecology(
        app.kafka().brokers().to_owned(),
        prefix,
        opened_tx,
    ));
    let body = app.application_body("pollutant_discharge_permit");

    // Act
    let case_id = app.submit_ok(&body).await;
    let case = app.wait_until_completed(&case_id).await;
    outside.abort();

    // Assert
    assert_eq!(
        case["receipt"]["receipt_no"],
        format!("ECO-EXT-{case_id}"),
        "the receipt should be the external system's: {case}"
    );
    assert_eq!(case["approval"]["department"], "ecology", "{case}");
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "{case}"
    );
    assert_eq!(
        case["approval"]["outcome"]["reasons"],
        json!([REASON]),
        "the decision should be the external system's: {case}"
    );
    // The acceptance travels on its own topic, which the intake system may read after the
    // approvals: wait for it rather than expect it at completion.
    poll("the external acceptance in the case history", || async {
        let case = app.get_case(&case_id).await;
        let accepted = case["history"].as_array().and_then(|history| {
            history
                .iter()
                .find(|entry| entry["step"] == "application.accepted")
        });
        match accepted {
            Some(entry) if entry["by"] == "department/ecology" => Ok(()),
            _ => Err(format!("{:?}", step_names(&case["history"]))),
        }
    })
    .await;
    // Assert (wire contract): the outside system opened the sealed applicant as documented …
    let applicant = opened.recv().await.expect("the outside system opened one");
    assert_eq!(applicant, body["applicant"]);
    // … which is on no topic in clear, in a value or a header.
    let everything = read_topics(app.kafka().brokers(), &topics(&app)).await;
    assert!(everything.iter().any(|r| r.key == case_id));
    for record in &everything {
        let text = format!(
            "{} {:?} {}",
            record.key,
            record.headers,
            String::from_utf8_lossy(&record.payload)
        );
        for (field, clear) in body["applicant"].as_object().expect("an object") {
            let clear = clear.as_str().unwrap_or_default();
            assert!(!text.contains(clear), "the {field} in clear: {text}");
        }
    }
    // Assert (traces): every record govfusion wrote about the case names the case's trace in
    // a W3C traceparent, through Kafka's headers; the outside system's records carry none and
    // were handled all the same (the case completed on them).
    for record in everything.iter().filter(|r| r.key == case_id) {
        let envelope = record.json();
        let from_outside = envelope["source"] == "department/ecology";
        match (from_outside, record.header("traceparent")) {
            (true, None) => {}
            (false, Some(value)) => {
                let parent = govfusion::bus::trace::TraceParent::parse(value)
                    .unwrap_or_else(|| panic!("`{value}` is not a W3C traceparent"));
                assert_eq!(
                    parent.trace_id, envelope["trace_id"],
                    "{:?}",
                    record.headers
                );
            }
            (outside, header) => panic!("from outside: {outside}, traceparent {header:?}"),
        }
    }
    // Assert (wire contract): produced with the contract's partitioner, its approval joins the
    // case's partition, ahead of the delivery govfusion publishes in answer.
    let approvals = read_topics(app.kafka().brokers(), &[app.topic(Topic::Approvals)]).await;
    let mut ids = HashSet::new();
    let of_case: Vec<&RawRecord> = approvals
        .iter()
        .filter(|r| r.key == case_id && ids.insert(r.header("id").unwrap_or_default()))
        .collect();
    let partitions: HashSet<i32> = of_case.iter().map(|r| r.partition).collect();
    assert_eq!(
        partitions.len(),
        1,
        "one partition for the case: {of_case:?}"
    );
    let types: Vec<&str> = of_case.iter().filter_map(|r| r.header("type")).collect();
    assert_eq!(
        types,
        ["approval.published", "approval.delivered"],
        "approvals of the case out of causal order"
    );
    app.shutdown().await;
}

/// Every topic of the service that exists on the broker (the embedded cluster keeps no state
/// topic records: state snapshots are written only to a bus that outlives the process).
fn topics(app: &crate::helpers::TestApp) -> Vec<String> {
    Topic::ALL
        .into_iter()
        .map(|topic| app.topic(topic))
        .collect()
}

/// Opens a sealed applicant as an outside department would, from the wire format documented
/// in docs/asyncapi.yaml alone: AES-256-GCM, base64 nonce and ciphertext‖tag, the case id as
/// associated data, the key its `kid` names (here the development key, id `dev`).
fn open_applicant(sealed: &Value, case_id: &str) -> Value {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    assert_eq!(sealed["alg"], "A256GCM", "{sealed}");
    assert_eq!(sealed["kid"], "dev", "{sealed}");
    let decode = |field: &str| {
        STANDARD
            .decode(sealed[field].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{field} is not base64: {e}"))
    };
    let key = STANDARD
        .decode(govfusion::settings::DEVELOPMENT_KEY)
        .expect("base64");
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&key).expect("32 bytes");
    let nonce: [u8; 12] = decode("nonce").try_into().expect("a 12-byte nonce");
    let plaintext = cipher
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &decode("ciphertext"),
                aad: case_id.as_bytes(),
            },
        )
        .expect("the applicant opens with the documented key and AAD");
    serde_json::from_slice(&plaintext).expect("the plaintext is the applicant's JSON")
}

/// The outside system: accepts and approves every application targeted at ecology, and
/// hands every applicant it opened to `opened`.
async fn play_ecology(
    brokers: String,
    prefix: String,
    opened: tokio::sync::mpsc::UnboundedSender<Value>,
) {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("{prefix}.department.ecology"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.offset.store", "false")
        .set("session.timeout.ms", "1000")
        .set("heartbeat.interval.ms", "100")
        .create()
        .expect("Failed to create the external department's consumer");
    consumer
        .subscribe(&[&format!("{prefix}.applications")])
        .expect("Failed to subscribe the external department");
    let producer = producer(&brokers);
    loop {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(error) => panic!("the external department cannot consume: {error}"),
        };
        let record = to_raw(&message);
        if record.header("target") == Some("department/ecology") {
            let published = record.json();
            // The test may have stopped listening; the department goes on regardless.
            let _ = opened.send(open_applicant(&published["data"]["applicant"], &record.key));
            for (topic, envelope) in answers(&record) {
                let header = |name: &str| envelope[name].as_str().unwrap_or_default().to_owned();
                let (id, kind, trace_id) = (header("id"), header("type"), header("trace_id"));
                let headers = [
                    ("id", id.as_str()),
                    ("type", kind.as_str()),
                    ("target", CITY),
                    ("trace_id", trace_id.as_str()),
                ];
                let topic = format!("{prefix}.{topic}");
                let payload = envelope.to_string();
                produce(&producer, &topic, &record.key, &headers, payload.as_bytes()).await;
            }
        }
        // Committed only once what the record caused is acknowledged, as the contract asks.
        consumer
            .store_offset_from_message(&message)
            .expect("Failed to store the external department's offset");
    }
}

/// The acceptance and the approval of an `application.published` record, with their topics.
fn answers(record: &RawRecord) -> [(&'static str, Value); 2] {
    let published = record.json();
    let application = &published["data"];
    let case_id = published["case_id"].as_str().unwrap_or_default();
    let trace_id = published["trace_id"].as_str().unwrap_or_default();
    let matter = application["matter_code"].clone();
    let now = Utc::now();
    let receipt_no = format!("ECO-EXT-{case_id}");
    let receipt = json!({
        "receipt_no": receipt_no, "department": "ecology", "matter_code": matter,
        "accepted_at": now, "promised_days": 20,
        "due_date": (now + Duration::days(28)).date_naive(), "due_by": now + Duration::days(29),
    });
    let step = |step: &str, note: &str| json!({ "step": step, "by": "department/ecology", "at": Utc::now(), "note": note });
    let approval = json!({
        "department": "ecology", "matter_code": matter, "receipt_no": receipt_no,
        "receipt": receipt,
        "steps": [step("accepted", "外部系统受理"), step("decided", REASON)],
        "outcome": { "decision": "approved", "reasons": [REASON] },
    });
    let envelope = |id: String, kind: &str, data: Value| {
        json!({
            "id": id, "type": kind, "case_id": case_id, "source": "department/ecology",
            "target": CITY, "occurred_at": Utc::now(), "trace_id": trace_id, "schema": 1,
            "data": data,
        })
    };
    [
        (
            "acceptances",
            envelope(
                format!("{case_id}/accepted"),
                "application.accepted",
                receipt,
            ),
        ),
        (
            "approvals",
            envelope(
                format!("{case_id}/approval"),
                "approval.published",
                approval,
            ),
        ),
    ]
}
