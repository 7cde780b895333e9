//! Names a vault writer may not choose. A name r4-exec *derives* —
//! from a `[project]` (item "Ld" + field "Preload" → `LD_PRELOAD`), as the
//! `/vault/env` endpoint sends it, as a key of a `bundle = "project"` file,
//! or as a line `init`/`ls --toml` writes — is chosen by whoever can name an
//! item and a field in a shared vault, or by the server. Such a name carries
//! data, never a way to **load code, change trust or redirect traffic**, so
//! it never sets a variable of these families; only an explicit mapping the
//! user wrote in `r4.toml` may (docs/security.md, "Names a vault writer
//! chooses").
//!
//! [`refusal`] is the one function that decides; every caller (derivation,
//! the env endpoint, `init`/`ls --toml`) asks it. The list is whole
//! *families*, by prefix, suffix and exact name, not a list of cases: a
//! program that adds a new `GIT_*` or `NODE_*` variable next year is covered
//! already. Names are matched without regard to ASCII case: some programs
//! read lower-case forms (`https_proxy`), some platforms fold case, and a
//! derived name never needs lower case to carry data.
//!
//! Sources: what glibc strips for set-user-ID programs (`UNSECURE_ENVVARS`),
//! sudo's `env_delete` defaults, and the documented start-up hooks, config
//! files and trust settings of common runtimes and tools.

/// How a family's pattern matches a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The name is the pattern.
    Exact,
    /// The name starts with the pattern.
    Prefix,
    /// The name ends with the pattern.
    Suffix,
}

/// A family of variables a vault writer may not set, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The name, prefix or suffix (upper case).
    pub pattern: &'static str,
    /// How `pattern` matches.
    pub how: Match,
    /// What setting one does (for the message and the docs table).
    pub reason: &'static str,
}

const fn exact(pattern: &'static str, reason: &'static str) -> Family {
    Family {
        pattern,
        how: Match::Exact,
        reason,
    }
}

const fn prefix(pattern: &'static str, reason: &'static str) -> Family {
    Family {
        pattern,
        how: Match::Prefix,
        reason,
    }
}

const fn suffix(pattern: &'static str, reason: &'static str) -> Family {
    Family {
        pattern,
        how: Match::Suffix,
        reason,
    }
}

/// Every family, grouped by what it controls. docs/security.md holds this
/// table as [`markdown_table`] writes it (a test compares them).
pub const FAMILIES: &[Family] = &[
    prefix("LD_", "the dynamic loader loads code (LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH)"),
    prefix("DYLD_", "the macOS dynamic loader loads code"),
    exact("GCONV_PATH", "glibc loads character-set converters (code) from it"),
    exact("GLIBC_TUNABLES", "glibc allocator and loader settings"),
    exact("LOCPATH", "glibc loads locales from it"),
    exact("NLSPATH", "message catalogues are loaded from it"),
    exact("GETCONF_DIR", "glibc runs getconf helpers from it"),
    exact("HOSTALIASES", "glibc redirects host names through it"),
    exact("LOCALDOMAIN", "glibc resolver search domains (redirects names)"),
    exact("RES_OPTIONS", "glibc resolver options"),
    exact("RESOLV_HOST_CONF", "glibc resolver configuration file"),
    exact("NIS_PATH", "glibc NIS+ lookups"),
    exact("MALLOC_TRACE", "glibc's allocator writes to this file"),
    exact("TZDIR", "time zone files are loaded from it"),
    exact("PATH", "where every program is looked up"),
    exact("HOME", "where shells and tools read start-up files and configuration"),
    exact("SHELL", "which shell programs start"),
    exact("IFS", "how shells split words"),
    exact("TMPDIR", "where programs create temporary files"),
    exact("ENV", "a file sh and bash run at start"),
    prefix("BASH_", "bash runs BASH_ENV at start and imports BASH_FUNC_* functions"),
    exact("SHELLOPTS", "bash options at start (xtrace runs PS4)"),
    exact("BASHOPTS", "bash options at start"),
    exact("PS4", "bash expands (and runs) it on every traced command"),
    exact("PROMPT_COMMAND", "bash runs it before every prompt"),
    exact("ZDOTDIR", "zsh runs its start-up files from it"),
    exact("PAGER", "the program tools start to page output"),
    exact("MANPAGER", "the program man starts to page output"),
    exact("EDITOR", "the program tools start to edit"),
    exact("VISUAL", "the program tools start to edit"),
    exact("BROWSER", "the program tools start to open links"),
    prefix("LESS", "less runs LESSOPEN/LESSCLOSE as commands"),
    exact("SSH_ASKPASS", "ssh runs it to ask for a passphrase"),
    exact("SUDO_ASKPASS", "sudo runs it to ask for a password"),
    exact("SSH_AUTH_SOCK", "ssh sends signing requests to this agent socket"),
    prefix("GIT_", "git runs GIT_SSH_COMMAND, GIT_EXEC_PATH, GIT_CONFIG_* settings (hooks, fsmonitor)"),
    prefix("XDG_CONFIG_", "where git and other tools read their configuration"),
    prefix("OPENSSL_", "OpenSSL loads OPENSSL_CONF (engines and providers: code) and modules"),
    prefix("SSL", "TLS trust (SSL_CERT_FILE, SSL_CERT_DIR) and key logging (SSLKEYLOGFILE)"),
    exact("CURL_CA_BUNDLE", "curl's trusted CAs"),
    exact("REQUESTS_CA_BUNDLE", "Python requests' trusted CAs"),
    exact("AWS_CA_BUNDLE", "the AWS SDKs' trusted CAs"),
    suffix("_PROXY", "where HTTP clients send traffic (HTTPS_PROXY, ALL_PROXY, NO_PROXY)"),
    exact("KUBECONFIG", "which cluster and credentials kubectl uses (and the exec plugins it runs)"),
    prefix("DOCKER_", "which engine docker talks to and which certificates it trusts"),
    prefix("NODE_", "node: NODE_OPTIONS --require, NODE_PATH, NODE_TLS_REJECT_UNAUTHORIZED, NODE_EXTRA_CA_CERTS"),
    prefix("NPM_CONFIG_", "npm's registry, scripts and settings"),
    prefix("PYTHON", "python: PYTHONPATH, PYTHONSTARTUP, PYTHONUSERBASE, PYTHONHOME load code"),
    prefix("PERL", "perl: PERL5OPT -M, PERL5LIB load code"),
    prefix("RUBY", "ruby: RUBYOPT -r, RUBYLIB load code"),
    prefix("LUA_", "lua runs LUA_INIT and loads modules from LUA_PATH"),
    prefix("JAVA_", "the JVM: JAVA_TOOL_OPTIONS -javaagent loads code"),
    prefix("JDK_", "the java launcher: JDK_JAVA_OPTIONS"),
    exact("_JAVA_OPTIONS", "the JVM: options, -javaagent included"),
    exact("CLASSPATH", "the JVM loads classes from it"),
    prefix("DOTNET_", ".NET runs DOTNET_STARTUP_HOOKS and reads runtime settings"),
    prefix("CORECLR_", ".NET loads CORECLR_PROFILER (code)"),
    prefix("PHP", "php reads PHPRC and PHP_INI_SCAN_DIR (auto_prepend_file runs code)"),
    prefix("R4_", "r4-exec's own settings (R4_BASE_URL would send a nested r4-exec's API key elsewhere)"),
];

fn matches(f: &Family, name: &str) -> bool {
    let n = name.as_bytes();
    let p = f.pattern.as_bytes();
    match f.how {
        Match::Exact => n.eq_ignore_ascii_case(p),
        Match::Prefix => n.len() >= p.len() && n[..p.len()].eq_ignore_ascii_case(p),
        Match::Suffix => n.len() >= p.len() && n[n.len() - p.len()..].eq_ignore_ascii_case(p),
    }
}

/// The family that forbids a vault writer to choose `name`, if one does.
/// The one decision: derivation, the env endpoint and `init`/`ls --toml`
/// all ask it.
pub fn refusal(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| matches(f, name))
}

impl Family {
    /// The pattern as the docs write it: `LD_*`, `*_PROXY`, `PATH`.
    pub fn shown(&self) -> String {
        match self.how {
            Match::Exact => self.pattern.to_owned(),
            Match::Prefix => format!("{}*", self.pattern),
            Match::Suffix => format!("*{}", self.pattern),
        }
    }
}

/// The families as a Markdown table (docs/security.md carries it verbatim).
pub fn markdown_table() -> String {
    let mut out = String::from("| family | why a vault writer may not set it |\n| --- | --- |\n");
    for f in FAMILIES {
        out.push_str(&format!("| `{}` | {} |\n", f.shown(), f.reason));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name of each family, in the case the family is written in and in
    /// lower case: both refused, and by that family.
    #[test]
    fn every_family_refuses_its_members_in_any_case() {
        for f in FAMILIES {
            let member = match f.how {
                Match::Exact => f.pattern.to_owned(),
                Match::Prefix => format!("{}X", f.pattern),
                Match::Suffix => format!("X{}", f.pattern),
            };
            for name in [member.clone(), member.to_ascii_lowercase()] {
                let got = refusal(&name).unwrap_or_else(|| panic!("{name} not refused"));
                assert!(matches(got, &name), "{name}");
            }
        }
    }

    #[test]
    fn the_names_of_the_review_are_refused() {
        for name in [
            "LD_PRELOAD",
            "GIT_SSH_COMMAND",
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_KEY_0",
            "GIT_CONFIG_VALUE_0",
            "OPENSSL_CONF",
            "LUA_INIT",
            "DOTNET_STARTUP_HOOKS",
            "PYTHONUSERBASE",
            "PAGER",
            "PHP_INI_SCAN_DIR",
            "ZDOTDIR",
            "SSLKEYLOGFILE",
            "SSL_CERT_FILE",
            "NODE_TLS_REJECT_UNAUTHORIZED",
            "HTTPS_PROXY",
            "https_proxy",
            "R4_BASE_URL",
            "BASH_FUNC_ls%%",
            "_JAVA_OPTIONS",
        ] {
            assert!(refusal(name).is_some(), "{name}");
        }
    }

    /// Exact names match only themselves; patterns do not match inside a
    /// name; ordinary secrets pass.
    #[test]
    fn ordinary_names_pass() {
        for name in [
            "DATABASE_URL",
            "PRODUCTION_DB_PASSWORD",
            "PATHS",
            "MY_PATH",
            "ENVIRONMENT",
            "HOMEPAGE",
            "STRIPE_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "PROXY_PASSWORD",
            "GITHUB_TOKEN",
            "XSSL",
            "A",
            "",
        ] {
            assert_eq!(refusal(name), None, "{name}");
        }
    }

    #[test]
    fn matching_is_exact_prefix_or_suffix() {
        let e = exact("AB", "");
        assert!(matches(&e, "ab") && !matches(&e, "ABC") && !matches(&e, "A"));
        let p = prefix("AB", "");
        assert!(
            matches(&p, "ABC") && matches(&p, "AB") && !matches(&p, "A") && !matches(&p, "XAB")
        );
        let s = suffix("AB", "");
        assert!(
            matches(&s, "XAB") && matches(&s, "ab") && !matches(&s, "B") && !matches(&s, "ABX")
        );
    }

    #[test]
    fn the_table_shows_every_family() {
        let table = markdown_table();
        assert_eq!(table.lines().count(), FAMILIES.len() + 2);
        assert!(table.contains("| `LD_*` |") && table.contains("| `*_PROXY` |"));
        assert!(table.contains("| `PATH` |"));
    }
}
