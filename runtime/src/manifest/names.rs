//! The rules for names written in a manifest: component and trigger IDs,
//! variable names, store labels. Kept apart from the checks that use them
//! so that the dependency-key parser and the host (which turns IDs into file
//! names) apply the very same rules.

/// Spin's rule for IDs, and what makes an ID safe to use as a file name.
pub(crate) fn is_kebab(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Spin's rule for variable names in `[variables]` and
/// `[component.X.variables]`.
pub(super) fn is_variable_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Labels of key-value stores and SQLite databases.
pub(super) fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
