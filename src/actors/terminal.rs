//! A terminal (办件终端): the PC site, the mobile app or a self-service kiosk. It stamps a
//! submission with where it came from and hands it to the intake system.

use super::intake::{ApplicationForm, Submission, Submit, SubmitRefused};
use crate::catalog::LookupError;
use crate::settings::TerminalSettings;
use actix::prelude::*;

/// A person submits an application at this terminal.
#[derive(Message)]
#[rtype(result = "Result<Submission, SubmitError>")]
pub struct SubmitApplication {
    /// What they filled in.
    pub form: ApplicationForm,
    /// Their account, when they submit it themselves (see `Application::owner`).
    pub owner: Option<String>,
}

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The application names a matter or region the city does not have.
    #[error(transparent)]
    Unknown(#[from] LookupError),
    /// The intake system did not answer, or is starting up.
    #[error("the intake system is unavailable: {0}")]
    Unavailable(String),
    /// The application is too large for the bus (the message says the size and the limit).
    #[error("{0}")]
    TooLarge(String),
}

impl From<SubmitRefused> for SubmitError {
    fn from(refused: SubmitRefused) -> Self {
        match refused {
            SubmitRefused::Unknown(lookup) => SubmitError::Unknown(lookup),
            starting @ SubmitRefused::Starting => SubmitError::Unavailable(starting.to_string()),
            large @ SubmitRefused::TooLarge { .. } => SubmitError::TooLarge(large.to_string()),
        }
    }
}

/// A terminal.
pub struct Terminal {
    /// Its configuration.
    settings: TerminalSettings,
    /// The intake system it submits to.
    intake: Recipient<Submit>,
}

impl Terminal {
    /// A terminal built from config.
    pub fn new(settings: TerminalSettings, intake: Recipient<Submit>) -> Self {
        Self { settings, intake }
    }
}

impl Actor for Terminal {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }
}

impl Handler<SubmitApplication> for Terminal {
    type Result = ResponseFuture<Result<Submission, SubmitError>>;

    fn handle(&mut self, msg: SubmitApplication, _: &mut Self::Context) -> Self::Result {
        let submitted = self.intake.send(Submit {
            form: msg.form,
            owner: msg.owner,
            terminal_id: self.settings.id.clone(),
            channel: self.settings.channel,
        });
        Box::pin(async move {
            match submitted.await {
                Ok(result) => result.map_err(SubmitError::from),
                Err(error) => Err(SubmitError::Unavailable(error.to_string())),
            }
        })
    }
}
