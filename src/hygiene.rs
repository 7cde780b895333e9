//! Variables that change how programs are found, loaded or started: the one
//! list of them. A name r4-exec *derives* (from a `[project]`, or as the
//! `/vault/env` endpoint sends it) never sets one of these: anyone who can
//! name an item and a field in a shared vault ("Ld" + "Preload" →
//! `LD_PRELOAD`), or a server that maps names, would otherwise choose code
//! that COMMAND runs. The user can still set any of them on purpose, by
//! mapping the name explicitly in `[env]`; a derived one fails the run
//! naming the variable and the field.
//!
//! The list follows what the C library itself strips for set-user-ID
//! programs (glibc's `UNSECURE_ENVVARS`), sudo's `env_delete` defaults and
//! the documented start-up hooks of common interpreters and runtimes.

/// Prefixes: every variable that starts with one of these.
pub const LOADER_PREFIXES: &[(&str, &str)] = &[
    (
        "LD_",
        "the dynamic loader (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, …)",
    ),
    ("DYLD_", "the macOS dynamic loader"),
    (
        "BASH_FUNC_",
        "bash: functions imported from the environment",
    ),
];

/// Exact names, each with what it changes.
pub const LOADER_NAMES: &[(&str, &str)] = &[
    ("PATH", "where programs are looked up"),
    ("HOME", "where shells and tools read their start-up files"),
    ("SHELL", "which shell programs start"),
    ("IFS", "how shells split words"),
    ("ENV", "a file sh and bash read at start"),
    ("BASH_ENV", "a file non-interactive bash reads at start"),
    ("SHELLOPTS", "bash options at start"),
    ("BASHOPTS", "bash options at start"),
    ("PS4", "bash: expanded (and run) on every traced command"),
    ("PROMPT_COMMAND", "bash: run before every prompt"),
    (
        "GCONV_PATH",
        "glibc: where character-set converters are loaded from",
    ),
    ("GLIBC_TUNABLES", "glibc: allocator and loader settings"),
    ("GETCONF_DIR", "glibc: where getconf helpers are found"),
    ("HOSTALIASES", "glibc: host name aliases file"),
    ("LOCALDOMAIN", "glibc: resolver search domains"),
    ("LOCPATH", "glibc: where locales are loaded from"),
    ("MALLOC_TRACE", "glibc: a file the allocator writes to"),
    ("NIS_PATH", "glibc: NIS+ lookups"),
    ("NLSPATH", "where message catalogues are loaded from"),
    ("RESOLV_HOST_CONF", "glibc: resolver configuration file"),
    ("RES_OPTIONS", "glibc: resolver options"),
    ("TMPDIR", "where programs create temporary files"),
    ("TZDIR", "where time zone files are loaded from"),
    (
        "NODE_OPTIONS",
        "node: options, --require of any module included",
    ),
    ("NODE_PATH", "node: where modules are loaded from"),
    ("PYTHONPATH", "python: where modules are loaded from"),
    (
        "PYTHONHOME",
        "python: where the standard library is loaded from",
    ),
    ("PYTHONSTARTUP", "python: a file run at interactive start"),
    ("PYTHONINSPECT", "python: interactive mode after the script"),
    (
        "PYTHONWARNINGS",
        "python: warning filters, which import modules",
    ),
    (
        "PYTHONBREAKPOINT",
        "python: a callable imported by breakpoint()",
    ),
    ("PERL5OPT", "perl: options, -M of any module included"),
    ("PERL5LIB", "perl: where modules are loaded from"),
    ("PERLLIB", "perl: where modules are loaded from"),
    ("RUBYOPT", "ruby: options, -r of any library included"),
    ("RUBYLIB", "ruby: where libraries are loaded from"),
    ("JAVA_TOOL_OPTIONS", "the JVM: options, -javaagent included"),
    ("_JAVA_OPTIONS", "the JVM: options"),
    ("JDK_JAVA_OPTIONS", "the java launcher: options"),
    ("CLASSPATH", "the JVM: where classes are loaded from"),
];

/// What `name` changes, if it is on the list (exact, or by prefix); `None`
/// for an ordinary variable. ASCII case matters, as it does to the programs
/// that read these.
pub fn changes_how_programs_start(name: &str) -> Option<&'static str> {
    LOADER_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .or_else(|| LOADER_PREFIXES.iter().find(|(p, _)| name.starts_with(p)))
        .map(|(_, what)| *what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes_are_on_the_list() {
        for name in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "DYLD_INSERT_LIBRARIES",
            "BASH_FUNC_ls%%",
            "PATH",
            "HOME",
            "SHELL",
            "IFS",
            "ENV",
            "BASH_ENV",
            "NODE_OPTIONS",
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "PERL5OPT",
            "RUBYOPT",
            "JAVA_TOOL_OPTIONS",
            "GCONV_PATH",
        ] {
            assert!(changes_how_programs_start(name).is_some(), "{name}");
        }
        for name in [
            "DATABASE_URL",
            "PRODUCTION_DB_PASSWORD",
            "PATHS",
            "MY_PATH",
            "path",
            "ENVIRONMENT",
            "HOMEPAGE",
        ] {
            assert!(changes_how_programs_start(name).is_none(), "{name}");
        }
    }
}
