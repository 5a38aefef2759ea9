//! Per-client rate limits (`[http.rate_limit]`), with `governor`'s GCRA: each client has a
//! budget of `burst` requests that refills at `per_second`; a request past it is answered
//! `429 {"error":"rate_limited"}` with `Retry-After` (whole seconds until one more request is
//! allowed) and reaches no endpoint. `/healthz`, `/readyz` and `/metrics` are not limited.
//!
//! Who a client is: a request with a valid bearer token counts against its caller (role, scope
//! and subject), whatever address it comes from, so that many terminals behind one NAT each
//! have their own budget. The token is checked here, once: the outcome is handed on to the
//! [`Principal`] extractor (see `access::Checked`). Keying on the unverified token instead (a
//! hash of it) would be cheaper, but a client could then mint a fresh garbage token per request,
//! get a fresh budget each time and still cost a signature check on each. A request without a
//! valid token counts against the connection's address: an IPv4 address, or an IPv6 address's
//! /64, the block one host or household is usually given. Behind a reverse proxy every such
//! request comes from the proxy's address and shares one budget: the proxy should limit per
//! address itself.

use super::access::{self, Checked};
use super::error::ApiError;
use crate::auth::{Authenticator, Grant, Principal};
use crate::settings::RateLimitSettings;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage as _, ResponseError as _};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Checks between two sweeps of the clients whose budget is full again (they are forgotten:
/// a forgotten client starts with a full budget, which is what it had).
const SWEEP_EVERY: u64 = 4096;

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Client {
    /// A caller with a valid token: its role, scope and subject.
    Caller(String),
    /// Anyone else, by address (an IPv6 address by its /64).
    Address(IpAddr),
}

/// The budgets of every client, shared by every worker.
#[derive(Clone)]
pub struct RateLimit {
    /// One budget per client.
    limiter: Arc<DefaultKeyedRateLimiter<Client>>,
    /// Checks made, to sweep every [`SWEEP_EVERY`].
    checks: Arc<AtomicU64>,
    /// The limits, for the refusal's message.
    settings: RateLimitSettings,
}

impl RateLimit {
    /// The limiter `settings` describe; `None` when limits are off. The settings are validated
    /// at load (a rate above 0, a burst of at least 1); should they not be, the limiter is off
    /// rather than refusing everyone.
    pub fn new(settings: &RateLimitSettings) -> Option<Self> {
        if !settings.enabled {
            return None;
        }
        let burst = NonZeroU32::new(settings.burst)?;
        let period = Duration::try_from_secs_f64(1.0 / settings.per_second).ok()?;
        let quota = Quota::with_period(period)?.allow_burst(burst);
        Some(Self {
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(quota)),
            checks: Arc::new(AtomicU64::new(0)),
            settings: settings.clone(),
        })
    }

    /// Counts one request of `client`; `Err` with how long until it may make another when its
    /// budget is spent.
    fn check(&self, client: &Client) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(client)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// The answer to a request over the limit.
    fn refusal(&self, wait: Duration) -> actix_web::HttpResponse {
        // At least 1: `Retry-After: 0` would invite an immediate retry that is refused again.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let secs = secs.max(1);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests from this client: at most {} a second, {} at once. Try \
                 again in {secs} s",
                self.settings.per_second, self.settings.burst
            ),
        )
        .error_response();
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
        response
    }
}

/// The middleware (see the module doc); wrap it with `actix_web::middleware::from_fn`. With
/// `limit` `None` (limits off) it lets every request through.
pub async fn guard(
    limit: Option<RateLimit>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Health probes are never limited: an orchestrator that is refused takes a healthy
    // process for dead and restarts it. Nor is the scrape: a gap in the metrics would hide
    // what an operator looks for.
    let probe = matches!(req.path(), "/healthz" | "/readyz" | "/metrics");
    let Some(limit) = limit.filter(|_| !probe) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let client = client(&req).await;
    match limit.check(&client) {
        Ok(()) => Ok(next.call(req).await?.map_into_boxed_body()),
        Err(wait) => {
            // Debug, not warn: a client hammering past its budget must not flood the log too.
            // Every refusal is in the request log as a 429 anyway.
            tracing::debug!(?client, "request refused: over the rate limit");
            Ok(req.into_response(limit.refusal(wait)))
        }
    }
}

/// Who `req` counts against. Checks its bearer token, if any, and keeps the outcome for the
/// [`Principal`] extractor.
async fn client(req: &ServiceRequest) -> Client {
    let token = access::bearer(req.request());
    let authenticator = req.app_data::<web::Data<Authenticator>>().cloned();
    if let (Some(token), Some(authenticator)) = (token, authenticator) {
        let checked = authenticator.verify(&token).await;
        let caller = checked.as_ref().ok().map(caller);
        req.extensions_mut().insert(Checked(checked));
        if let Some(caller) = caller {
            return caller;
        }
    }
    // A request always has a peer address on a TCP listener; none only in a test harness.
    let address = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    Client::Address(block(address))
}

/// The budget a valid token's caller counts against.
fn caller(principal: &Principal) -> Client {
    let scope = match &principal.grant {
        Grant::Applicant => "applicant".to_owned(),
        Grant::Terminal(id) => format!("terminal:{id}"),
        Grant::Officer(code) => format!("officer:{code}"),
        Grant::Dispatcher(code) => format!("dispatcher:{code}"),
        Grant::Supervisor => "supervisor".to_owned(),
        Grant::Operator => "operator".to_owned(),
        Grant::Service => "service".to_owned(),
    };
    Client::Caller(format!("{scope}/{}", principal.subject))
}

/// The address a client without a valid token is known by: an IPv4 address (also one written
/// as IPv6, `::ffff:a.b.c.d`) as it is, an IPv6 address by its /64.
fn block(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: f64, burst: u32) -> RateLimit {
        RateLimit::new(&RateLimitSettings {
            enabled: true,
            per_second,
            burst,
        })
        .expect("limits on")
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_while_another_is_not_held() {
        // One request every 100 s: the budget does not refill while the test runs.
        let limit = limit(0.01, 3);
        let one = Client::Caller("terminal:kiosk/a".into());
        let other = Client::Caller("terminal:kiosk/b".into());

        let first = (0..3).map(|_| limit.check(&one)).collect::<Vec<_>>();
        let over = limit.check(&one);

        assert!(first.iter().all(Result::is_ok), "{first:?}");
        let wait = over.expect_err("the fourth request is over the burst");
        assert!(wait > Duration::from_secs(90), "{wait:?}");
        assert!(limit.check(&other).is_ok());
    }

    #[test]
    fn the_refusal_says_when_to_retry_in_whole_seconds() {
        let response = limit(1.0, 1).refusal(Duration::from_millis(1500));

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers().get(RETRY_AFTER).map(|v| v.as_bytes()),
            Some(&b"2"[..])
        );
    }

    #[test]
    fn limits_off_make_no_limiter() {
        let off = RateLimitSettings {
            enabled: false,
            ..RateLimitSettings::default()
        };
        assert!(RateLimit::new(&off).is_none());
    }

    #[test]
    fn an_ipv6_host_counts_by_its_64_and_a_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("an address");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("an address");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("an address");

        assert_eq!(block(a), block(b));
        assert_eq!(
            block(a),
            "2001:db8:1:2::".parse::<IpAddr>().expect("an address")
        );
        assert_eq!(
            block(mapped),
            "10.0.0.1".parse::<IpAddr>().expect("an address")
        );
    }
}
