//! `govfusion bench --resident`: the memory the city holds for each open case.
//!
//! The city runs with every department manual and no one at work in them, so every case
//! submitted stays open: at the intake and supervision systems, at its department, and, when
//! its matter needs collaboration, at the centres and collaborators its events reach once the
//! department asks. Half the cases are submitted, the process's resident memory is read once it
//! stops growing, then the other half, and it is read again. What the second half added,
//! divided by its cases, is the memory an open case costs: the first half also pays for what
//! the process builds once (connections, caches, the tables' first growth).

use super::{Api, Forms, SimulateOptions};
use crate::actors::intake::{Held, Holding};
use crate::systems::Systems;
use anyhow::Context as _;
use futures::stream::{self, StreamExt};
use std::fmt;
use std::time::{Duration, Instant};

/// How often the resident memory is read while the city settles.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// The memory has settled when it moved less than this share over [`SETTLED_SAMPLES`] reads.
const SETTLED_SHARE: f64 = 0.002;
/// Reads in a row over which the memory must stay within [`SETTLED_SHARE`].
const SETTLED_SAMPLES: usize = 4;
/// The longest wait for the memory to settle after a half.
const SETTLE_AT_MOST: Duration = Duration::from_secs(30);

/// The resident memory before the cases, after the first half and after the second.
#[derive(Debug, Clone)]
pub struct Resident {
    /// Cases in each half.
    pub half: usize,
    /// Resident bytes before any case, after the first half, after the second.
    pub bytes: [u64; 3],
    /// How long the submissions of each half took.
    pub submitted_in: [Duration; 2],
    /// What the intake system held at the end: cases whole in memory, and open cases out of
    /// it (past `store.open_cases_in_memory`).
    pub intake: Held,
}

impl Resident {
    /// Resident bytes each open case of the second half added.
    pub fn per_case(&self) -> f64 {
        self.bytes[2].saturating_sub(self.bytes[1]) as f64 / self.half.max(1) as f64
    }

    /// Resident bytes each open case of the first half added, with what the process built
    /// once.
    pub fn per_case_first(&self) -> f64 {
        self.bytes[1].saturating_sub(self.bytes[0]) as f64 / self.half.max(1) as f64
    }
}

impl fmt::Display for Resident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        writeln!(
            f,
            "open cases  0 → {} → {} (every department manual, no staff)",
            self.half,
            2 * self.half
        )?;
        writeln!(
            f,
            "resident    {:.1} MiB → {:.1} MiB → {:.1} MiB",
            mib(self.bytes[0]),
            mib(self.bytes[1]),
            mib(self.bytes[2])
        )?;
        writeln!(
            f,
            "submitted   in {:.2} s and {:.2} s",
            self.submitted_in[0].as_secs_f64(),
            self.submitted_in[1].as_secs_f64()
        )?;
        writeln!(
            f,
            "intake      {} cases in memory, {} open cases out of it at the end",
            self.intake.cases, self.intake.away
        )?;
        writeln!(
            f,
            "per case    {:.1} KiB an open case (second half); first half {:.1} KiB",
            self.per_case() / 1024.0,
            self.per_case_first() / 1024.0
        )
    }
}

/// Submits `options.cases` cases through `api` in two halves, `options.in_flight` at once, to
/// a city whose departments are all manual and unstaffed, and reads the resident memory before,
/// between and after. Fails when a case is refused or the memory cannot be read.
pub async fn measure(
    systems: &Systems,
    api: &Api,
    options: &SimulateOptions,
) -> anyhow::Result<Resident> {
    let forms = Forms::of(systems, options);
    let half = (options.cases / 2).max(1);
    let before = settled().await?;
    let started = Instant::now();
    submit(api, &forms, half, options.in_flight).await?;
    let first = started.elapsed();
    let middle = settled().await?;
    let started = Instant::now();
    submit(api, &forms, half, options.in_flight).await?;
    let second = started.elapsed();
    let after = settled().await?;
    let intake = systems
        .desks
        .intake
        .holding
        .send(Holding)
        .await
        .context("the intake system stopped")?;
    Ok(Resident {
        half,
        bytes: [before, middle, after],
        submitted_in: [first, second],
        intake,
    })
}

/// Submits `cases` new applications, `in_flight` at once; the first refusal is the error.
async fn submit(api: &Api, forms: &Forms, cases: usize, in_flight: usize) -> anyhow::Result<()> {
    let refusals: Vec<String> = stream::iter(0..cases)
        .map(|_| {
            let (terminal, form) = forms.next();
            async move {
                let (Some(terminal), Some((account, form))) = (terminal, form) else {
                    return Err("the config has no terminal, matter or street".to_owned());
                };
                let token = api.applicant(account);
                api.submit(&terminal, &token, &form).await.map(|_| ())
            }
        })
        .buffer_unordered(in_flight.max(1))
        .filter_map(|outcome| async move { outcome.err() })
        .collect()
        .await;
    match refusals.first() {
        None => Ok(()),
        Some(first) => anyhow::bail!(
            "{} of {cases} submissions refused, the first: {first}",
            refusals.len()
        ),
    }
}

/// This process's resident memory once it stops moving (or after [`SETTLE_AT_MOST`]).
pub async fn settled() -> anyhow::Result<u64> {
    let deadline = Instant::now() + SETTLE_AT_MOST;
    let mut recent = vec![resident_bytes()?];
    loop {
        tokio::time::sleep(SAMPLE_EVERY).await;
        recent.push(resident_bytes()?);
        if recent.len() > SETTLED_SAMPLES {
            recent.remove(0);
        }
        let (low, high) = recent
            .iter()
            .fold((u64::MAX, 0), |(lo, hi), &b| (lo.min(b), hi.max(b)));
        let steady =
            recent.len() == SETTLED_SAMPLES && (high - low) as f64 <= high as f64 * SETTLED_SHARE;
        if steady || Instant::now() >= deadline {
            return Ok(high);
        }
    }
}

/// This process's resident memory (`VmRSS` in `/proc/self/status`), in bytes.
fn resident_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status (bench --resident needs Linux)")?;
    parse_vm_rss(&status).context("no VmRSS line in /proc/self/status")
}

/// The `VmRSS` of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_memory_is_read_from_its_status_line_in_bytes() {
        let status = "Name:\tgovfusion\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(123_456 * 1024));
        assert_eq!(parse_vm_rss("Name:\tgovfusion\n"), None);
    }

    #[test]
    fn an_open_case_costs_what_the_second_half_added_over_its_cases() {
        let resident = Resident {
            half: 1000,
            bytes: [50 << 20, 80 << 20, 90 << 20],
            submitted_in: [Duration::from_secs(1); 2],
            intake: Held {
                cases: 1000,
                away: 1000,
                feed: 0,
                acts: 0,
            },
        };
        assert_eq!(resident.per_case(), (10 << 20) as f64 / 1000.0);
        assert_eq!(resident.per_case_first(), (30 << 20) as f64 / 1000.0);
        assert!(resident.to_string().contains("10.2 KiB an open case"));
        assert!(resident
            .to_string()
            .contains("1000 cases in memory, 1000 open cases out of it"));
    }
}
