//! Who an applicant is and how to reach them: the formats of an identity number and a phone
//! number, checked before an application is taken, so that a typo is caught at the terminal
//! rather than by a department days later.
//!
//! * A person is identified by a resident identity number (公民身份号码, GB 11643-1999): 17
//!   digits (region, birth date `YYYYMMDD`, sequence) and a check character, `0`–`9` or `X`.
//! * A company by a unified social credit code (统一社会信用代码, GB 32100-2015): 17 characters
//!   of the code alphabet and a check character of the same alphabet.
//! * A phone is a mainland mobile number (11 digits, `1[3-9]…`) or a fixed line with its area
//!   code (`023-63851234`, `02363851234`).

use chrono::NaiveDate;

/// Characters of an identity number or a credit code.
const ID_LENGTH: usize = 18;

/// GB 11643-1999: the weight of each of the first 17 digits (2^(18-i) mod 11).
const RESIDENT_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// GB 11643-1999: the check character for each value of the weighted sum mod 11.
const RESIDENT_CHECK: &[u8; 11] = b"10X98765432";

/// GB 32100-2015: the code alphabet (digits and capitals without I, O, S, V, Z); a character's
/// value is its position.
const CREDIT_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// GB 32100-2015: the weight of each of the first 17 characters (3^i mod 31).
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The earliest birth date a resident identity number is taken with.
const EARLIEST_BIRTH: (i32, u32, u32) = (1900, 1, 1);

/// What an identity number identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A person: a resident identity number.
    Resident,
    /// A company or organisation: a unified social credit code.
    Organisation,
}

/// Why a text is not an identity number. The messages never repeat the number: they may end
/// up in a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    /// Not 18 characters.
    #[error(
        "must be 18 characters (a resident identity number or a unified social credit code), \
         not {0}"
    )]
    Length(usize),
    /// Characters neither kind of number has.
    #[error(
        "must be 17 digits and a check digit or X (a resident identity number), or 18 \
         characters of 0-9 and capitals other than I, O, S, V, Z (a unified social credit code)"
    )]
    Characters,
    /// The check character does not match the rest.
    #[error(
        "the check character (the last one) does not match the others: look for a mistyped or \
         swapped character"
    )]
    CheckCharacter,
    /// A resident identity number whose birth date is not a date, is in the future or is
    /// before 1900.
    #[error(
        "characters 7 to 14 must be the holder's birth date (YYYYMMDD), not in the future; \
         look for a mistyped digit"
    )]
    BirthDate,
}

/// Checks an identity number: a resident identity number whose birth date is at most `today`,
/// or a unified social credit code. Answers which it is.
pub fn check_id_number(text: &str, today: NaiveDate) -> Result<IdKind, IdNumberError> {
    let chars = text.chars().count();
    if chars != ID_LENGTH {
        return Err(IdNumberError::Length(chars));
    }
    // 18 characters, all ASCII from here on: every character either kind allows is ASCII.
    let bytes = text.as_bytes();
    if bytes.len() != ID_LENGTH {
        return Err(IdNumberError::Characters);
    }
    if looks_resident(bytes) {
        match check_resident(bytes, today) {
            Ok(()) => return Ok(IdKind::Resident),
            // A credit code may be digits only: the same text may be a valid one.
            Err(error) => {
                return check_credit_code(bytes)
                    .map(|()| IdKind::Organisation)
                    .map_err(|_| error)
            }
        }
    }
    check_credit_code(bytes).map(|()| IdKind::Organisation)
}

/// Whether `bytes` has the shape of a resident identity number: 17 digits, then a digit or X.
fn looks_resident(bytes: &[u8]) -> bool {
    bytes.len() == ID_LENGTH
        && bytes[..17].iter().all(u8::is_ascii_digit)
        && (bytes[17].is_ascii_digit() || bytes[17] == b'X')
}

/// Checks a text of the resident shape: its birth date, then its check character.
fn check_resident(bytes: &[u8], today: NaiveDate) -> Result<(), IdNumberError> {
    let digits: String = bytes[6..14].iter().map(|&b| char::from(b)).collect();
    let born =
        NaiveDate::parse_from_str(&digits, "%Y%m%d").map_err(|_| IdNumberError::BirthDate)?;
    let (year, month, day) = EARLIEST_BIRTH;
    let earliest = NaiveDate::from_ymd_opt(year, month, day);
    if born > today || earliest.is_some_and(|earliest| born < earliest) {
        return Err(IdNumberError::BirthDate);
    }
    match resident_check_character(&bytes[..17]) {
        Some(check) if check == char::from(bytes[17]) => Ok(()),
        _ => Err(IdNumberError::CheckCharacter),
    }
}

/// The check character of a resident identity number whose first 17 characters are `first`
/// (GB 11643-1999); `None` unless they are 17 digits.
pub fn resident_check_character(first: &[u8]) -> Option<char> {
    if first.len() != RESIDENT_WEIGHTS.len() || !first.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first
        .iter()
        .zip(RESIDENT_WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    Some(char::from(RESIDENT_CHECK[(sum % 11) as usize]))
}

/// A valid resident identity number of a person from 渝中区 (`500103`), for generated
/// applicants (`simulate`, `bench`): `n` picks the birth date, one of 1,000 days from
/// 1970-01-01, and the sequence, `n` mod 1,000.
pub fn sample_resident_number(n: u32) -> String {
    let epoch = chrono::DateTime::UNIX_EPOCH.date_naive();
    let born = epoch
        .checked_add_days(chrono::Days::new(u64::from(n / 1000 % 1000)))
        .unwrap_or(epoch);
    let first = format!("500103{}{:03}", born.format("%Y%m%d"), n % 1000);
    // 17 digits, so there is a check character; `?` would only mark a bug.
    let check = resident_check_character(first.as_bytes()).unwrap_or('?');
    format!("{first}{check}")
}

/// Checks a unified social credit code's characters and check character.
fn check_credit_code(bytes: &[u8]) -> Result<(), IdNumberError> {
    if credit_value(bytes[17]).is_none() {
        return Err(IdNumberError::Characters);
    }
    match credit_code_check_character(&bytes[..17]) {
        Some(check) if check == char::from(bytes[17]) => Ok(()),
        Some(_) => Err(IdNumberError::CheckCharacter),
        None => Err(IdNumberError::Characters),
    }
}

/// The check character of a unified social credit code whose first 17 characters are `first`
/// (GB 32100-2015); `None` unless they are 17 characters of the code alphabet.
pub fn credit_code_check_character(first: &[u8]) -> Option<char> {
    if first.len() != CREDIT_WEIGHTS.len() {
        return None;
    }
    let mut sum = 0;
    for (&byte, weight) in first.iter().zip(CREDIT_WEIGHTS) {
        sum += credit_value(byte)? * weight;
    }
    // 31 − (sum mod 31), where 31 itself is written 0.
    let check = (31 - sum % 31) % 31;
    Some(char::from(CREDIT_ALPHABET[check as usize]))
}

/// A character's value in the credit code alphabet.
fn credit_value(byte: u8) -> Option<u32> {
    CREDIT_ALPHABET
        .iter()
        .position(|&c| c == byte)
        .and_then(|p| u32::try_from(p).ok())
}

/// Why a text is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be a mainland mobile number (11 digits starting 13 to 19, e.g. 13800138000) or a \
     fixed line with its area code (e.g. 023-63851234 or 02363851234)"
)]
pub struct PhoneError;

/// Checks a phone number: a mainland mobile number, or a fixed line with its area code.
pub fn check_phone(text: &str) -> Result<(), PhoneError> {
    if is_mobile(text) || is_fixed_line(text) {
        Ok(())
    } else {
        Err(PhoneError)
    }
}

/// 11 digits: `1`, then `3` to `9`, then 9 more.
fn is_mobile(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 11
        && bytes.iter().all(u8::is_ascii_digit)
        && bytes[0] == b'1'
        && (b'3'..=b'9').contains(&bytes[1])
}

/// An area code (`0` and 2 or 3 digits), an optional `-`, and a local number of 7 or 8 digits
/// that starts 2 to 9. Without the `-`, the area code's length follows from its start: `010`
/// and `02x` are the 3-digit ones, every other is 4 digits.
fn is_fixed_line(text: &str) -> bool {
    let (area, local) = match text.split_once('-') {
        Some((area, local)) => (area, local),
        None => {
            let short = text.starts_with("010") || text.starts_with("02");
            let split = if short { 3 } else { 4 };
            if text.len() < split || !text.is_char_boundary(split) {
                return false;
            }
            text.split_at(split)
        }
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(area)
        && all_digits(local)
        && area.starts_with('0')
        && (3..=4).contains(&area.len())
        && (7..=8).contains(&local.len())
        && !local.starts_with(['0', '1'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 30).expect("a date")
    }

    #[test]
    fn the_check_digit_of_the_standards_example_is_x() {
        // GB 11643-1999's own example: 11010519491231002X.
        assert_eq!(resident_check_character(b"11010519491231002"), Some('X'));
        assert_eq!(
            check_id_number("11010519491231002X", today()),
            Ok(IdKind::Resident)
        );
    }

    #[test]
    fn valid_resident_numbers_are_taken() {
        for number in [
            "500103199001011232",
            "110101199003071233",
            "500112197809230072",
        ] {
            assert_eq!(
                check_id_number(number, today()),
                Ok(IdKind::Resident),
                "{number}"
            );
        }
    }

    #[test]
    fn a_wrong_check_digit_is_refused() {
        // The sample the README used to show: its check digit is 2, not 4.
        assert_eq!(resident_check_character(b"50010319900101123"), Some('2'));
        assert_eq!(
            check_id_number("500103199001011234", today()),
            Err(IdNumberError::CheckCharacter)
        );
        assert_eq!(
            check_id_number("110105194912310021", today()),
            Err(IdNumberError::CheckCharacter)
        );
    }

    #[test]
    fn sample_numbers_are_valid() {
        for n in [0, 1, 999, 1000, 123_456, 999_999, u32::MAX] {
            let number = sample_resident_number(n);
            assert_eq!(
                check_id_number(&number, today()),
                Ok(IdKind::Resident),
                "{number}"
            );
        }
    }

    #[test]
    fn a_lowercase_x_is_refused() {
        assert_eq!(
            check_id_number("11010519491231002x", today()),
            Err(IdNumberError::Characters)
        );
    }

    #[test]
    fn an_impossible_or_future_birth_date_is_refused() {
        // 1990-02-30 does not exist; 2027-01-01 is after `today`; 1899 is before 1900.
        for first in [
            "50010319900230123",
            "50010320270101123",
            "50010318991231123",
        ] {
            let check = resident_check_character(first.as_bytes()).expect("17 digits");
            let number = format!("{first}{check}");
            assert_eq!(
                check_id_number(&number, today()),
                Err(IdNumberError::BirthDate),
                "{number}"
            );
        }
    }

    #[test]
    fn a_valid_credit_code_is_taken() {
        // The code of the standard's annex example, and one with a computed check character.
        assert_eq!(credit_code_check_character(b"91350100M000100Y4"), Some('3'));
        for code in ["91350100M000100Y43", "91500103MA60C8K21M"] {
            assert_eq!(
                check_id_number(code, today()),
                Ok(IdKind::Organisation),
                "{code}"
            );
        }
    }

    #[test]
    fn a_credit_code_with_a_wrong_check_character_or_a_letter_outside_the_alphabet_is_refused() {
        assert_eq!(
            check_id_number("91350100M000100Y44", today()),
            Err(IdNumberError::CheckCharacter)
        );
        // `O` is not in the alphabet (it reads as 0).
        assert_eq!(
            check_id_number("91350100MO00100Y43", today()),
            Err(IdNumberError::Characters)
        );
    }

    #[test]
    fn a_credit_code_of_digits_only_is_taken_though_it_is_not_a_resident_number() {
        // Characters 7 to 14 (`03000000`) are no birth date, yet the check digit fits.
        assert_eq!(credit_code_check_character(b"91500103000000004"), Some('2'));
        assert_eq!(
            check_id_number("915001030000000042", today()),
            Ok(IdKind::Organisation)
        );
    }

    #[test]
    fn a_number_of_the_wrong_length_is_refused_with_its_length() {
        assert_eq!(
            check_id_number("5001031990010112", today()),
            Err(IdNumberError::Length(16))
        );
        assert_eq!(
            check_id_number("五〇〇一〇三一九九〇〇一〇一一二三二", today()),
            Err(IdNumberError::Characters)
        );
    }

    #[test]
    fn mobile_and_fixed_line_numbers_are_taken() {
        for phone in [
            "13800138000",
            "19912345678",
            "023-63851234",
            "02363851234",
            "010-22345678",
            "0571-8765432",
            "05718765432",
        ] {
            assert_eq!(check_phone(phone), Ok(()), "{phone}");
        }
    }

    #[test]
    fn other_phone_numbers_are_refused() {
        for phone in [
            "12800138000",
            "1380013800",
            "138001380001",
            "+8613800138000",
            "023-1385123",
            "23-63851234",
            "023-6385",
            "电话13800138000",
            "",
        ] {
            assert_eq!(check_phone(phone), Err(PhoneError), "{phone}");
        }
    }
}
