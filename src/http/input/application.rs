//! The checks of an application before a terminal hands it in: the applicant's identity
//! number and phone by their standards, and every field within the limits of `[input]`. The
//! first field that breaks a rule is refused with 422 `invalid_field`, naming it.

use super::{materials, within};
use crate::actors::intake::ApplicationForm;
use crate::domain::identity::{check_id_number, check_phone};
use crate::http::error::{ApiError, Result};
use crate::settings::InputSettings;
use chrono::NaiveDate;
use serde_json::Value;

/// Checks `form` against `limits`; `today` (the city's local date) bounds a birth date.
pub(in crate::http) fn check_application(
    form: &ApplicationForm,
    limits: &InputSettings,
    today: NaiveDate,
) -> Result<()> {
    within(
        "matter_code",
        form.matter_code.as_str(),
        limits.code_max_chars,
    )?;
    check_applicant(form, limits, today)?;
    within(
        "region.district",
        form.region.district.as_str(),
        limits.code_max_chars,
    )?;
    within(
        "region.street",
        form.region.street.as_str(),
        limits.code_max_chars,
    )?;
    materials("materials", &form.materials, limits)?;
    check_form(&form.form, limits)
}

/// The applicant block: a name, an identity number, a phone.
fn check_applicant(form: &ApplicationForm, limits: &InputSettings, today: NaiveDate) -> Result<()> {
    let applicant = &form.applicant;
    if applicant.name.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "applicant.name",
            "applicant.name is empty: give the applicant's name (a person's or a company's)",
        ));
    }
    within("applicant.name", &applicant.name, limits.name_max_chars)?;
    // The messages never repeat the number: it is personal data.
    check_id_number(&applicant.id_number, today).map_err(|error| {
        ApiError::invalid_field(
            "applicant.id_number",
            format!(
                "applicant.id_number is not a resident identity number (GB 11643) or a unified \
                 social credit code (GB 32100): it {error}"
            ),
        )
    })?;
    check_phone(&applicant.phone).map_err(|error| {
        ApiError::invalid_field("applicant.phone", format!("applicant.phone {error}"))
    })
}

/// The free-form `form`: its nesting, its strings, then its size.
fn check_form(form: &Value, limits: &InputSettings) -> Result<()> {
    let depth = depth(form);
    if depth > limits.form_max_depth {
        return Err(ApiError::invalid_field(
            "form",
            format!(
                "form is nested {depth} levels deep; at most {} are taken: flatten it",
                limits.form_max_depth
            ),
        ));
    }
    check_strings(form, "form", limits.form_text_max_chars)?;
    // Measured as it will travel: compact JSON. Encoding plain data cannot fail; if it did, the
    // application could not be published either, so count it as too large.
    let size = serde_json::to_vec(form).map_or(usize::MAX, |json| json.len());
    if size > limits.form_max_bytes {
        return Err(ApiError::invalid_field(
            "form",
            format!(
                "form is {size} bytes as compact JSON; at most {} are taken: hand in long \
                 content as a material, by reference",
                limits.form_max_bytes
            ),
        ));
    }
    Ok(())
}

/// How deep `value` nests: 0 for a plain value, 1 for an object or list of plain values, …
/// (`serde_json` refuses a body nested over 128 deep, so this recursion is bounded).
fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(list) => 1 + list.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Refuses the first key or string under `value` longer than `max_chars`, naming its path.
fn check_strings(value: &Value, path: &str, max_chars: usize) -> Result<()> {
    match value {
        Value::String(text) => within(path, text, max_chars),
        Value::Object(map) => map.iter().try_for_each(|(key, inner)| {
            // Named by the object that holds it: a path with the key would repeat it in full.
            if key.chars().nth(max_chars).is_some() {
                return Err(ApiError::invalid_field(
                    path,
                    format!("{path} has a key longer than {max_chars} characters: shorten it"),
                ));
            }
            check_strings(inner, &format!("{path}.{key}"), max_chars)
        }),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .try_for_each(|(i, inner)| check_strings(inner, &format!("{path}[{i}]"), max_chars)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 30).expect("a date")
    }

    fn form(body: Value) -> ApplicationForm {
        serde_json::from_value(body).expect("a form serde takes")
    }

    fn valid() -> Value {
        json!({
            "matter_code": "individual_business_registration",
            "applicant": { "name": "张三", "id_number": "500103199001011232", "phone": "13800138000" },
            "region": { "district": "500103", "street": "500103001" },
            "materials": ["id_card"],
            "form": { "shop": { "name": "老火锅", "seats": 40 } },
        })
    }

    fn refused_field(body: Value) -> Option<String> {
        check_application(&form(body), &InputSettings::default(), today())
            .err()
            .and_then(|error| error.field)
    }

    #[test]
    fn a_valid_application_is_taken() {
        assert_eq!(refused_field(valid()), None);
    }

    #[test]
    fn each_broken_field_is_named() {
        let cases = [
            (
                "/applicant/id_number",
                json!("500103199001011234"),
                "applicant.id_number",
            ),
            ("/applicant/phone", json!("1380013800"), "applicant.phone"),
            ("/applicant/name", json!(" "), "applicant.name"),
            ("/applicant/name", json!("名".repeat(101)), "applicant.name"),
            ("/region/street", json!("5".repeat(65)), "region.street"),
            ("/matter_code", json!("m".repeat(65)), "matter_code"),
            ("/materials", json!(vec!["id_card"; 101]), "materials"),
            (
                "/form/shop/name",
                json!("店".repeat(4001)),
                "form.shop.name",
            ),
            ("/form/shop", json!({ "k".repeat(4001): 1 }), "form.shop"),
            ("/form", json!([[[[[[[[[1]]]]]]]]]), "form"),
            (
                "/form",
                json!({ "notes": vec!["x".repeat(4000); 17] }),
                "form",
            ),
        ];
        for (pointer, value, field) in cases {
            let mut body = valid();
            *body.pointer_mut(pointer).expect("a field of the body") = value;
            assert_eq!(refused_field(body).as_deref(), Some(field), "{pointer}");
        }
    }

    #[test]
    fn a_form_at_the_depth_limit_is_taken() {
        let mut body = valid();
        body["form"] = json!([[[[[[[[1]]]]]]]]);
        assert_eq!(depth(&body["form"]), 8);
        assert_eq!(refused_field(body), None);
    }
}
