//! `[http.rate_limit]`: how many requests one client may make (see `crate::http`'s
//! `rate_limit`).
//!
//! The defaults are sized for the clients a city has, not for one person. A request with a
//! valid bearer token counts against its caller (the token's role, scope and subject), so the
//! kiosks of a whole district behind one NAT do not share a budget: each terminal has its own.
//! What shares one address's budget is what comes without a valid token: the public catalogue
//! and refused tokens. A thousand kiosks behind one address that all load the catalogue when
//! the offices open fit in the burst of 1000, and each refreshing it every ten seconds fits in
//! 100 a second. One caller at 100 a second sustained is 8.6 million requests a day: more than
//! the mobile app's back end sends for a whole city under its one terminal token, and far more
//! than any person does; a client past it is broken or hostile.

use serde::{Deserialize, Serialize};

/// `[http.rate_limit]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Whether requests are limited at all.
    pub enabled: bool,
    /// Requests a second one client may make, sustained: its budget refills at this rate. May
    /// be below 1 (0.5: one request every two seconds).
    pub per_second: f64,
    /// Requests one client may make at once, with a full budget: the size of the budget.
    pub burst: u32,
}

impl Default for RateLimitSettings {
    /// 100 a second, bursts of 1000 (see the module doc for why).
    fn default() -> Self {
        Self {
            enabled: true,
            per_second: 100.0,
            burst: 1000,
        }
    }
}
