use super::*;
use crate::audit::{Ids, Who};
use chrono::TimeZone;

/// An entry of request `n` by an officer.
fn entry(n: u64) -> Entry {
    Entry {
        at: chrono::Utc
            .timestamp_opt(1_790_000_000 + n as i64, 0)
            .single()
            .expect("a valid time"),
        who: Who {
            role: "officer".into(),
            subject: Some("officer-li".into()),
            name: Some("李四".into()),
            scope: Some("urban_management".into()),
        },
        from: Some("10.0.0.7".into()),
        method: "POST".into(),
        route: Some("/api/v1/departments/{code}/cases/{case_id}/decision".into()),
        action: "case.decide".into(),
        ids: Ids {
            case_id: Some(format!("case-{n}")),
            department: Some("urban_management".into()),
            ..Ids::default()
        },
        status: 200,
        error: None,
    }
}

/// `count` records of `writer`, as payloads.
fn chain_of(writer: &str, count: u64) -> Vec<Vec<u8>> {
    let mut link = Link::genesis(writer);
    (1..=count)
        .map(|n| serde_json::to_vec(&seal(&mut link, entry(n))).expect("serializes"))
        .collect()
}

/// `payload` with `field` set to `value`.
fn altered(payload: &[u8], field: &str, value: Value) -> Vec<u8> {
    let mut record: Value = serde_json::from_slice(payload).expect("JSON");
    record[field] = value;
    serde_json::to_vec(&record).expect("serializes")
}

#[test]
fn a_good_chain_of_two_interleaved_writers_verifies() {
    let a = chain_of("a", 5);
    let b = chain_of("b", 3);
    let interleaved = [&a[..2], &b[..], &a[2..]].concat();

    let summary = verify(&interleaved).expect("an untouched chain verifies");

    assert_eq!(summary.records(), 8);
    assert_eq!(summary.writers["a"].last_seq, 5);
    assert_eq!(summary.writers["b"].last_seq, 3);
}

#[test]
fn a_record_starts_at_genesis_and_links_to_the_one_before() {
    let mut link = Link::genesis("w");
    let first = seal(&mut link, entry(1));
    let second = seal(&mut link, entry(2));

    assert_eq!((first.seq, first.prev.as_str()), (1, GENESIS));
    assert_eq!((second.seq, &second.prev), (2, &first.hash));
    assert_eq!(second.hash.len(), 64);
}

#[test]
fn altering_one_field_of_one_record_breaks_the_chain_at_that_record() {
    let mut records = chain_of("w", 5);
    records[2] = altered(&records[2], "status", Value::from(403));

    let broken = verify(&records).expect_err("an altered record must not verify");

    assert_eq!((broken.writer.as_str(), broken.seq), ("w", 3));
    assert!(broken.problem.contains("hash"), "{broken}");
}

#[test]
fn altering_a_record_and_its_hash_breaks_the_chain_at_the_next_record() {
    let mut records = chain_of("w", 5);
    let mut record: Value = serde_json::from_slice(&records[2]).expect("JSON");
    record["who"]["subject"] = Value::from("someone-else");
    let Value::Object(fields) = &record else {
        panic!("a record is an object")
    };
    record["hash"] = Value::from(digest(fields));
    records[2] = serde_json::to_vec(&record).expect("serializes");

    let broken = verify(&records).expect_err("a re-hashed record must not verify");

    assert_eq!(broken.seq, 4, "{broken}");
    assert!(broken.problem.contains("prev"), "{broken}");
}

#[test]
fn adding_a_field_to_a_record_breaks_the_chain() {
    let mut records = chain_of("w", 3);
    records[1] = altered(&records[1], "note", Value::from("nothing happened"));

    assert_eq!(verify(&records).map_err(|b| b.seq), Err(2));
}

#[test]
fn deleting_one_record_breaks_the_chain_at_its_seq() {
    let mut records = chain_of("w", 5);
    records.remove(3);

    let broken = verify(&records).expect_err("a deleted record must not verify");

    assert_eq!(broken.seq, 4);
    assert!(broken.problem.contains("missing"), "{broken}");
}

#[test]
fn deleting_the_first_record_breaks_the_chain_at_seq_1_unless_retention_removed_it() {
    let records = chain_of("w", 4);

    let strict = verify(&records[1..]).expect_err("the start is missing");
    let after_retention = verify_with(&records[1..], Start::AfterRetention)
        .expect("a chain may start past seq 1 after retention");

    assert_eq!(strict.seq, 1);
    assert_eq!(after_retention.writers["w"].first_seq, 2);
    assert_eq!(after_retention.records(), 3);
}

#[test]
fn reordering_two_records_breaks_the_chain_at_the_first_of_them() {
    let mut records = chain_of("w", 5);
    records.swap(1, 2);

    let broken = verify(&records).expect_err("reordered records must not verify");

    assert_eq!(broken.seq, 2, "{broken}");
}

#[test]
fn an_exact_repeat_is_skipped_but_a_different_record_under_an_old_seq_is_not() {
    let records = chain_of("w", 3);
    let repeated = [&records[..], &records[1..2]].concat();
    let forged = [
        &records[..],
        &[altered(&records[1], "status", Value::from(500))][..],
    ]
    .concat();

    let summary = verify(&repeated).expect("a repeat is not a break");
    let broken = verify(&forged).expect_err("a forged old seq is a break");

    assert_eq!(summary.writers["w"].repeats, 1);
    assert_eq!(broken.seq, 2);
}

#[test]
fn a_record_that_is_not_json_is_a_broken_link() {
    let mut records = chain_of("w", 2);
    records.push(b"not json".to_vec());

    assert!(verify(&records).is_err());
}

/// The hash of the first record of writer `a` for `entry`, as sealed.
fn first_hash(entry: Entry) -> String {
    seal(&mut Link::genesis("a"), entry).hash
}

#[test]
fn the_hash_is_sha256_of_the_record_without_hash_keys_sorted_and_compact() {
    // Computed apart from this code, with Python's `json.dumps(record, sort_keys=True,
    // separators=(",", ":"), ensure_ascii=False)` and `hashlib.sha256`: a chain sealed by
    // any version of the service, or by an auditor's own script, recomputes the same.
    assert_eq!(
        first_hash(entry(1)),
        "8e834820ffcd1ee724a0bfd419e2285168bd399210e2eed43be0073583a5ff8d"
    );
    let refused = Entry {
        status: 409,
        error: Some("said \"no\"\n\u{1}".into()),
        ..entry(1)
    };
    assert_eq!(
        first_hash(refused),
        "5d728bb0ad3056020ea9680578b8320d9b545d04a67e2972a5f3cc19766925e8"
    );
}
