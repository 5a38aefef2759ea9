//! The `govfusion` command: serve, simulate, bench, token, audit verify, check-config, openapi.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use govfusion::app::Application;
use govfusion::domain::Mode;
use govfusion::settings::{BusKind, KeySource, Role, Settings};
use govfusion::simulate::{self, SimulateOptions, SimulatedCity};
use govfusion::telemetry::{ExportSetupError, Otlp};
use std::path::PathBuf;
use std::process::ExitCode;

/// govfusion: one-stop service (一网通办) fused with three-tier governance (一网统管) over a bus.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service until SIGINT or SIGTERM.
    Serve {
        /// TOML config file (default: the built-in config/default.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The systems this process runs, comma-separated: all, intake, governance,
        /// department:<code> (default: `service.roles` from config, itself `all`).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<Role>,
    },
    /// Run the whole city in process, drive synthetic cases through it and print a summary.
    Simulate {
        /// Cases to submit.
        #[arg(long, default_value_t = 1000)]
        cases: usize,
        /// Share of cases whose matter needs collaboration, 0.0 to 1.0.
        #[arg(long, default_value_t = 0.3)]
        collaboration_ratio: f64,
        /// Most cases open at once.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
        /// TOML config file (default: the built-in config/default.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Measure the bridge's produce throughput against raw rdkafka on the configured Kafka bus;
    /// with `--ceiling`, the whole service against raw clients moving the same records.
    Bench {
        /// Run a simulation of `--cases` cases on the configured Kafka bus, then move the
        /// records it wrote through the same consumer groups and partitions with raw rdkafka
        /// clients on the same broker, and print the service's share of that ceiling.
        #[arg(long)]
        ceiling: bool,
        /// Run the city on the configured bus with every department manual and no staff,
        /// submit `--cases` cases in two halves and print the resident memory each open case
        /// costs.
        #[arg(long, conflicts_with = "ceiling")]
        resident: bool,
        /// Run a simulation of `--cases` cases on the configured bus and print the resident
        /// memory once every case completed and the process settled: run it with two numbers
        /// of cases to see what a completed case leaves behind.
        #[arg(long, conflicts_with_all = ["ceiling", "resident"])]
        completed: bool,
        /// With `--resident` or `--completed`: end the process as soon as the last reading is
        /// printed, the city still running, instead of stopping it first. A heap profiler then
        /// reports what the settled city held as never freed (heaptrack's "leaked"). The
        /// scratch database is left behind, in the system's temporary directory.
        #[arg(long)]
        exit_holding: bool,
        /// With `--ceiling`, `--resident` or `--completed`: cases to submit.
        #[arg(long, default_value_t = 2000)]
        cases: usize,
        /// With `--ceiling` or `--completed`: most cases open at once; with `--resident`, most
        /// submissions at once.
        #[arg(long, default_value_t = 256)]
        open_cases: usize,
        /// Records each side produces.
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        /// Envelopes per publish through the bridge.
        #[arg(long, default_value_t = 100)]
        chunk: usize,
        /// Publishes outstanding at once through the bridge (the default hands it every record
        /// at once, as the raw side enqueues every record at once).
        #[arg(long, default_value_t = 1000)]
        in_flight: usize,
        /// TOML config file (default: the built-in config/default.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Mint a bearer token with the development key (`auth.development_keys`), for trying the
    /// API: `curl -H "Authorization: Bearer $(govfusion token --role officer --department
    /// urban_management --sub officer-li --name 李四)" …`. Refused for any other key source:
    /// there, tokens come from the identity provider.
    Token {
        /// applicant, terminal, officer, dispatcher, supervisor, operator or service.
        #[arg(long)]
        role: govfusion::auth::RoleName,
        /// Who (the token's `sub`).
        #[arg(long)]
        sub: String,
        /// Display name recorded beside `sub` on what they do.
        #[arg(long)]
        name: Option<String>,
        /// For a terminal: its id.
        #[arg(long)]
        terminal: Option<String>,
        /// For an officer: the department code.
        #[arg(long)]
        department: Option<String>,
        /// For a dispatcher: the centre code.
        #[arg(long)]
        centre: Option<String>,
        /// How long the token is valid, in seconds.
        #[arg(long, default_value_t = 8 * 3600)]
        ttl_secs: u64,
        /// TOML config file (default: the built-in config/default.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Read the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Validate a config file and print what it describes.
    CheckConfig {
        /// TOML config file (default: the built-in config/default.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the HTTP API's OpenAPI 3.1 document, as `GET /api/v1/openapi.json` answers it:
    /// `govfusion openapi > docs/openapi.json` brings the committed one up to date.
    Openapi,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Read the whole audit topic of the configured Kafka cluster and check every writer's hash
    /// chain. Prints the records per writer and exits 0 when every chain holds; names the first
    /// broken link (writer, seq, what is wrong) and exits 2 when one does not; exits 1 when the
    /// topic cannot be read.
    Verify {
        /// TOML config file (default: the built-in config/default.toml); `bus.kind` must be
        /// `kafka`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Accept chains that start past seq 1: the broker's retention removed their oldest
        /// records. A gap after a chain's first record is still a broken link.
        #[arg(long)]
        after_retention: bool,
        /// How long reading the topic to its end may take, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
    },
}

impl Command {
    /// The configuration file the command names, if any.
    fn config(&self) -> Option<&std::path::Path> {
        match self {
            Command::Serve { config, .. }
            | Command::Simulate { config, .. }
            | Command::Bench { config, .. }
            | Command::Token { config, .. }
            | Command::Audit {
                command: AuditCommand::Verify { config, .. },
            }
            | Command::CheckConfig { config } => config.as_deref(),
            Command::Openapi => None,
        }
    }
}

fn main() -> ExitCode {
    let huge_pages =
        without_transparent_huge_pages(std::env::var_os("MIMALLOC_ALLOW_THP").is_some());
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    let format = govfusion::logging::format_of(cli.command.config());
    let otlp = match exporter(&cli.command) {
        Ok(otlp) => otlp,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    govfusion::logging::init(format, default_level, otlp.as_ref());
    if let Err(error) = huge_pages {
        tracing::warn!(%error, "transparent huge pages stay allowed for this process");
    }
    let code = match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            // One `error:` line per problem: a config may break several rules at once.
            for line in format!("{error:#}").lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    };
    // After SIGTERM too: `serve` has returned, so the last spans are posted before the exit.
    if let Some(otlp) = otlp {
        otlp.shutdown();
    }
    code
}

/// `serve`'s span exporter when `[telemetry] otlp_endpoint` is set; none for the other
/// commands, and none when the configuration cannot be read (the command says why).
fn exporter(command: &Command) -> Result<Option<Otlp>, ExportSetupError> {
    let Command::Serve { config, roles } = command else {
        return Ok(None);
    };
    let loaded = Settings::load_adjusted(config.as_deref(), |settings| {
        if !roles.is_empty() {
            settings.service.roles.clone_from(roles);
        }
    });
    let Ok(settings) = loaded else {
        return Ok(None);
    };
    Otlp::start(&settings.telemetry.otlp_endpoint, &settings.service.roles)
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { config, roles } => serve(config, roles),
        Command::Simulate {
            cases,
            collaboration_ratio,
            in_flight,
            config,
        } => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&collaboration_ratio),
                "--collaboration-ratio must be between 0.0 and 1.0, got {collaboration_ratio}"
            );
            let options = SimulateOptions {
                cases,
                collaboration_ratio,
                in_flight,
                progress: true,
                ..SimulateOptions::default()
            };
            run_simulation(config, options)
        }
        Command::Bench {
            ceiling: true,
            cases,
            open_cases,
            config,
            ..
        } => run_ceiling(
            config,
            SimulateOptions {
                cases,
                in_flight: open_cases,
                ..SimulateOptions::default()
            },
        ),
        Command::Bench {
            completed: true,
            cases,
            open_cases,
            exit_holding,
            config,
            ..
        } => run_completed(
            config,
            SimulateOptions {
                cases,
                in_flight: open_cases,
                ..SimulateOptions::default()
            },
            exit_holding,
        ),
        Command::Bench {
            resident: true,
            cases,
            open_cases,
            exit_holding,
            config,
            ..
        } => run_resident(
            config,
            SimulateOptions {
                cases,
                in_flight: open_cases,
                ..SimulateOptions::default()
            },
            exit_holding,
        ),
        Command::Bench {
            records,
            chunk,
            in_flight,
            config,
            ..
        } => bench(
            config,
            govfusion::bench::BenchOptions {
                records,
                chunk,
                in_flight,
            },
        ),
        Command::Token {
            role,
            sub,
            name,
            terminal,
            department,
            centre,
            ttl_secs,
            config,
        } => {
            let claims = govfusion::auth::RoleClaims {
                sub,
                name,
                role,
                terminal: terminal.map(Into::into),
                department: department.map(Into::into),
                centre: centre.map(Into::into),
            };
            mint_token(config, claims, ttl_secs)
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    config,
                    after_retention,
                    timeout_secs,
                },
        } => verify_audit(config, after_retention, timeout_secs),
        Command::CheckConfig { config } => check_config(config),
        Command::Openapi => {
            print!("{}", govfusion::http::openapi::document_json()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `bench`: the bridge's produce rate against raw rdkafka's on the configured Kafka bus.
fn bench(
    config: Option<PathBuf>,
    options: govfusion::bench::BenchOptions,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config.as_deref())?;
    // Printed with the report: a bus the bench refuses (the memory bus) gets no line.
    let bus = govfusion::bench::bus_line(&settings.bus);
    let report = actix_rt::System::new()
        .block_on(async move { govfusion::bench::run(&settings, &options).await })?;
    print!("{bus}{report}");
    Ok(ExitCode::SUCCESS)
}

/// `serve`: the service until a signal; an error (undelivered records included) exits 1.
fn serve(config: Option<PathBuf>, roles: Vec<Role>) -> anyhow::Result<ExitCode> {
    // The roles of the command line replace the configuration's before it is checked: what a
    // process must be told depends on what it runs.
    let settings = Settings::load_adjusted(config.as_deref(), |settings| {
        if !roles.is_empty() {
            settings.service.roles = roles;
        }
    })?;
    actix_rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        tracing::info!(port = app.port(), "govfusion is serving");
        app.run_until_stopped().await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `simulate`: the whole city in this process; fails unless every case completed.
fn run_simulation(config: Option<PathBuf>, options: SimulateOptions) -> anyhow::Result<ExitCode> {
    let city = SimulatedCity::load(config.as_deref())?;
    let (all_completed, ()) = city.run(&options, |_, _, _| async { Ok(()) })?;
    Ok(exit_code(all_completed))
}

/// `bench --ceiling`: a simulation on topics of its own, then its records moved through the
/// same consumer groups by raw clients on the same broker (see `govfusion::bench::ceiling`);
/// fails unless every case completed.
fn run_ceiling(config: Option<PathBuf>, options: SimulateOptions) -> anyhow::Result<ExitCode> {
    let mut city = SimulatedCity::load(config.as_deref())?;
    let bus = &mut city.settings.bus;
    anyhow::ensure!(
        bus.kind != BusKind::Memory,
        "bench --ceiling measures Kafka: set bus.kind to `kafka` or `embedded`"
    );
    // Topics of this run alone: what is read back afterwards is what this run wrote.
    let run = uuid::Uuid::new_v4().simple().to_string();
    bus.topic_prefix = format!("{}-ceiling-{}", bus.topic_prefix, &run[..8]);
    print!("{}", govfusion::bench::bus_line(bus));
    let (all_completed, ceiling) = city.run(&options, |systems, completed, rate| async move {
        // The raw clients run while the city idles.
        let bus = systems
            .kafka_bus
            .clone()
            .context("bench --ceiling needs the kafka or embedded bus")?;
        let groups = systems.consumer_groups().await;
        govfusion::bench::ceiling::measure(&bus, &systems.settings.bus, &groups, completed, rate)
            .await
    })?;
    print!("{ceiling}");
    Ok(exit_code(all_completed))
}

/// `bench --resident`: the city with every department manual and unstaffed, the resident
/// memory read before, between and after two halves of `options.cases` submissions (see
/// `govfusion::simulate::resident`).
fn run_resident(
    config: Option<PathBuf>,
    options: SimulateOptions,
    exit_holding: bool,
) -> anyhow::Result<ExitCode> {
    let mut city = SimulatedCity::load(config.as_deref())?;
    for department in &mut city.settings.departments {
        department.mode = Mode::Manual;
    }
    let resident = city.serve(|systems, api| async move {
        let resident = simulate::resident::measure(&systems, &api, &options).await?;
        if exit_holding {
            exit_now(&resident.to_string(), true);
        }
        Ok(resident)
    })?;
    print!("{resident}");
    Ok(ExitCode::SUCCESS)
}

/// Prints `reading` and ends the process at once, its city still running (`bench
/// --exit-holding`), with status 0 when it `succeeded`, else 1.
fn exit_now(reading: &str, succeeded: bool) -> ! {
    use std::io::Write;
    print!("{reading}");
    let _ = std::io::stdout().flush();
    std::process::exit(if succeeded { 0 } else { 1 })
}

/// `bench --completed`: a simulation, then the resident memory once the process settled with
/// every case completed; fails unless every case completed.
fn run_completed(
    config: Option<PathBuf>,
    options: SimulateOptions,
    exit_holding: bool,
) -> anyhow::Result<ExitCode> {
    let city = SimulatedCity::load(config.as_deref())?;
    let reading = |completed: usize, bytes: u64| {
        format!(
            "settled     {:.1} MiB resident after {completed} completed cases\n",
            bytes as f64 / (1024.0 * 1024.0)
        )
    };
    let cases = options.cases;
    let (all_completed, (completed, bytes)) = city.run(&options, |_, completed, _| async move {
        let bytes = simulate::resident::settled().await?;
        if exit_holding {
            exit_now(&reading(completed, bytes), completed == cases);
        }
        Ok((completed, bytes))
    })?;
    print!("{}", reading(completed, bytes));
    Ok(exit_code(all_completed))
}

/// Success when every case of a simulation completed, else failure.
fn exit_code(all_completed: bool) -> ExitCode {
    match all_completed {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    }
}

/// `token`: a token for `claims` signed with the development key of the configuration.
fn mint_token(
    config: Option<PathBuf>,
    claims: govfusion::auth::RoleClaims,
    ttl_secs: u64,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config.as_deref())?;
    let Some(KeySource::Development(path)) = settings.auth.key_source() else {
        anyhow::bail!(
            "this configuration does not use development keys (auth.development_keys): tokens \
             come from its identity provider"
        );
    };
    claims.clone().principal()?;
    govfusion::auth::check_scope(&claims, &settings)?;
    let key = govfusion::auth::development::DevelopmentKey::load_or_create(&path)?;
    let auth = &settings.auth;
    let token = key.mint(
        &auth.issuer,
        &auth.audience,
        claims,
        std::time::Duration::from_secs(ttl_secs),
    )?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// `audit verify`: every writer's chain on the audit topic.
fn verify_audit(
    config: Option<PathBuf>,
    after_retention: bool,
    timeout_secs: u64,
) -> anyhow::Result<ExitCode> {
    use govfusion::audit::{verify_configured, Start};
    let settings = Settings::load(config.as_deref())?;
    let start = if after_retention {
        Start::AfterRetention
    } else {
        Start::First
    };
    let limit = std::time::Duration::from_secs(timeout_secs);
    let verified = actix_rt::System::new()
        .block_on(async move { verify_configured(&settings, start, limit).await })?;
    match verified {
        Ok(summary) => {
            print!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            eprintln!("audit trail BROKEN: {broken}");
            Ok(ExitCode::from(2))
        }
    }
}

/// `check-config`: loads and validates a configuration and says what it describes.
fn check_config(config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config.as_deref())?;
    println!(
        "config OK: {} departments, {} matters ({} with collaboration), {} districts, {} streets, {} terminals; bus {:?}, http {}",
        settings.departments.len(),
        settings.matters.len(),
        settings.matters.iter().filter(|m| !m.collaborators.is_empty()).count(),
        settings.governance.districts.len(),
        settings.governance.streets.len(),
        settings.terminals.len(),
        settings.bus.kind,
        settings.http.bind,
    );
    Ok(ExitCode::SUCCESS)
}

// glibc malloc spent a third of the simulator's time in malloc/free under many small,
// short-lived allocations (envelopes, futures); mimalloc halves that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process, unless the operator set
/// `MIMALLOC_ALLOW_THP` (`operator_chose`; mimalloc then follows it, as its documentation
/// says). mimalloc asks the kernel for huge pages on its arenas; the kernel then zeroes two
/// megabytes on the first touch of each, again after every purge, and the service's heap
/// churns: on the memory bus the zeroing took an eighth of the process's CPU, and with huge
/// pages off the process handles about a fifth more cases a second, with less CPU and less
/// memory (README, "Performance", "Transparent huge pages off"). The setting applies to every
/// page faulted from now on, so it takes effect for the arenas mimalloc reserved before `main`.
fn without_transparent_huge_pages(operator_chose: bool) -> std::io::Result<()> {
    if operator_chose {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `PR_SET_THP_DISABLE` takes plain integers and touches no memory of ours.
        if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_takes_no_transparent_huge_pages() {
        super::without_transparent_huge_pages(false).expect("prctl(PR_SET_THP_DISABLE)");
        // SAFETY: as above; `PR_GET_THP_DISABLE` only reads the flag.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) },
            1
        );
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        assert!(status.contains("THP_enabled:\t0"), "{status}");
    }
}
