//! Checks of request bodies that serde cannot express: lists and reasons that must say
//! something once trimmed.

use super::error::{ApiError, Result};

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
