//! Checks of request bodies that serde cannot express: lists and reasons that must say
//! something once trimmed, and the limits of `[input]` on every field. A field that breaks
//! one is refused with 422 `invalid_field`, naming it. An application's own checks (identity,
//! phone, form) are in `application`.

mod application;

use super::error::{ApiError, Result};
use crate::settings::InputSettings;

pub(super) use application::check_application;

/// Non-empty, trimmed texts; `what` names them in the error.
pub(super) fn texts(list: Vec<String>, what: &str) -> Result<Vec<String>> {
    let list: Vec<String> = list
        .into_iter()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    if list.is_empty() {
        return Err(ApiError::invalid(
            "empty_list",
            format!("name at least one {what}"),
        ));
    }
    Ok(list)
}

/// A trimmed, non-empty text; `what` names it in the error.
pub(super) fn required(text: String, what: &str) -> Result<String> {
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(ApiError::invalid("missing_reason", format!("give {what}")));
    }
    Ok(text)
}

/// Refuses the text of `field` when it is longer than `max_chars` characters.
pub(super) fn within(field: &str, text: &str, max_chars: usize) -> Result<()> {
    // Counted up to one past the limit: a 900 KB text is not walked to its end.
    let chars = text.chars().take(max_chars.saturating_add(1)).count();
    if chars > max_chars {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "{field} is longer than {max_chars} characters, the most taken here: shorten it"
            ),
        ));
    }
    Ok(())
}

/// Refuses a list of materials at `field` that has more than `input.materials_max` entries, or
/// an entry longer than `input.material_max_chars`.
pub(super) fn materials(field: &str, list: &[String], limits: &InputSettings) -> Result<()> {
    let max = limits.materials_max;
    if list.len() > max {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "{field} lists {} materials; at most {max} are taken in one request: bundle \
                 related documents into one material",
                list.len()
            ),
        ));
    }
    for (i, material) in list.iter().enumerate() {
        within(
            &format!("{field}[{i}]"),
            material,
            limits.material_max_chars,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_at_the_limit_is_taken_and_one_past_it_refused_naming_the_field() {
        assert!(within("reason", &"长".repeat(5), 5).is_ok());
        let error = within("reason", &"长".repeat(6), 5).expect_err("over the limit");
        assert_eq!(error.field.as_deref(), Some("reason"));
        assert_eq!(error.code, "invalid_field");
        assert!(error.message.contains("5 characters"), "{error}");
    }

    #[test]
    fn too_many_materials_or_one_too_long_are_refused_naming_where() {
        let limits = InputSettings {
            materials_max: 2,
            material_max_chars: 3,
            ..InputSettings::default()
        };
        let many = vec!["a".to_owned(); 3];
        let long = vec!["a".to_owned(), "abcd".to_owned()];

        let many = materials("materials", &many, &limits).expect_err("three");
        let long = materials("materials", &long, &limits).expect_err("four characters");

        assert_eq!(many.field.as_deref(), Some("materials"));
        assert_eq!(long.field.as_deref(), Some("materials[1]"));
        assert!(materials("materials", &["abc".into(), "b".into()], &limits).is_ok());
    }
}
