//! The service as one unit: the systems plus the HTTP API, with a single shutdown path.

use crate::auth::Authenticator;
use crate::bus::memory::MemoryBus;
use crate::clock::{SharedClock, SystemClock};
use crate::http;
use crate::settings::Settings;
use crate::systems::Systems;
use actix_web::dev::Server;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A built service, not yet serving.
pub struct Application {
    /// The running systems.
    systems: Systems,
    /// The HTTP server, bound, not yet polled.
    server: Server,
    /// The port it is bound to.
    port: u16,
}

impl Application {
    /// Starts every system and binds the HTTP listener. Must run inside an actix system.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Like [`build`](Self::build), with every system reading the time from `clock` (tests move
    /// a [`ManualClock`](crate::clock::ManualClock) to reach deadlines).
    pub async fn build_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let authenticator = Authenticator::from_settings(&settings.auth).await?;
        let systems = Systems::start_with_clock(settings, clock).await?;
        Self::serve(systems, authenticator)
    }

    /// Like [`build_with_clock`](Self::build_with_clock), on an in-memory bus that may have
    /// carried another application before (see [`Systems::start_on`]): a test stops one and
    /// builds the next over the same [`MemoryBus::durable`] to restart the service.
    pub async fn build_on(
        settings: Settings,
        clock: SharedClock,
        bus: MemoryBus,
    ) -> anyhow::Result<Self> {
        let authenticator = Authenticator::from_settings(&settings.auth).await?;
        let systems = Systems::start_on(settings, clock, bus).await?;
        Self::serve(systems, authenticator)
    }

    /// Binds the HTTP listener over running systems, checking tokens with `authenticator`.
    fn serve(systems: Systems, authenticator: Authenticator) -> anyhow::Result<Self> {
        let (server, port) = http::server(systems.clone(), authenticator)?;
        Ok(Self {
            systems,
            server,
            port,
        })
    }

    /// The port the HTTP API listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The running systems.
    pub fn systems(&self) -> &Systems {
        &self.systems
    }

    /// Serves until SIGINT or SIGTERM, then shuts down: stop taking requests (finishing those
    /// in progress), stop consuming, and drain every queued publish to the bus.
    /// The whole shutdown may take `service.shutdown_timeout_ms`; past it, what was left is
    /// logged and the function returns anyway (records not committed are delivered again to
    /// the next consumer). Records that failed for good while draining (the bus was away too
    /// long, or refused them) are logged and make it return an error, so the process exits
    /// non-zero.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` resolves, then shuts down as
    /// [`run_until_stopped`](Self::run_until_stopped) does on a signal (tests stop one
    /// application this way and start the next over the same bus).
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let server = actix_web::rt::spawn(self.server);
        stop.await;
        let limit = Duration::from_millis(self.systems.settings.service.shutdown_timeout_ms);
        tracing::info!(?limit, "shutdown signal received; stopping");
        let systems = self.systems.clone();
        let stopped = tokio::time::timeout(limit, async move {
            handle.stop(true).await;
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "the HTTP server stopped with an error"),
                Err(error) => tracing::error!(%error, "the HTTP server task failed"),
            }
            systems.shutdown().await
        })
        .await;
        if let Ok(undelivered @ 1..) = stopped {
            anyhow::bail!(
                "shutdown could not deliver {undelivered} record(s) to the bus (see the log for \
                 why); their causes are delivered again to the next process where the bus kept \
                 them, and records the bus refused are in dead-letters"
            );
        }
        if stopped.is_err() {
            let stats = &self.systems.bridge_stats;
            tracing::error!(
                ?limit,
                records_sent = stats.records_sent.load(Ordering::Relaxed),
                records_failed = stats.records_failed.load(Ordering::Relaxed),
                "shutdown limit reached; exiting with work left: records not yet committed \
                 will be delivered again, publishes not yet acknowledged are retried by their \
                 causes' redelivery"
            );
            // The process did not deliver everything it was given: an orchestrator (and the
            // person reading its exit status) must be able to tell this from a clean stop.
            anyhow::bail!(
                "shutdown did not finish within service.shutdown_timeout_ms ({limit:?}): \
                 publishes still waiting for the bus were abandoned; their causes are delivered \
                 again to the next process"
            );
        }
        Ok(())
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the service");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
