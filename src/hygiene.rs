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

/// Every family, grouped by what it controls: `PREFIX*`, `*SUFFIX` or an
/// exact name. What setting each one does is in the table of
/// docs/security.md, which lists these same families in this order (a test
/// compares them); the reasons stay out of the binary, whose static budget
/// has little room.
pub const FAMILIES: &str = "\
    LD_* DYLD_* GCONV_PATH GLIBC_TUNABLES LOCPATH NLSPATH GETCONF_DIR \
    HOSTALIASES LOCALDOMAIN RES_OPTIONS RESOLV_HOST_CONF NIS_PATH \
    MALLOC_TRACE TZDIR PATH HOME SHELL IFS TMPDIR ENV BASH_* SHELLOPTS \
    BASHOPTS PS4 PROMPT_COMMAND ZDOTDIR PAGER MANPAGER EDITOR VISUAL \
    BROWSER LESS* SSH_ASKPASS SUDO_ASKPASS SSH_AUTH_SOCK GIT_* \
    XDG_CONFIG_* OPENSSL_* SSL* CURL_CA_BUNDLE REQUESTS_CA_BUNDLE \
    AWS_CA_BUNDLE *_PROXY KUBECONFIG DOCKER_* NODE_* NPM_CONFIG_* PYTHON* \
    PERL* RUBY* LUA_* JAVA_* JDK_* _JAVA_OPTIONS CLASSPATH DOTNET_* \
    CORECLR_* PHP* R4_*";

/// [`FAMILIES`], one by one (one string, not a slice of them: 900 bytes
/// less in the static binary).
pub fn families() -> impl Iterator<Item = &'static str> {
    FAMILIES.split_ascii_whitespace()
}

/// Whether `name` belongs to `family` (ASCII case ignored).
fn matches(family: &str, name: &str) -> bool {
    let n = name.as_bytes();
    if let Some(p) = family.strip_suffix('*') {
        let p = p.as_bytes();
        n.len() >= p.len() && n[..p.len()].eq_ignore_ascii_case(p)
    } else if let Some(p) = family.strip_prefix('*') {
        let p = p.as_bytes();
        n.len() >= p.len() && n[n.len() - p.len()..].eq_ignore_ascii_case(p)
    } else {
        n.eq_ignore_ascii_case(family.as_bytes())
    }
}

/// The family that forbids a vault writer to choose `name`, if one does.
/// The one decision: derivation, the env endpoint and `init`/`ls --toml`
/// all ask it.
pub fn refusal(name: &str) -> Option<&'static str> {
    families().find(|f| matches(f, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name of each family, in the case the family is written in and in
    /// lower case: both refused, and by that family.
    #[test]
    fn every_family_refuses_its_members_in_any_case() {
        for f in families() {
            let member = f.replace('*', "X");
            for name in [member.clone(), member.to_ascii_lowercase()] {
                let got = refusal(&name).unwrap_or_else(|| panic!("{name} not refused"));
                assert!(matches(got, &name), "{name}");
                assert!(families().any(|f| f == got));
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
        assert!(matches("AB", "ab") && !matches("AB", "ABC") && !matches("AB", "A"));
        assert!(matches("AB*", "ABC") && matches("AB*", "AB") && !matches("AB*", "A"));
        assert!(!matches("AB*", "XAB"));
        assert!(matches("*AB", "XAB") && matches("*AB", "ab") && !matches("*AB", "B"));
        assert!(!matches("*AB", "ABX"));
    }
}
