//! r4-exec's own environment variables, named once. `startup::settings`
//! reads them; `startup::sources` removes them (and every other `R4_*`) from COMMAND's
//! environment unless `--keep-r4-env`.

/// The API key itself.
pub const API_KEY: &str = "R4_API_KEY";
/// Path of the agent private key.
pub const PRIVATE_KEY_FILE: &str = "R4_PRIVATE_KEY_FILE";
/// Path of `r4.toml`.
pub const CONFIG: &str = "R4_CONFIG";
/// API base URL.
pub const BASE_URL: &str = "R4_BASE_URL";
/// Path of the fallback copy (`[fallback] path`).
pub const FALLBACK_FILE: &str = "R4_FALLBACK_FILE";
/// Oldest fallback copy used (`[fallback] max_age`).
pub const FALLBACK_MAX_AGE: &str = "R4_FALLBACK_MAX_AGE";
/// Start from the fallback copy without asking R4 (`[fallback] prefer`).
pub const FALLBACK_PREFER: &str = "R4_FALLBACK_PREFER";
/// Pinned signer fingerprints, comma- or space-separated (`[trust] signers`).
pub const TRUST_SIGNERS: &str = "R4_TRUST_SIGNERS";
/// Pinned transparency-log public key file (`[trust] log_public_key_file`).
pub const LOG_PUBLIC_KEY_FILE: &str = "R4_LOG_PUBLIC_KEY_FILE";
/// systemd's credentials directory (`LoadCredential=`); not ours, so it is
/// passed on to COMMAND.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";
/// File name of the API key inside `$CREDENTIALS_DIRECTORY`.
pub const CREDENTIAL_NAME: &str = "r4-api-key";
/// File name of the agent private key inside `$CREDENTIALS_DIRECTORY`.
pub const PRIVATE_KEY_CREDENTIAL: &str = "r4-private-key";

/// Every variable r4-exec reads for itself.
pub const OWN: &[&str] = &[
    API_KEY,
    PRIVATE_KEY_FILE,
    CONFIG,
    BASE_URL,
    FALLBACK_FILE,
    FALLBACK_MAX_AGE,
    FALLBACK_PREFER,
    TRUST_SIGNERS,
    LOG_PUBLIC_KEY_FILE,
];

/// Whether `name` is one of r4-exec's own variables: listed in [`OWN`] or
/// starting with `R4_`, so a variable added in a later version, or one the
/// user set for r4-exec under a name this list does not know yet, cannot
/// leak to COMMAND.
pub fn is_own(name: &[u8]) -> bool {
    OWN.iter().any(|v| v.as_bytes() == name) || name.starts_with(b"R4_")
}
