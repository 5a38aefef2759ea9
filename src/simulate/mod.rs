//! The simulator: runs the whole city in process, drives synthetic applications through the
//! terminals, plays the staff of manual departments, and measures how the cases went.
//!
//! Applicants and officers act through the HTTP API with tokens, like any client (`client`);
//! the simulator only watches the intake system in process to learn when a case completes.
//!
//! At most `in_flight` cases are open at once, so the latency of a case (submission to
//! completion at the intake system) reflects the system, not a queue of the simulator's making.

mod city;
mod client;
pub mod resident;

pub use city::SimulatedCity;
pub use client::Api;

use crate::actors::intake::{AwaitCompletion, GetCase};
use crate::bus::bridge::BridgeStats;
use crate::domain::{CaseStatus, Decision, DepartmentCode, Mode, Region, TerminalId, Tier};
use crate::settings::{MatterSettings, Settings};
use crate::systems::{IntakeDesk, Systems};
use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::IndexedRandom;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to simulate.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// Cases to submit.
    pub cases: usize,
    /// Share of cases whose matter needs collaboration (0.0–1.0).
    pub collaboration_ratio: f64,
    /// Most cases open at once.
    pub in_flight: usize,
    /// Share of applications that leave out a required material (and are rejected).
    pub missing_material_ratio: f64,
    /// How long to wait for one case before counting it as not completed.
    pub case_timeout: Duration,
    /// Show a progress bar.
    pub progress: bool,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        Self {
            cases: 1000,
            collaboration_ratio: 0.3,
            in_flight: 64,
            missing_material_ratio: 0.05,
            case_timeout: Duration::from_secs(60),
            progress: false,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Cases submitted.
    pub submitted: usize,
    /// Cases that reached `completed`.
    pub completed: usize,
    /// Completed and approved.
    pub approved: usize,
    /// Completed and rejected.
    pub rejected: usize,
    /// Collaboration events by the tier they were handled at.
    pub events_per_tier: BTreeMap<Tier, usize>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Case latencies, sorted ascending.
    pub latencies: Vec<Duration>,
    /// The longest wait between two consecutive steps of any completed case.
    pub slowest_step: Option<SlowStep>,
    /// Departments marked `external` that built-in automatic departments played over the bus
    /// (see [`play_external_departments`]).
    pub played_externally: Vec<DepartmentCode>,
}

/// The longest wait between two steps of a case's history.
#[derive(Debug, Clone)]
pub struct SlowStep {
    /// The case.
    pub case_id: String,
    /// How long.
    pub waited: Duration,
    /// The step before the wait (type, by → to).
    pub after: String,
    /// The step that ended it.
    pub before: String,
}

impl SlowStep {
    /// The longest gap in a case's history.
    fn of(view: &crate::actors::intake::CaseView) -> Option<Self> {
        let describe =
            |h: &crate::actors::intake::HistoryEntry| format!("{} ({} → {})", h.step, h.by, h.to);
        view.history
            .windows(2)
            .filter_map(|pair| {
                let waited = (pair[1].at - pair[0].at).to_std().ok()?;
                Some(Self {
                    case_id: view.case_id.to_string(),
                    waited,
                    after: describe(&pair[0]),
                    before: describe(&pair[1]),
                })
            })
            .max_by_key(|slow| slow.waited)
    }
}

impl Summary {
    /// Completed cases per second.
    pub fn throughput(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The latency below which `q` (0–1) of the completed cases fall.
    pub fn percentile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.latencies.len() as f64) * q).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    /// Whether every submitted case completed.
    pub fn all_completed(&self) -> bool {
        self.completed == self.submitted
    }

    /// The summary as printed by `govfusion simulate`, with the bridge's counters.
    pub fn report(&self, stats: &BridgeStats) -> String {
        use std::fmt::Write as _;
        use std::sync::atomic::Ordering::Relaxed;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let tiers: Vec<_> = self
            .events_per_tier
            .iter()
            .map(|(tier, n)| format!("{tier} {n}"))
            .collect();
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "cases       submitted {}  completed {}  approved {}  rejected {}  not completed {}",
            self.submitted,
            self.completed,
            self.approved,
            self.rejected,
            self.submitted - self.completed
        );
        let events = if tiers.is_empty() {
            "none".into()
        } else {
            tiers.join("  ")
        };
        let _ = writeln!(out, "events      {events}");
        let _ = writeln!(
            out,
            "throughput  {:.0} cases/s over {:.2} s",
            self.throughput(),
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "latency     p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default())
        );
        if let Some(slow) = &self.slowest_step {
            let _ = writeln!(
                out,
                "slowest     {:.2} ms in case {} between {} and {}",
                ms(slow.waited),
                slow.case_id,
                slow.after,
                slow.before
            );
        }
        if !self.played_externally.is_empty() {
            let _ = writeln!(
                out,
                "external    {} played over the bus by built-in automatic departments",
                self.played_externally.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "bus         {} records in {} batches, {} retries, {} failed ({} refused), {} dead-lettered",
            stats.records_sent.load(Relaxed),
            stats.batches_sent.load(Relaxed),
            stats.retries.load(Relaxed),
            stats.records_failed.load(Relaxed),
            stats.records_refused.load(Relaxed),
            stats.dead_lettered.load(Relaxed),
        );
        out
    }
}

/// One case's end.
enum CaseEnd {
    Completed {
        latency: Duration,
        decision: Option<Decision>,
        tiers: Vec<Tier>,
        slowest: Option<SlowStep>,
    },
    Failed(String),
}

/// Makes every department marked `external` a built-in automatic one, and returns their codes.
///
/// No outside system takes part in a simulation, so without this every case that needs an
/// external department would wait out its timeout. The built-in department applies the rules
/// of any automatic department and, like an outside system, reads and writes the bus only: the
/// rest of the city cannot tell the difference.
pub fn play_external_departments(settings: &mut Settings) -> Vec<DepartmentCode> {
    settings
        .departments
        .iter_mut()
        .filter(|d| d.external)
        .map(|d| {
            d.external = false;
            d.mode = Mode::Auto;
            d.code.clone()
        })
        .collect()
}

/// Runs the simulation against running systems, acting through their HTTP `api`.
pub async fn run(systems: &Systems, api: &Api, options: &SimulateOptions) -> Summary {
    let forms = Forms::of(systems, options);
    let staff_running = Arc::new(AtomicBool::new(true));
    let staff = actix::spawn(play_staff(
        systems.clone(),
        api.clone(),
        staff_running.clone(),
    ));

    let bar = if options.progress {
        let bar = ProgressBar::new(options.cases as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} cases ({per_sec})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let started = Instant::now();
    let ends: Vec<CaseEnd> = stream::iter(0..options.cases)
        .map(|_| {
            let (terminal, form) = forms.next();
            let intake = systems.desks.intake.clone();
            let bar = bar.clone();
            let timeout = options.case_timeout;
            async move {
                let end = one_case(api, terminal, intake, form, timeout).await;
                bar.inc(1);
                end
            }
        })
        .buffer_unordered(options.in_flight.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    staff_running.store(false, Ordering::Relaxed);
    let _ = staff.await;

    let mut summary = Summary {
        submitted: options.cases,
        elapsed,
        ..Summary::default()
    };
    for end in ends {
        summary.count(end);
    }
    summary.latencies.sort_unstable();
    summary
}

impl Summary {
    /// Counts one case's end.
    fn count(&mut self, end: CaseEnd) {
        let summary = self;
        match end {
            CaseEnd::Completed {
                latency,
                decision,
                tiers,
                slowest,
            } => {
                if let Some(slow) = slowest {
                    if summary
                        .slowest_step
                        .as_ref()
                        .is_none_or(|s| s.waited < slow.waited)
                    {
                        summary.slowest_step = Some(slow);
                    }
                }
                summary.completed += 1;
                match decision {
                    Some(Decision::Approved) => summary.approved += 1,
                    Some(Decision::Rejected) => summary.rejected += 1,
                    None => {}
                }
                for tier in tiers {
                    *summary.events_per_tier.entry(tier).or_default() += 1;
                }
                summary.latencies.push(latency);
            }
            CaseEnd::Failed(reason) => tracing::warn!(%reason, "case did not complete"),
        }
    }
}

/// What synthetic applications are made of: the city's matters, with and without
/// collaborators, its terminals and its streets.
struct Forms {
    collaborative: Vec<MatterSettings>,
    solo: Vec<MatterSettings>,
    terminals: Vec<TerminalId>,
    regions: Vec<Region>,
    collaboration_ratio: f64,
    missing_material_ratio: f64,
}

impl Forms {
    /// The applications `options` asks for, in the city `systems` run.
    fn of(systems: &Systems, options: &SimulateOptions) -> Self {
        let (collaborative, solo): (Vec<_>, Vec<_>) = systems
            .catalog
            .matters
            .iter()
            .cloned()
            .partition(|m| !m.collaborators.is_empty());
        let regions = systems
            .catalog
            .centres_in_order()
            .into_iter()
            .filter(|c| c.tier == Tier::Street)
            .filter_map(|c| {
                Some(Region {
                    district: c.parent.clone()?,
                    street: c.code.clone(),
                })
            })
            .collect();
        Self {
            collaborative,
            solo,
            terminals: systems.desks.terminals.keys().cloned().collect(),
            regions,
            collaboration_ratio: options.collaboration_ratio,
            missing_material_ratio: options.missing_material_ratio,
        }
    }

    /// A terminal, and a new applicant's account and application: `None` where the city has
    /// no terminal, or no matter or street.
    fn next(&self) -> (Option<TerminalId>, Option<(String, serde_json::Value)>) {
        let mut rng = rand::rng();
        let pool = if (rng.random::<f64>() < self.collaboration_ratio
            && !self.collaborative.is_empty())
            || self.solo.is_empty()
        {
            &self.collaborative
        } else {
            &self.solo
        };
        let form = synthetic_form(&mut rng, pool, &self.regions, self.missing_material_ratio);
        (self.terminals.choose(&mut rng).cloned(), form)
    }
}

/// Submits `form` at `terminal` as a new applicant, through the API, and waits until the
/// intake system says the case completed (or `timeout` passes).
async fn one_case(
    api: &Api,
    terminal: Option<TerminalId>,
    intake: IntakeDesk,
    form: Option<(String, serde_json::Value)>,
    timeout: Duration,
) -> CaseEnd {
    let (Some(terminal), Some((applicant, form))) = (terminal, form) else {
        return CaseEnd::Failed("the config has no terminal, matter or street".into());
    };
    let started = Instant::now();
    let token = api.applicant(applicant);
    let case_id = match api.submit(&terminal, &token, &form).await {
        Ok(case_id) => case_id,
        Err(e) => return CaseEnd::Failed(format!("submission refused: {e}")),
    };
    let waiter = match intake
        .await_completion
        .send(AwaitCompletion(case_id.clone()))
        .await
    {
        Ok(Some(waiter)) => waiter,
        _ => return CaseEnd::Failed(format!("case {case_id} unknown to the intake system")),
    };
    match tokio::time::timeout(timeout, waiter).await {
        Ok(Ok(view)) if view.status == CaseStatus::Completed => CaseEnd::Completed {
            latency: started.elapsed(),
            slowest: SlowStep::of(&view),
            decision: view.approval.map(|a| a.outcome.decision),
            tiers: view.collaboration_events.iter().map(|e| e.tier).collect(),
        },
        Ok(_) => CaseEnd::Failed(format!("case {case_id}: intake stopped")),
        Err(_) => {
            let last = match intake.case.send(GetCase(case_id.clone())).await {
                Ok(Ok(Some(view))) => {
                    let step = view
                        .history
                        .last()
                        .map(|h| format!("{} from {}", h.step, h.by));
                    format!(
                        "status {:?}, last step {}",
                        view.status,
                        step.unwrap_or_default()
                    )
                }
                _ => "no longer known to the intake system".into(),
            };
            CaseEnd::Failed(format!(
                "case {case_id} not completed within {timeout:?} ({last})"
            ))
        }
    }
}

/// A synthetic applicant's account and application for one of `matters`, in one of `regions`;
/// `missing_ratio` of them lack a required material.
fn synthetic_form(
    rng: &mut impl Rng,
    matters: &[MatterSettings],
    regions: &[Region],
    missing_ratio: f64,
) -> Option<(String, serde_json::Value)> {
    let matter = matters.choose(rng)?;
    let region = regions.choose(rng)?.clone();
    let mut materials = matter.required_materials.clone();
    if rng.random::<f64>() < missing_ratio && !materials.is_empty() {
        let drop = rng.random_range(0..materials.len());
        materials.remove(drop);
    }
    let n: u32 = rng.random_range(0..1_000_000);
    let form = serde_json::json!({
        "matter_code": matter.code,
        "applicant": {
            "name": format!("模拟申请人{n:06}"),
            "id_number": crate::domain::identity::sample_resident_number(n),
            "phone": format!("138{n:08}"),
        },
        "region": region,
        "materials": materials,
        "form": { "simulated": true },
    });
    Some((format!("simulated-applicant-{n:06}"), form))
}

/// Officers of each manual department who act on its cases, each signed in once with a token
/// of their own that they keep using, as people at work do: at the default rate limit (100
/// requests a second each) they take more than 3,000 acts a second.
const OFFICERS_PER_DEPARTMENT: usize = 32;

/// How often the staff read their inboxes while there is work, and while there is none: the
/// reads go round the department's officers, so each officer reads far below the rate limit.
const READ_WHILE_BUSY: Duration = Duration::from_millis(5);
const READ_WHILE_IDLE: Duration = Duration::from_millis(20);

/// Plays the staff of every manual department through the API, each department's officer with
/// a token of their own: decides each waiting case (approving it unless a material is missing
/// or a collaborator disagreed) and agrees to each waiting event. A city has many officers, so
/// everything waiting is worked on at once, and an officer who finished an act does not wait
/// for the others' before the inbox is read again.
async fn play_staff(systems: Systems, api: Api, running: Arc<AtomicBool>) {
    // The officers of each department take turns to read its inbox and share its acts, as
    // many people in a department work at once (and each has a rate-limit budget of their own,
    // as they would).
    let staff: Vec<(DepartmentCode, Vec<String>)> = systems
        .catalog
        .departments
        .iter()
        .filter(|d| d.mode == Mode::Manual && systems.desks.departments.contains_key(&d.code))
        .map(|d| {
            let officers = (0..OFFICERS_PER_DEPARTMENT)
                .map(|n| api.officer(&d.code, n))
                .collect();
            (d.code.clone(), officers)
        })
        .collect();
    // Each act under way, by its path: an item still in the inbox while its act is on its way
    // is not acted on twice.
    let mut acting = std::collections::HashSet::new();
    let mut acts = futures::stream::FuturesUnordered::new();
    let mut turn = 0_usize;
    while running.load(Ordering::Relaxed) {
        let mut found = false;
        for (code, officers) in &staff {
            turn += 1;
            let path = format!("/api/v1/departments/{code}/inbox");
            let Ok(inbox) = api.get(&path, &officers[turn % officers.len()]).await else {
                continue;
            };
            for (path, body) in staff_acts(code, &inbox) {
                if !acting.insert(path.clone()) {
                    continue;
                }
                found = true;
                turn += 1;
                let token = &officers[turn % officers.len()];
                let api = &api;
                acts.push(async move {
                    // A refused act leaves the item in the inbox; a later read tries it again.
                    // One taken is never undone, even when the bus is slow to take its message.
                    if let Err(error) = api.post(&path, token, &body).await {
                        tracing::debug!(%path, %error, "a simulated act was refused; tried again next round");
                    }
                    path
                });
            }
        }
        let pause = if found || !acts.is_empty() {
            READ_WHILE_BUSY
        } else {
            READ_WHILE_IDLE
        };
        let next_read = tokio::time::sleep(pause);
        tokio::pin!(next_read);
        loop {
            tokio::select! {
                () = &mut next_read => break,
                Some(done) = acts.next() => {
                    acting.remove(&done);
                }
            }
        }
    }
    while acts.next().await.is_some() {}
}

/// What an officer of `department` does with its `inbox` (as the API shows it): each act's
/// path and body.
fn staff_acts(
    department: &DepartmentCode,
    inbox: &serde_json::Value,
) -> Vec<(String, serde_json::Value)> {
    let list = |key: &str| inbox[key].as_array().cloned().unwrap_or_default();
    let decisions = list("cases")
        .into_iter()
        .filter(|case| case["stage"] == "awaiting_decision")
        .filter_map(|case| {
            let case_id = case["application"]["case_id"].as_str()?.to_owned();
            let missing = case["missing_materials"]
                .as_array()
                .is_some_and(|m| !m.is_empty());
            let objection = case["collaboration_results"]
                .as_array()
                .is_some_and(|results| results.iter().any(|r| r["outcome"] == "disagree"));
            let decision = if missing || objection {
                "reject"
            } else {
                "approve"
            };
            Some((
                format!("/api/v1/departments/{department}/cases/{case_id}/decision"),
                serde_json::json!({ "decision": decision, "opinion": "模拟审查意见" }),
            ))
        });
    let answers = list("collaborations").into_iter().filter_map(|event| {
        let event_id = event["event_id"].as_str()?.to_owned();
        Some((
            format!("/api/v1/collaborations/{event_id}/result"),
            serde_json::json!({ "outcome": "agree", "opinion": "模拟协同意见：同意" }),
        ))
    });
    decisions.chain(answers).collect()
}
