//! The embedded bus: librdkafka's mock cluster, started inside the process, so that the real
//! Kafka code path (producer, consumer groups, offsets) runs without a broker to install.
//!
//! The mock cluster is not `Send`; it lives on a thread of its own, which also serves the fault
//! injections tests ask for. Limits: it keeps at most 5 MiB per partition and silently drops
//! older records, and nothing survives the process.

use rdkafka::bindings as rdsys;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::ffi::{CStr, CString};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A fault to inject into the mock cluster.
#[derive(Debug, Clone)]
pub enum MockFault {
    /// The next requests of this kind fail with these errors, one each.
    RequestErrors(RDKafkaApiKey, Vec<RDKafkaRespErr>),
    /// Every broker disconnects and refuses connections.
    BrokersDown,
    /// Every broker accepts connections again.
    BrokersUp,
}

enum Command {
    Fault(MockFault, mpsc::Sender<Result<(), String>>),
    Stop,
}

/// A running mock cluster. Dropping it stops the cluster.
pub struct EmbeddedCluster {
    bootstrap: String,
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedCluster {
    /// Starts a one-broker mock cluster with `topics`, each of `partitions` partitions.
    pub fn start(topics: Vec<String>, partitions: i32) -> Result<Self, String> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (commands, command_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("govfusion-embedded-kafka".into())
            .spawn(move || host(topics, partitions, ready_tx, command_rx))
            .map_err(|e| format!("cannot start the embedded cluster's thread: {e}"))?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| "the embedded cluster's thread died while starting".to_owned())??;
        Ok(Self {
            bootstrap,
            commands,
            thread: Some(thread),
        })
    }

    /// The cluster's bootstrap servers.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Injects a fault.
    pub fn inject(&self, fault: MockFault) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(Command::Fault(fault, tx))
            .map_err(|_| "the embedded cluster has stopped".to_owned())?;
        rx.recv()
            .map_err(|_| "the embedded cluster has stopped".to_owned())?
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The cluster's thread: creates it, reports its address, serves commands until told to stop.
fn host(
    topics: Vec<String>,
    partitions: i32,
    ready: mpsc::Sender<Result<String, String>>,
    commands: mpsc::Receiver<Command>,
) {
    let client: BaseProducer = match ClientConfig::new().create() {
        Ok(client) => client,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot create the mock cluster's client: {e}")));
            return;
        }
    };
    // SAFETY: the client outlives the cluster (both live until the end of this function, and
    // the cluster is destroyed first); every pointer passed below is valid for the call.
    let cluster = unsafe { rdsys::rd_kafka_mock_cluster_new(client.client().native_ptr(), 1) };
    if cluster.is_null() {
        let _ = ready.send(Err("librdkafka could not create a mock cluster".into()));
        return;
    }
    // SAFETY: `cluster` is a live mock cluster (checked above) until destroyed at the end.
    unsafe {
        // Consumer groups join at once instead of after librdkafka's default 3 s delay.
        rdsys::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
    }
    for topic in &topics {
        let Ok(name) = CString::new(topic.as_str()) else {
            continue;
        };
        // SAFETY: as above; `name` is a valid C string for the duration of the call.
        let err =
            unsafe { rdsys::rd_kafka_mock_topic_create(cluster, name.as_ptr(), partitions, 1) };
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            tracing::warn!(topic, ?err, "mock cluster could not create topic");
        }
    }
    // SAFETY: as above; the returned string is owned by the cluster and copied at once.
    let bootstrap = unsafe { CStr::from_ptr(rdsys::rd_kafka_mock_cluster_bootstraps(cluster)) }
        .to_string_lossy()
        .into_owned();
    let _ = ready.send(Ok(bootstrap));

    while let Ok(Command::Fault(fault, done)) = commands.recv() {
        // SAFETY: `cluster` is live; the error array outlives the call.
        let result = unsafe {
            match &fault {
                MockFault::RequestErrors(api, errors) => {
                    rdsys::rd_kafka_mock_push_request_errors_array(
                        cluster,
                        *api as i16,
                        errors.len(),
                        errors.as_ptr(),
                    );
                    RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
                }
                MockFault::BrokersDown => rdsys::rd_kafka_mock_broker_set_down(cluster, -1),
                MockFault::BrokersUp => rdsys::rd_kafka_mock_broker_set_up(cluster, -1),
            }
        };
        let _ = done.send(if result == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            Ok(())
        } else {
            Err(format!("mock cluster refused {fault:?}: {result:?}"))
        });
    }
    // SAFETY: `cluster` is live and destroyed exactly once, before `client` is dropped.
    unsafe { rdsys::rd_kafka_mock_cluster_destroy(cluster) };
    drop(client);
}
