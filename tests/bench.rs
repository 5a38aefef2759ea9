//! `govfusion bench` as an operator runs it: `--ceiling`, a simulation on the embedded Kafka
//! cluster, then its records through the same consumer groups with raw clients; `--resident`
//! and `--completed`, the memory open and completed cases hold, on the in-memory bus.

use std::process::{Command, Output};

/// Runs the built binary with `args` and `env` (name, value) pairs.
fn govfusion(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_govfusion"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("Failed to run the govfusion binary")
}

/// The numbers of the line of `out` that starts with `label`, in order (`1,740` is one).
fn numbers(out: &str, label: &str) -> Vec<f64> {
    let line = out
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{out}"));
    line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|word| word.trim_matches('.').parse().ok())
        .collect()
}

#[test]
fn the_ceiling_moves_the_runs_records_through_its_groups_and_prints_the_services_share() {
    let output = govfusion(&["bench", "--ceiling", "--cases", "40"], &[]);

    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {out}\n{err}");
    // The bus it ran on comes first: the configuration's, here the embedded cluster …
    assert!(out.starts_with("measured on embedded cluster"), "{out}");
    // … then the simulation's own summary, every case completed …
    let cases = numbers(&out, "cases");
    assert_eq!(cases[..2], [40.0, 40.0], "{out}");
    let service = numbers(&out, "throughput")[0];
    // … then the topology it ran: several records a case, read by two groups (the centres'
    // and departments', the views') — most of them by both …
    let topology = numbers(&out, "topology");
    let (records, groups, deliveries) = (topology[0], topology[2], topology[3]);
    assert!((5.0..30.0).contains(&records), "records a case: {out}");
    assert_eq!(groups, 2.0, "consumer groups: {out}");
    assert!(deliveries > 1.4 * records, "deliveries a case: {out}");
    // … the raw clients moved every record the run wrote …
    let ceiling = numbers(&out, "ceiling");
    assert!(ceiling[0] > 0.0, "{out}");
    assert_eq!(ceiling[1], numbers(&out, "bus")[0], "records moved: {out}");
    // … and the share is the simulation's throughput over that ceiling.
    let share = numbers(&out, "share");
    assert_eq!(share[1], service.round(), "{out}");
    let expected = service / ceiling[0];
    assert!(
        (share[0] - expected).abs() < 0.01 + expected * 0.01,
        "{out}"
    );
}

#[test]
fn the_ceiling_is_refused_on_the_memory_bus_saying_why() {
    let output = govfusion(
        &["bench", "--ceiling", "--cases", "5"],
        &[("GOVFUSION__BUS__KIND", "memory")],
    );

    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("bench --ceiling measures Kafka: set bus.kind to `kafka` or `embedded`"),
        "{err}"
    );
}

#[test]
fn the_resident_memory_of_open_cases_is_read_before_between_and_after_two_halves() {
    let output = govfusion(
        &[
            "bench",
            "--resident",
            "--cases",
            "200",
            "--open-cases",
            "16",
        ],
        &[("GOVFUSION__BUS__KIND", "memory")],
    );

    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {out}\n{err}");
    // Two halves of 100 cases, every one accepted: a refusal fails the run.
    assert_eq!(
        numbers(&out, "open cases")[..3],
        [0.0, 100.0, 200.0],
        "{out}"
    );
    // Three readings of a running process's memory (each may be below the one before: the
    // allocator returns what start-up used once it is freed) …
    let resident = numbers(&out, "resident");
    assert_eq!(resident.len(), 3, "{out}");
    assert!(
        resident.iter().all(|&mib| mib > 1.0),
        "a process holds more than a MiB: {out}"
    );
    // … and an open case's cost is what the second half added over its 100 cases (in KiB,
    // from readings printed to a tenth of a MiB: within 0.1 MiB over 100 cases).
    let per_case = numbers(&out, "per case")[0];
    let expected = (resident[2] - resident[1]).max(0.0) * 1024.0 / 100.0;
    assert!((per_case - expected).abs() <= 1.1, "{out}");
}

#[test]
fn the_resident_memory_and_the_ceiling_are_not_measured_at_once() {
    let output = govfusion(&["bench", "--resident", "--ceiling"], &[]);

    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn the_resident_memory_after_completed_cases_is_read_once_every_case_completed() {
    let output = govfusion(
        &["bench", "--completed", "--cases", "60", "--open-cases", "8"],
        &[("GOVFUSION__BUS__KIND", "memory")],
    );

    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {out}\n{err}");
    // The simulation's summary, every case completed, then one reading after them.
    assert_eq!(numbers(&out, "cases")[..2], [60.0, 60.0], "{out}");
    let settled = numbers(&out, "settled");
    assert!(settled[0] > 1.0, "a process holds more than a MiB: {out}");
    assert_eq!(settled[1], 60.0, "{out}");
}

#[test]
fn the_memory_after_completed_cases_is_measured_alone() {
    for other in ["--ceiling", "--resident"] {
        let output = govfusion(&["bench", "--completed", other], &[]);
        assert!(!output.status.success(), "{other}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains("cannot be used with"), "{other}: {err}");
    }
}
