//! A whole simulated city in this process, for `simulate` and the benches that run one: its
//! settings adjusted for a simulation, the city served until a drive of it is done, then
//! stopped.

use super::{Api, SimulateOptions};
use crate::app::Application;
use crate::domain::DepartmentCode;
use crate::settings::Settings;
use crate::systems::Systems;
use anyhow::Context as _;
use std::path::PathBuf;

/// A simulated city's settings from `config`: its own API port, the departments no process
/// plays played by the simulator, and, unless the configuration names a database, a scratch
/// one.
pub struct SimulatedCity {
    /// Its settings, as adjusted for the simulation.
    pub settings: Settings,
    played_externally: Vec<DepartmentCode>,
    /// The scratch database's directory, removed afterwards.
    scratch: Option<PathBuf>,
}

impl SimulatedCity {
    /// The city of `config` (the built-in configuration without one), adjusted for a
    /// simulation.
    pub fn load(config: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let mut settings = Settings::load(config)?;
        let played_externally = super::play_external_departments(&mut settings);
        // The simulated city serves its API on a port of its own, for the simulator's clients.
        settings.http.bind = "127.0.0.1:0".into();
        // Its cases are synthetic: unless the configuration names a database, they go to one
        // of their own, removed afterwards, not into the case repository of a city served
        // from here.
        let scratch = settings.store.url.trim().is_empty().then(|| {
            std::env::temp_dir().join(format!(
                "govfusion-simulate-{}",
                uuid::Uuid::new_v4().simple()
            ))
        });
        if let Some(dir) = &scratch {
            settings.store.data_dir = dir.display().to_string();
        }
        Ok(Self {
            settings,
            played_externally,
            scratch,
        })
    }

    /// Runs the city in this process, drives `options`' cases through it and prints the
    /// summary; `after` runs while the city still serves, with its systems and the summary's
    /// completed cases and throughput. The first of the answer is whether every case
    /// completed.
    pub fn run<T, F, Fut>(self, options: &SimulateOptions, after: F) -> anyhow::Result<(bool, T)>
    where
        F: FnOnce(Systems, usize, f64) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let played_externally = self.played_externally.clone();
        let (all_completed, after) = self.serve(|systems, api| async move {
            let mut summary = super::run(&systems, &api, options).await;
            summary.played_externally = played_externally;
            let after = after(systems.clone(), summary.completed, summary.throughput()).await;
            print!("{}", summary.report(&systems.bridge_stats));
            anyhow::Ok((summary.all_completed(), after))
        })?;
        Ok((all_completed, after?))
    }

    /// Runs the city in this process until `drive`, given its systems and an API client,
    /// is done, then stops it and removes the scratch database.
    pub fn serve<T, F, Fut>(self, drive: F) -> anyhow::Result<T>
    where
        F: FnOnce(Systems, Api) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let Self {
            settings, scratch, ..
        } = self;
        let outcome = actix_rt::System::new().block_on(async move {
            let app = Application::build(settings)
                .await
                .context("Failed to start the systems")?;
            let systems = app.systems().clone();
            let api = Api::new(app.port(), &systems.settings)?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let serving = actix_rt::spawn(app.run_until(async move {
                let _ = stopped.await;
            }));
            systems.ready(std::time::Duration::from_secs(120)).await?;
            let driven = drive(systems, api).await;
            let _ = stop.send(());
            serving
                .await
                .context("the simulated city stopped abnormally")??;
            driven
        });
        if let Some(dir) = scratch {
            // Best effort: a leftover directory in the temp dir harms nothing.
            let _ = std::fs::remove_dir_all(dir);
        }
        outcome
    }
}
