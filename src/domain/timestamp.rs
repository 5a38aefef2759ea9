//! Times written as chrono's `Serialize` writes them — RFC 3339 in UTC with `Z`, and as many
//! fractional digits as `SecondsFormat::AutoSi` gives (none, 3, 6 or 9) — without going through
//! `core::fmt`, which made chrono's formatting about a twentieth of the service's CPU: every
//! case view handed to the repository writes each step's time, about seven times a case.
//! Reading is chrono's own.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// Longest text: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const LONGEST: usize = 30;

/// `#[serde(serialize_with = "…")]` for a `DateTime<Utc>`: the same text as chrono's, faster.
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut text = [0_u8; LONGEST];
    match rfc3339(at, &mut text) {
        // Only ASCII digits and separators are written.
        Some(len) => match std::str::from_utf8(&text[..len]) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => at.serialize(serializer),
        },
        None => at.serialize(serializer),
    }
}

/// Writes `at` into `out`, answering its length; None for what chrono writes otherwise (a year
/// outside 0–9999, a leap second), left to chrono.
fn rfc3339(at: &DateTime<Utc>, out: &mut [u8; LONGEST]) -> Option<usize> {
    let naive = at.naive_utc();
    let year = u32::try_from(naive.year())
        .ok()
        .filter(|year| *year <= 9999)?;
    let nanos = naive.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    digits(&mut out[0..4], year);
    out[4] = b'-';
    digits(&mut out[5..7], naive.month());
    out[7] = b'-';
    digits(&mut out[8..10], naive.day());
    out[10] = b'T';
    digits(&mut out[11..13], naive.hour());
    out[13] = b':';
    digits(&mut out[14..16], naive.minute());
    out[16] = b':';
    digits(&mut out[17..19], naive.second());
    let (fraction, width) = match nanos {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (n / 1_000_000, 3),
        n if n % 1_000 == 0 => (n / 1_000, 6),
        n => (n, 9),
    };
    let mut len = 19;
    if width > 0 {
        out[len] = b'.';
        digits(&mut out[len + 1..len + 1 + width], fraction);
        len += 1 + width;
    }
    out[len] = b'Z';
    Some(len + 1)
}

/// Writes `value` in decimal, zero-padded to fill `out`.
fn digits(out: &mut [u8], mut value: u32) {
    for byte in out.iter_mut().rev() {
        // A decimal digit: below 10.
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// `at` written by this module.
    fn ours(at: DateTime<Utc>) -> String {
        let mut out = Vec::new();
        serialize(&at, &mut serde_json::Serializer::new(&mut out)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_time_is_written_as_chrono_writes_it() {
        // Arrange: times across the years, with every kind of fraction, and the two chrono
        // writes on its own.
        let mut times = Vec::new();
        for (year, seconds) in [
            (0, 0),
            (1, 59),
            (999, 7),
            (1970, 0),
            (2026, 3_599),
            (9999, 86_399),
        ] {
            let day = Utc.with_ymd_and_hms(year, 12, 31, 0, 0, 0).unwrap();
            let at = day + chrono::Duration::seconds(seconds);
            for nanos in [
                0,
                5_000_000,
                120_000_000,
                7_000,
                999_999_000,
                1,
                123_456_789,
            ] {
                times.push(at + chrono::Duration::nanoseconds(nanos));
            }
        }
        times.push(Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap());
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .unwrap();
        times.push(Utc.from_utc_datetime(&leap));

        // Act / Assert
        for at in times {
            assert_eq!(ours(at), serde_json::to_string(&at).unwrap(), "{at:?}");
        }
    }
}
