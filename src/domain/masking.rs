//! Personal data shown to those who may not read it in full (GB/T 35273 de-identification by
//! masking): an ID number keeps its first 6 and last 4 characters (`500103********1232`), a
//! phone its first 3 and last 4 (`138****0000`), a name its first character (`张*`).
//!
//! The same masked form is what an [`Applicant`] prints with `{:?}`, so that a log line, a
//! panic or an error that formats one never carries the person in clear; and serde's errors,
//! which quote the value they refused, are described here without it ([`without_values`]).

use super::Applicant;
use std::fmt;

/// What a masked character shows.
const MASK: char = '*';

impl Applicant {
    /// The applicant as someone who may not read it in full sees it: every character of the
    /// ID number but the first 6 and last 4, of the phone but the first 3 and last 4, and of
    /// the name but the first, replaced by `*` (lengths kept, so the form still reads as an
    /// ID number or a phone).
    pub fn masked(&self) -> Applicant {
        Applicant {
            name: mask_name(&self.name),
            id_number: mask_id_number(&self.id_number),
            phone: mask_phone(&self.phone),
        }
    }
}

/// Masked, whatever formats it: a `{:?}` of an application, a form or a message carrying one
/// is what logs and error chains are made of.
impl fmt::Debug for Applicant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = self.masked();
        f.debug_struct("Applicant")
            .field("name", &masked.name)
            .field("id_number", &masked.id_number)
            .field("phone", &masked.phone)
            .finish()
    }
}

/// An ID number (GB 11643) or credit code (GB 32100) with all but its first 6 and last 4
/// characters masked; one of 10 characters or fewer, which that would leave whole, entirely.
pub fn mask_id_number(id_number: &str) -> String {
    keep_ends(id_number, 6, 4)
}

/// A phone with all but its first 3 and last 4 characters masked; one of 7 characters or
/// fewer, entirely.
pub fn mask_phone(phone: &str) -> String {
    keep_ends(phone, 3, 4)
}

/// A name with all but its first character masked.
pub fn mask_name(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| if i == 0 { c } else { MASK })
        .collect()
}

/// `text` with its first `head` and last `tail` characters kept and the rest masked; masked
/// whole when keeping both ends would leave nothing hidden.
fn keep_ends(text: &str, head: usize, tail: usize) -> String {
    let count = text.chars().count();
    if count <= head + tail {
        return std::iter::repeat_n(MASK, count).collect();
    }
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            if i < head || i >= count - tail {
                c
            } else {
                MASK
            }
        })
        .collect()
}

/// What serde found wrong with a JSON document, without the values it quotes: `invalid type:
/// integer `440304…`, expected a string` becomes `invalid type: integer, expected a string`,
/// `unknown variant `…`` becomes `unknown variant`. The field names, the expected types and the
/// position stay, which is what the sender needs to fix it; a value it sent may be an ID number
/// or a phone, and the message ends up in logs and dead-letter headers.
pub fn without_values(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let described = describe_without_values(&text);
    match error.line() {
        0 => described,
        line => {
            // serde_json appends the position to every message; it is cut below with the
            // value, so it is put back here.
            let position = format!(" at line {line} column {}", error.column());
            match described.strip_suffix(&position) {
                Some(_) => described,
                None => format!("{described}{position}"),
            }
        }
    }
}

/// The message of a serde error, its quoted value left out.
fn describe_without_values(text: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            // `<kind> <quoted value>, expected <what>`: the kind is what precedes the quote.
            let Some((unexpected, expected)) = rest.split_once(", expected ") else {
                return format!("{}(a value)", prefix);
            };
            let kind = unexpected
                .split(['`', '"'])
                .next()
                .unwrap_or_default()
                .trim();
            return format!("{prefix}{kind}, expected {expected}");
        }
    }
    if let Some(rest) = text.strip_prefix("unknown variant ") {
        let expected = rest.split_once(", expected ").map(|(_, e)| e);
        return match expected {
            Some(expected) => format!("unknown variant, expected {expected}"),
            None => "unknown variant".to_owned(),
        };
    }
    if text.starts_with("unknown field ") {
        // The field's name is a key the sender wrote, which may be anything: only what is
        // expected is repeated.
        let expected = text.split_once(", expected ").map(|(_, e)| e);
        return match expected {
            Some(expected) => format!("unknown field, expected {expected}"),
            None => "unknown field".to_owned(),
        };
    }
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn person() -> Applicant {
        Applicant {
            name: "张三".into(),
            id_number: "500103199001011232".into(),
            phone: "13800000000".into(),
        }
    }

    #[test]
    fn an_applicant_is_masked_as_gb_t_35273_shows_it() {
        let masked = person().masked();
        assert_eq!(masked.name, "张*");
        assert_eq!(masked.id_number, "500103********1232");
        assert_eq!(masked.phone, "138****0000");
    }

    #[test]
    fn a_company_keeps_the_first_character_of_its_name_and_the_ends_of_its_code() {
        let company = Applicant {
            name: "重庆山城小面餐饮有限公司".into(),
            id_number: "91500103MA60C8K21M".into(),
            phone: "02363001234".into(),
        };
        let masked = company.masked();
        assert_eq!(masked.name, "重***********");
        assert_eq!(masked.name.chars().count(), 12);
        assert_eq!(masked.id_number, "915001********K21M");
        assert_eq!(masked.phone, "023****1234");
    }

    #[test]
    fn values_too_short_to_keep_their_ends_are_masked_whole() {
        assert_eq!(mask_id_number("1234567890"), "**********");
        assert_eq!(mask_phone("1234567"), "*******");
        assert_eq!(mask_phone(""), "");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_name("张"), "张");
    }

    #[test]
    fn debug_shows_the_applicant_masked() {
        let printed = format!("{:?}", person());
        assert!(printed.contains("500103********1232"), "{printed}");
        assert!(!printed.contains("500103199001011232"), "{printed}");
        assert!(!printed.contains("13800000000"), "{printed}");
        assert!(!printed.contains("张三"), "{printed}");
        let pretty = format!("{:#?}", Some(person()));
        assert!(!pretty.contains("13800000000"), "{pretty}");
    }

    /// What a client's body is read into, to make serde refuse it.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        /// A string.
        id_number: String,
        /// An enum.
        decision: Choice,
    }

    /// An enum.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Choice {
        /// One.
        Approve,
    }

    fn refusal(json: &str) -> (String, String) {
        let error = serde_json::from_str::<Body>(json).expect_err("refused");
        (error.to_string(), without_values(&error))
    }

    #[test]
    fn serde_errors_are_described_without_the_values_they_quote() {
        let cases = [
            (
                r#"{"id_number": 500103199001011232, "decision": "approve"}"#,
                "500103199001011232",
                "invalid type: integer, expected a string at line 1 column 32",
            ),
            (
                r#"{"id_number": "x", "decision": "13800000000"}"#,
                "13800000000",
                "unknown variant, expected `approve` at line 1 column 44",
            ),
            (
                r#"{"13800000000": 1}"#,
                "13800000000",
                "unknown field, expected `id_number` or `decision` at line 1 column 14",
            ),
            (
                r#"{"id_number": 13800000000.5}"#,
                "13800000000",
                "invalid type: floating point, expected a string at line 1 column 27",
            ),
        ];
        for (json, value, expected) in cases {
            let (plain, described) = refusal(json);
            assert!(plain.contains(value), "serde quotes it: {plain}");
            assert_eq!(described, expected, "{json}");
        }
    }

    #[test]
    fn serde_errors_that_quote_nothing_are_kept() {
        let (plain, described) = refusal(r#"{"id_number": "x""#);
        assert_eq!(described, plain);
        let (plain, described) = refusal(r#"{"id_number": "x"}"#);
        assert_eq!(described, plain);
        assert!(
            described.starts_with("missing field `decision`"),
            "{described}"
        );
    }
}
