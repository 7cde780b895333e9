//! Every exit code r4-exec itself returns, in one table. `--help`, the man
//! page (generated from `--help`) and the README's table are all generated
//! from [`TABLE`] (`tests/e2e/docs.rs` fails when the README drifts). Any other
//! code is COMMAND's own.

/// 64: usage or configuration.
pub const USAGE: u8 = 64;
/// 65: verification failed.
pub const VERIFY: u8 = 65;
/// 66: not found.
pub const NOT_FOUND: u8 = 66;
/// 69: network or service unavailable.
pub const UNAVAILABLE: u8 = 69;
/// 70: an internal failure of r4-exec (a system call it needs failed).
pub const SOFTWARE: u8 = 70;
/// 75: `--on-change exit`: a value COMMAND uses changed, and COMMAND was
/// stopped so that its orchestrator starts it anew (`EX_TEMPFAIL`).
pub const CHANGED: u8 = 75;
/// 77: authentication or permission.
pub const AUTH: u8 = 77;
/// 125: r4-exec could not prepare the process for COMMAND (`env(1)`'s code).
pub const SETUP_FAILED: u8 = 125;
/// 126: COMMAND found but cannot be executed.
pub const NOT_EXECUTABLE: u8 = 126;
/// 127: COMMAND (or its interpreter) not found.
pub const COMMAND_NOT_FOUND: u8 = 127;

/// Code and meaning, in code order.
pub const TABLE: &[(u8, &str)] = &[
    (USAGE, "usage or configuration: flags, r4.toml, key files, refused URL, legacy/unencrypted vault not allowed"),
    (VERIFY, "verification failed: a signature, checkpoint, envelope or server answer broke the contract"),
    (NOT_FOUND, "not found: a reference does not resolve, or the server answered 404"),
    (UNAVAILABLE, "network or service unavailable: connection, timeout, 429, 5xx"),
    (SOFTWARE, "internal: a system call r4-exec needs failed (memfd, signals, runtime)"),
    (CHANGED, "--on-change exit: a secret changed; COMMAND was stopped"),
    (AUTH, "authentication or permission: 401, 403, runtime key not registered or replaced"),
    (SETUP_FAILED, "r4-exec could not prepare the process for COMMAND (fork, descriptors, signal reset)"),
    (NOT_EXECUTABLE, "COMMAND found but not executable (or an argument holds a NUL byte)"),
    (COMMAND_NOT_FOUND, "COMMAND or its interpreter not found"),
];

/// 128+N: signal N ended COMMAND (supervisor mode), or arrived before it
/// started.
pub const SIGNALLED: &str =
    "signal N ended COMMAND (supervisor mode), or arrived before COMMAND started";

/// The table as plain text, for `--help` and the man page.
pub fn help_text() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, meaning) in TABLE {
        s.push_str(&format!("  {code}  {meaning}\n"));
    }
    s.push_str(&format!("  128+N  {SIGNALLED}\n"));
    s.push_str("  other  COMMAND's own exit code");
    s
}

/// The table as Markdown, for the README.
pub fn markdown() -> String {
    let mut s = String::from("| code | meaning |\n| --- | --- |\n");
    for (code, meaning) in TABLE {
        s.push_str(&format!("| {code} | {meaning} |\n"));
    }
    s.push_str(&format!("| 128+N | {SIGNALLED} |\n"));
    s.push_str("| other | COMMAND's own exit code |\n");
    s
}
