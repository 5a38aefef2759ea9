//! The consumer's librdkafka configuration.

use crate::bus::BusError;
use crate::settings::BusSettings;
use rdkafka::config::ClientConfig;

/// How often librdkafka reports the consumer's statistics (the lag of its partitions).
pub(super) const STATISTICS_INTERVAL_MS: u32 = 5000;

/// Consumer `fetch.max.bytes`: the most one fetch brings (librdkafka: 50 MB). A record larger
/// than this is still fetched whole.
const FETCH_MAX_BYTES: u32 = 4 * 1024 * 1024;
/// Consumer `max.partition.fetch.bytes`: the most one fetch brings of one partition
/// (librdkafka: 1 MiB), so that a fetch takes a little of many partitions.
const PARTITION_FETCH_BYTES: u32 = 256 * 1024;

/// The consumer's configuration: offsets stored by us only, committed by librdkafka. Fails
/// when the SASL password cannot be read.
pub(super) fn consumer_config(
    settings: &BusSettings,
    brokers: &str,
    group: &str,
) -> Result<ClientConfig, BusError> {
    let kafka = &settings.kafka;
    let fetch_wait_max_ms = match settings.kind {
        crate::settings::BusKind::Embedded => kafka.fetch_wait_max_ms.min(5),
        _ => kafka.fetch_wait_max_ms,
    };
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", kafka.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            kafka.heartbeat_interval_ms.to_string(),
        )
        .set("partition.assignment.strategy", &kafka.assignment_strategy)
        .set("fetch.wait.max.ms", fetch_wait_max_ms.to_string())
        .set(
            "queued.max.messages.kbytes",
            kafka.consumer_queue_kbytes.max(1).to_string(),
        )
        .set("fetch.max.bytes", FETCH_MAX_BYTES.to_string())
        .set(
            "max.partition.fetch.bytes",
            PARTITION_FETCH_BYTES.to_string(),
        )
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
    crate::bus::kafka::set_options(&mut config, kafka).map_err(BusError::Subscribe)?;
    Ok(config)
}
