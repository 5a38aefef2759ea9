//! `[telemetry]`: where the process's spans are exported, if anywhere (see the `telemetry`
//! module and the README, "Operating it" → "Traces").

use serde::{Deserialize, Serialize};
use std::fmt;

/// The path an OTLP/HTTP collector takes traces at.
const TRACES_PATH: &str = "/v1/traces";

/// `[telemetry]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// The OTLP/HTTP collector every span is exported to, e.g. `http://localhost:4318`
    /// (spans go to its `/v1/traces`); empty, the default, exports nothing.
    pub otlp_endpoint: OtlpEndpoint,
}

/// An OTLP/HTTP collector's address: none, or an `http://` or `https://` URL with a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpEndpoint(Option<reqwest::Url>);

impl OtlpEndpoint {
    /// Reads an endpoint: empty (or blank) is none; anything else must be an `http://` or
    /// `https://` URL naming a host.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self(None));
        }
        let refused = |why: &str| {
            format!(
                "`{text}` is not an OTLP/HTTP endpoint ({why}): use the collector's http:// or \
                 https:// URL, e.g. \"http://localhost:4318\", or \"\" to export nothing"
            )
        };
        let url = reqwest::Url::parse(text).map_err(|e| refused(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refused(&format!("the scheme is `{}`", url.scheme())));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(refused("it names no host"));
        }
        Ok(Self(Some(url)))
    }

    /// The URL spans are posted to: the endpoint's `/v1/traces`, or the endpoint itself when
    /// it already ends there. None when export is off.
    pub fn traces_url(&self) -> Option<String> {
        let url = self.0.as_ref()?;
        let text = url.as_str();
        if url.path().trim_end_matches('/').ends_with(TRACES_PATH) {
            return Some(text.to_owned());
        }
        Some(format!("{}{TRACES_PATH}", text.trim_end_matches('/')))
    }
}

impl fmt::Display for OtlpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(url) => write!(f, "{url}"),
            None => Ok(()),
        }
    }
}

impl Serialize for OtlpEndpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OtlpEndpoint {
    /// Empty, or an `http(s)://` URL; anything else is refused saying what would do.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::{Settings, DEFAULT_CONFIG};

    fn with_endpoint(endpoint: &str) -> Result<Settings, crate::settings::SettingsError> {
        let shipped = "otlp_endpoint = \"\"";
        assert!(
            DEFAULT_CONFIG.contains(shipped),
            "no `[telemetry]` in the default config"
        );
        let text = DEFAULT_CONFIG.replacen(shipped, &format!("otlp_endpoint = \"{endpoint}\""), 1);
        Settings::from_toml(&text, "test.toml", false)
    }

    #[test]
    fn export_is_off_unless_an_endpoint_is_set() {
        let shipped = Settings::from_toml(DEFAULT_CONFIG, "test.toml", false).expect("default");
        let empty = with_endpoint("").expect("empty is off");

        assert_eq!(shipped.telemetry.otlp_endpoint.traces_url(), None);
        assert_eq!(empty.telemetry.otlp_endpoint.traces_url(), None);
    }

    #[test]
    fn spans_go_to_the_collectors_traces_path() {
        for (endpoint, url) in [
            ("http://localhost:4318", "http://localhost:4318/v1/traces"),
            (
                "https://otel.city.example/",
                "https://otel.city.example/v1/traces",
            ),
            ("http://gw:8080/otlp", "http://gw:8080/otlp/v1/traces"),
            (
                "http://localhost:4318/v1/traces",
                "http://localhost:4318/v1/traces",
            ),
        ] {
            let settings = with_endpoint(endpoint).expect("an http(s) URL");

            assert_eq!(
                settings.telemetry.otlp_endpoint.traces_url().as_deref(),
                Some(url)
            );
        }
    }

    #[test]
    fn an_endpoint_that_is_not_an_http_url_is_refused_at_start_up() {
        for bad in [
            "localhost:4318",
            "grpc://localhost:4317",
            "http://",
            "not a url",
        ] {
            let error = with_endpoint(bad)
                .expect_err("not an OTLP/HTTP endpoint")
                .to_string();

            assert!(error.starts_with("test.toml:"), "{error}");
            assert!(error.contains("is not an OTLP/HTTP endpoint"), "{error}");
            assert!(error.contains("http://localhost:4318"), "{error}");
        }
    }
}
