//! Env-name derivation of `/vault/env` (contract §6.4), also used for
//! `[project]` resolution so both sources name a field identically.

/// `SCREAMING_SNAKE_CASE(item + "_" + field)`: ASCII upper case, each run of
/// characters outside `[A-Za-z0-9]` becomes one `_`, leading/trailing `_`
/// trimmed, a leading digit gets a `_` prefix.
pub fn derive(item: &str, field: &str) -> String {
    let mut out = String::with_capacity(item.len() + field.len() + 1);
    let mut pending_sep = false;
    for ch in item
        .chars()
        .chain(std::iter::once('_'))
        .chain(field.chars())
    {
        if ch.is_ascii_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.push(ch.to_ascii_uppercase());
        } else {
            pending_sep = true;
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Whether `name` is a valid environment variable name for r4-exec:
/// `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
