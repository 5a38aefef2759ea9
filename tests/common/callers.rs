//! Who a test acts as. Every test service trusts the development key kept in [`key_file`], and
//! tests act with tokens minted with it, like any client of a service on development keys:
//! there is no other way in.

use govfusion::auth::development::DevelopmentKey;
use govfusion::auth::{RoleClaims, RoleName};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The `iss` and `aud` of the default configuration, which every test service keeps.
pub const ISSUER: &str = "govfusion-development";
/// See [`ISSUER`].
pub const AUDIENCE: &str = "govfusion";

/// The applicant tests submit as unless they say otherwise.
pub const APPLICANT: &str = "applicant-zhang";

/// The development key file every test service and every test token share: one per machine,
/// made by whichever test comes first.
pub fn key_file() -> PathBuf {
    std::env::temp_dir()
        .join("govfusion-tests")
        .join("development-signing-key.pem")
}

/// The key of [`key_file`].
pub fn key() -> &'static DevelopmentKey {
    static KEY: OnceLock<DevelopmentKey> = OnceLock::new();
    KEY.get_or_init(|| {
        DevelopmentKey::load_or_create(&key_file()).expect("Failed to load the test signing key")
    })
}

/// A caller of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No token at all.
    Anonymous,
    /// An applicant, by account.
    Applicant(String),
    /// A terminal, by id.
    Terminal(String),
    /// An officer of a department, by code.
    Officer(String),
    /// A named officer: department code, account, display name.
    NamedOfficer(String, String, String),
    /// A dispatcher of a centre, by code.
    Dispatcher(String),
    /// A supervisor.
    Supervisor,
    /// An operator.
    Operator,
    /// Another govfusion process.
    Service,
}

impl Caller {
    /// [`APPLICANT`].
    pub fn applicant() -> Self {
        Caller::Applicant(APPLICANT.into())
    }

    /// An officer of `department`.
    pub fn officer(department: &str) -> Self {
        Caller::Officer(department.into())
    }

    /// The claims of this caller's token, none for [`Caller::Anonymous`].
    pub fn claims(&self) -> Option<RoleClaims> {
        let (role, sub, terminal, department, centre) = match self {
            Caller::Anonymous => return None,
            Caller::Applicant(sub) => (RoleName::Applicant, sub.clone(), None, None, None),
            Caller::Terminal(id) => (
                RoleName::Terminal,
                format!("terminal-{id}"),
                Some(id.as_str().into()),
                None,
                None,
            ),
            Caller::Officer(code) => (
                RoleName::Officer,
                format!("officer-{code}"),
                None,
                Some(code.as_str().into()),
                None,
            ),
            Caller::NamedOfficer(code, sub, name) => {
                return Some(RoleClaims {
                    sub: sub.clone(),
                    name: Some(name.clone()),
                    role: RoleName::Officer,
                    terminal: None,
                    department: Some(code.as_str().into()),
                    centre: None,
                })
            }
            Caller::Dispatcher(code) => (
                RoleName::Dispatcher,
                format!("dispatcher-{code}"),
                None,
                None,
                Some(code.as_str().into()),
            ),
            Caller::Supervisor => (RoleName::Supervisor, "supervisor".into(), None, None, None),
            Caller::Operator => (RoleName::Operator, "operator".into(), None, None, None),
            Caller::Service => (RoleName::Service, "service".into(), None, None, None),
        };
        Some(RoleClaims {
            name: Some(format!("{sub} (test)")),
            sub,
            role,
            terminal,
            department,
            centre,
        })
    }

    /// A fresh token for this caller, none for [`Caller::Anonymous`].
    pub fn token(&self) -> Option<String> {
        let claims = self.claims()?;
        Some(
            key()
                .mint(ISSUER, AUDIENCE, claims, Duration::from_secs(3600))
                .expect("Failed to mint a test token"),
        )
    }

    /// The caller whose work `path` is: the applicant for terminals and cases, the officer of
    /// the department in the path (or, for a collaboration event, of the department
    /// `event_holder` says holds it), the dispatcher of the centre in the path, a supervisor
    /// for figures, an operator for operations, a service account for the intake feed, nobody
    /// for the public catalogue and health.
    pub fn for_path(path: &str, event_holder: impl FnOnce(&str) -> Option<String>) -> Self {
        let path = path.split('?').next().unwrap_or_default();
        let parts: Vec<&str> = path.trim_start_matches("/api/v1/").split('/').collect();
        match parts.as_slice() {
            ["terminals", _, _, ..] | ["cases", ..] | ["applicants", ..] => Caller::applicant(),
            ["departments", code, _, ..] => Caller::officer(code),
            ["collaborations", event_id, ..] => {
                Caller::Officer(event_holder(event_id).unwrap_or_else(|| "market".into()))
            }
            ["governance", "centers", code, _, ..] => Caller::Dispatcher((*code).into()),
            ["supervision", ..] => Caller::Supervisor,
            ["operations", ..] => Caller::Operator,
            ["intake", "feed"] => Caller::Service,
            _ => Caller::Anonymous,
        }
    }
}

/// `request` with `caller`'s token, if any.
pub fn with_token(request: reqwest::RequestBuilder, caller: &Caller) -> reqwest::RequestBuilder {
    match caller.token() {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}
