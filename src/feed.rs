//! The intake feed as the city centre reads it (DESIGN.md step 2): new applications after a
//! cursor, oldest first. In one process the feed is a request to the intake actor; across
//! processes it is the intake process's `GET /api/v1/intake/feed`.

use crate::actors::intake::{FedApplication, TakeNewApplications};
use crate::auth::service_token::ServiceToken;
use crate::bus::Share;
use crate::http::intake_feed::INTAKE_INSTANCE_HEADER;
use actix::Recipient;
use std::time::Duration;

/// How long one request for new applications waits when there are none.
pub const LONG_POLL: Duration = Duration::from_secs(10);

/// Where the city centre reads new applications.
#[derive(Clone)]
pub enum FeedSource {
    /// The intake actor of this process.
    Local(Recipient<TakeNewApplications>),
    /// The intake process's HTTP feed at this base URL.
    Http {
        /// A client kept for every request.
        client: reqwest::Client,
        /// E.g. `http://intake-host:8080`.
        base_url: String,
        /// The bearer token shown (role `service`).
        token: ServiceToken,
        /// Which of the city's intake processes must answer there.
        instance: Share,
    },
}

impl FeedSource {
    /// The HTTP feed of the intake process at `base_url`, read with `token`; the process
    /// answering must be intake instance `instance` (see
    /// [`INTAKE_INSTANCE_HEADER`](crate::http::intake_feed::INTAKE_INSTANCE_HEADER)).
    pub fn http(base_url: &str, token: ServiceToken, instance: Share) -> Self {
        FeedSource::Http {
            client: reqwest::Client::builder()
                .timeout(LONG_POLL + Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
            instance,
        }
    }

    /// At most `max` applications after sequence `after`; waits up to [`LONG_POLL`] for one.
    pub async fn take(&self, after: u64, max: usize) -> Result<Vec<FedApplication>, String> {
        match self {
            FeedSource::Local(intake) => {
                let request = intake.send(TakeNewApplications {
                    after,
                    max,
                    wait: true,
                });
                match tokio::time::timeout(LONG_POLL, request).await {
                    Ok(Ok(batch)) => Ok(batch),
                    Ok(Err(error)) => Err(format!("intake system unavailable: {error}")),
                    Err(_) => Ok(Vec::new()),
                }
            }
            FeedSource::Http {
                client,
                base_url,
                token,
                instance,
            } => {
                let url = format!("{base_url}/api/v1/intake/feed");
                let token = token.current().map_err(|e| format!("{e:#}"))?;
                let response = client
                    .get(&url)
                    .bearer_auth(token)
                    .query(&[
                        ("after", after.to_string()),
                        ("max", max.to_string()),
                        ("wait_ms", LONG_POLL.as_millis().to_string()),
                    ])
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                let status = response.status();
                if !status.is_success() {
                    let body = response.text().await.unwrap_or_default();
                    return Err(format!("{url}: {status}: {body}"));
                }
                check_instance(&url, &response, *instance)?;
                response.json().await.map_err(|e| {
                    format!("{url}: the feed's answer is not a list of applications: {e}")
                })
            }
        }
    }
}

/// Refuses the answer of an intake process other than the one `url` should lead to: its
/// positions are not those of the cursor kept for this feed. The only intake process may be
/// of a version that does not name itself.
fn check_instance(url: &str, response: &reqwest::Response, expected: Share) -> Result<(), String> {
    let named = response
        .headers()
        .get(INTAKE_INSTANCE_HEADER)
        .and_then(|value| value.to_str().ok());
    match named {
        None if expected.instances <= 1 => Ok(()),
        Some(named) if named == expected.to_string() => Ok(()),
        named => Err(format!(
            "{url} is served by intake instance {}, but service.intake_feed_urls lists it as \
             instance {expected}: list each intake process's URL in the order of its \
             service.intake_instance",
            named.unwrap_or("(unnamed)")
        )),
    }
}
