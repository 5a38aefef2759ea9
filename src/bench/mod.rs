//! `govfusion bench`: the bridge's produce throughput against raw rdkafka producing the same
//! records to the same broker in the same run.
//!
//! Each side sends N `application.published` envelopes (distinct case ids, ~1 KiB each) and
//! stops the clock when the broker acknowledged the last one. Raw rdkafka, all at once: one
//! `FutureProducer`, every record enqueued with `send_result`, then every delivery awaited. Raw
//! rdkafka, the same publishes: the records in chunks of `chunk`, `in_flight` chunks outstanding,
//! each awaiting its own deliveries. Bridge: the same chunks as `Publish` messages, `in_flight`
//! outstanding, through the bridge actor and the Kafka bus (in order, with retries).
//!
//! [`ceiling`]: the service's whole topology against raw clients (`bench --ceiling`).

pub mod ceiling;

use crate::bus::bridge::{envelope_record, Bridge};
use crate::bus::kafka::{producer_config, KafkaBus};
use crate::crypto::Keyring;
use crate::domain::{
    Applicant, Application, CaseId, Channel, Envelope, EnvelopeHead, FormFields, MessageType,
    Region, SystemId,
};
use crate::port::Publish;
use crate::settings::{BusKind, BusSettings, Settings};
use actix::prelude::*;
use anyhow::Context as _;
use futures::stream::{self, StreamExt};
use rdkafka::producer::FutureProducer;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Records per side.
    pub records: usize,
    /// Envelopes per `Publish` on the bridge side.
    pub chunk: usize,
    /// `Publish` messages outstanding at once.
    pub in_flight: usize,
}

/// The measurement.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Records per side.
    pub records: usize,
    /// Raw rdkafka's time, every record enqueued at once.
    pub raw: Duration,
    /// Raw rdkafka's time with the bridge side's publishes: `chunk` records each, `in_flight`
    /// outstanding.
    pub raw_paced: Duration,
    /// The bridge's time.
    pub bridge: Duration,
}

impl BenchReport {
    /// Records per second in `time`.
    fn rate(&self, time: Duration) -> f64 {
        self.records as f64 / time.as_secs_f64().max(f64::EPSILON)
    }

    /// Bridge throughput as a share of raw rdkafka's with every record enqueued at once.
    pub fn ratio(&self) -> f64 {
        self.rate(self.bridge) / self.rate(self.raw).max(f64::EPSILON)
    }

    /// Bridge throughput as a share of raw rdkafka's with the same publishes.
    pub fn paced_ratio(&self) -> f64 {
        self.rate(self.bridge) / self.rate(self.raw_paced).max(f64::EPSILON)
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = |f: &mut std::fmt::Formatter<'_>, name: &str, time: Duration| {
            writeln!(
                f,
                "{name:<24}{:>10.0} records/s  ({} records in {:.2} s)",
                self.rate(time),
                self.records,
                time.as_secs_f64()
            )
        };
        line(f, "raw rdkafka, all at once", self.raw)?;
        line(f, "raw, the same publishes", self.raw_paced)?;
        line(f, "bridge", self.bridge)?;
        writeln!(
            f,
            "ratio {:.2} (bridge / raw, the same publishes), {:.2} (bridge / raw, all at once)",
            self.paced_ratio(),
            self.ratio()
        )
    }
}

/// The first line of a bench's report: which bus it ran on (not labelled `bus`, which the
/// simulation's summary uses for its records). Both benches run on the configured
/// bus, which is the embedded cluster unless the configuration or the environment names a
/// broker, and a figure read without this line is easily taken for a broker's.
pub fn bus_line(settings: &BusSettings) -> String {
    match settings.kind {
        BusKind::Kafka => format!("measured on kafka at {}\n", settings.brokers),
        BusKind::Embedded => "measured on embedded cluster, in this process (for a broker: \
                              GOVFUSION__BUS__KIND=kafka GOVFUSION__BUS__BROKERS=host:port)\n"
            .to_owned(),
        BusKind::Memory => "measured on memory bus\n".to_owned(),
    }
}

/// `n` `application.published` envelopes, each applicant sealed with `keyring` as on the
/// real path (sealing is part of what the service does per application, not of the bridge).
fn envelopes(n: usize, keyring: &Keyring) -> anyhow::Result<Vec<Envelope>> {
    let form = FormFields::of(
        &serde_json::json!({ "shop_name": "基准测试餐馆", "area_m2": 120, "seats": 40 }),
    )?;
    (0..n)
        .map(|i| {
            let case_id = CaseId::generate();
            let application = Application {
                case_id: case_id.clone(),
                matter_code: "food_business_licence".into(),
                applicant: Applicant {
                    name: format!("基准申请人{i:07}"),
                    id_number: crate::domain::identity::sample_resident_number(
                        u32::try_from(i).unwrap_or_default(),
                    ),
                    phone: format!("139{i:08}"),
                },
                region: Region {
                    district: "500103".into(),
                    street: "500103001".into(),
                },
                materials: vec![
                    "business_licence".into(),
                    "premises_proof".into(),
                    "food_safety_plan".into(),
                ],
                form: form.clone(),
                terminal_id: "pc-web".into(),
                channel: Channel::Pc,
                submitted_at: chrono::Utc::now(),
                owner: None,
            }
            .sealed(keyring)?;
            Ok(Envelope::new(
                EnvelopeHead {
                    id: crate::domain::message_ids::published(&case_id),
                    kind: MessageType::ApplicationPublished,
                    case_id,
                    source: SystemId::Governance("500000".into()),
                    target: SystemId::Department("market".into()),
                    trace_id: uuid::Uuid::new_v4().simple().to_string(),
                },
                &application,
            ))
        })
        .collect()
}

/// Runs both sides against the configured Kafka (or embedded) bus. Must run inside an actix
/// system.
pub async fn run(settings: &Settings, options: &BenchOptions) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(
        settings.bus.kind != BusKind::Memory,
        "bench measures Kafka: set bus.kind to `kafka` or `embedded`"
    );
    let mut bus_settings = settings.bus.clone();
    bus_settings.topic_prefix = format!("{}-bench", settings.bus.topic_prefix);
    let bus = KafkaBus::connect(&bus_settings)
        .await
        .context("Failed to connect to Kafka")?;

    let producer: FutureProducer = producer_config(&bus_settings, bus.brokers())?
        .create()
        .context("Failed to create the raw producer")?;
    let bridge = Bridge::new(std::sync::Arc::new(bus.clone()), settings.bridge.clone()).start();
    // Warm both up (connections, metadata, topic leaders) before the clocks run.
    let keyring = Keyring::from_settings(&settings.crypto)?;
    let warm_up = (options.records / 10).clamp(1, 1000);
    produce_raw(&producer, &bus, &envelopes(warm_up, &keyring)?).await?;
    produce_raw_paced(&producer, &bus, &envelopes(warm_up, &keyring)?, options).await?;
    produce_bridge(&bridge, envelopes(warm_up, &keyring)?, options).await?;

    let raw_envelopes = envelopes(options.records, &keyring)?;
    let started = Instant::now();
    produce_raw(&producer, &bus, &raw_envelopes).await?;
    let raw = started.elapsed();

    let paced_envelopes = envelopes(options.records, &keyring)?;
    let started = Instant::now();
    produce_raw_paced(&producer, &bus, &paced_envelopes, options).await?;
    let raw_paced = started.elapsed();

    let bridge_envelopes = envelopes(options.records, &keyring)?;
    let started = Instant::now();
    produce_bridge(&bridge, bridge_envelopes, options).await?;
    let bridge_time = started.elapsed();
    bus.flush().await;
    Ok(BenchReport {
        records: options.records,
        raw,
        raw_paced,
        bridge: bridge_time,
    })
}

/// Raw rdkafka: enqueue every record, then await every delivery.
async fn produce_raw(
    producer: &FutureProducer,
    bus: &KafkaBus,
    envelopes: &[Envelope],
) -> anyhow::Result<()> {
    let records: Vec<_> = envelopes.iter().map(envelope_record).collect();
    ceiling::produce(producer, bus, &records).await
}

/// Raw rdkafka with the bridge side's publishes: chunks of `chunk` records, `in_flight`
/// outstanding, each awaiting its own deliveries.
async fn produce_raw_paced(
    producer: &FutureProducer,
    bus: &KafkaBus,
    envelopes: &[Envelope],
    options: &BenchOptions,
) -> anyhow::Result<()> {
    let records: Vec<_> = envelopes.iter().map(envelope_record).collect();
    let results: Vec<_> = stream::iter(records.chunks(options.chunk.max(1)))
        .map(|chunk| ceiling::produce(producer, bus, chunk))
        .buffer_unordered(options.in_flight.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// The bridge: `Publish` messages of `chunk` envelopes, `in_flight` outstanding.
async fn produce_bridge(
    bridge: &Addr<Bridge>,
    envelopes: Vec<Envelope>,
    options: &BenchOptions,
) -> anyhow::Result<()> {
    let chunks: Vec<Vec<Arc<Envelope>>> = crate::port::shared(envelopes)
        .chunks(options.chunk.max(1))
        .map(<[Arc<Envelope>]>::to_vec)
        .collect();
    let results: Vec<_> = stream::iter(chunks)
        .map(|chunk| bridge.send(Publish(chunk, None)))
        .buffer_unordered(options.in_flight.max(1))
        .collect()
        .await;
    for result in results {
        result
            .context("bridge stopped")?
            .context("bridge publish failed")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::bus_line;
    use crate::settings::{BusKind, Settings};

    #[test]
    fn a_report_names_the_bus_it_ran_on_and_how_to_name_a_broker_instead() {
        // Arrange
        let mut bus = Settings::load(None)
            .expect("the built-in configuration")
            .bus;
        bus.brokers = "10.0.0.7:9092".into();

        // Act
        let lines: Vec<String> = [BusKind::Embedded, BusKind::Kafka]
            .into_iter()
            .map(|kind| {
                bus.kind = kind;
                bus_line(&bus)
            })
            .collect();

        // Assert
        assert!(
            lines[0].starts_with("measured on embedded cluster"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains("GOVFUSION__BUS__KIND=kafka"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[1], "measured on kafka at 10.0.0.7:9092\n");
    }
}
