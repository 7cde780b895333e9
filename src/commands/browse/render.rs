//! The listing as text: a line per vault, item and field (`ls`), and as
//! `[env]` lines (`ls --toml`, `init`).

use std::fmt::Write;

use crate::contract::envname::{derive, is_valid_env_name};
use crate::contract::VaultModel;

use crate::reference::SCHEME;

use super::{model_text, Listing};

/// The listing as text: a line per vault and item, then one per field that
/// starts with its reference, ready to paste into `[env]` or `[files]`.
pub fn render(listing: &Listing) -> String {
    let mut out = String::new();
    let width = listing
        .vaults
        .iter()
        .flat_map(|v| v.fields().map(|(_, _, r)| r.chars().count()))
        .max()
        .unwrap_or(0);
    for v in &listing.vaults {
        let _ = writeln!(
            out,
            "vault \"{}\"  {}  {}",
            v.name,
            v.id,
            model_text(v.model)
        );
        if v.items.is_empty() {
            let _ = writeln!(out, "  (no item)");
        }
        for i in &v.items {
            let _ = writeln!(
                out,
                "  item \"{}\"  {}  {}  signed by {}",
                i.name, i.id, i.item_type, i.signer
            );
            for f in &i.fields {
                let reference = format!("{SCHEME}{}/{}/{}", v.segment, i.segment, f.segment);
                let secret = if f.secret { "secret" } else { "not secret" };
                let _ = writeln!(
                    out,
                    "    {reference:<width$}  {:<10} {secret:<10}  field {}",
                    f.field_type, f.id
                );
            }
        }
    }
    if listing.vaults.is_empty() && listing.problems.is_empty() {
        let _ = writeln!(out, "no vault is shared with this key");
    }
    out
}

/// `[env]` lines for every listed field, named as `/vault/env` and
/// `[project]` name them ([`derive`]). A line that would not work as is
/// is written commented out, with the reason: a name taken by an earlier
/// line or not a valid variable name, a vault a run refuses by default,
/// and a name a vault writer may not choose ([`crate::hygiene`]: the
/// line would otherwise turn the writer's choice into an explicit mapping;
/// [`refused_names`] says so on stderr too).
pub fn env_lines(listing: &Listing) -> (String, usize) {
    let mut out = String::from("[env]\n");
    let mut taken: Vec<String> = Vec::new();
    let mut active = 0;
    for v in &listing.vaults {
        for (item, field, reference) in v.fields() {
            let name = derive(&item.name, &field.name);
            let why_not = if !is_valid_env_name(&name) {
                Some(format!("\"{name}\" is not a variable name: choose one"))
            } else if let Some(f) = crate::hygiene::refusal(&name) {
                Some(format!(
                    "{f}: a name chosen in a vault may not set it; uncomment only on purpose"
                ))
            } else if taken.contains(&name) {
                Some("same name as a line above: rename one".to_string())
            } else {
                taken.push(name.clone());
                match v.model {
                    VaultModel::V3 => None,
                    VaultModel::Legacy => {
                        Some("legacy vault: needs allow_legacy = true in [r4]".into())
                    }
                    VaultModel::Unencrypted => {
                        Some("unencrypted vault: needs allow_unencrypted = true in [r4]".into())
                    }
                }
            };
            let secret = if field.secret { "secret" } else { "not secret" };
            let value = toml_string(&reference);
            match why_not {
                None => {
                    active += 1;
                    let _ = writeln!(out, "{name} = {value}  # {}, {secret}", field.field_type);
                }
                Some(why) => {
                    let _ = writeln!(out, "# {name} = {value}  # {why}");
                }
            }
        }
    }
    (out, active)
}

/// One warning per listed field whose derived name a vault writer may not
/// choose ([`crate::hygiene`]): `init` and `ls --toml` leave its line
/// commented out, and say why here.
pub fn refused_names(listing: &Listing) -> Vec<String> {
    let mut out = Vec::new();
    for v in &listing.vaults {
        for (item, field, reference) in v.fields() {
            let name = derive(&item.name, &field.name);
            if let Some(f) = crate::hygiene::refusal(&name) {
                out.push(format!(
                    "{name} ({reference}) is commented out ({f} is never taken from a vault)"
                ));
            }
        }
    }
    out
}

/// `s` as a TOML basic string: `"…"` with `"`, `\` and control characters
/// escaped (TOML 1.0). Written here rather than taken from the toml crate,
/// whose serializer would add about 100 KB to the static binary, which has a
/// 6 MiB budget.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::browse::fixture::view;
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn env_lines_comment_out_what_would_not_work() {
        let listing = Listing {
            vaults: vec![
                view(
                    VaultModel::V3,
                    &[
                        ("DB", "Password"),
                        ("db", "password"),
                        ("!", "?"),
                        ("CI/CD", "key"),
                    ],
                ),
                view(VaultModel::Legacy, &[("Old", "Token")]),
            ],
            problems: vec![],
        };
        let (text, active) = env_lines(&listing);
        assert_eq!(active, 2, "{text}");
        assert!(
            text.contains(
                "DB_PASSWORD = \"r4://V \\\"quoted\\\"/DB/Password\"  # PASSWORD, secret"
            ),
            "{text}"
        );
        assert!(
            text.contains("# DB_PASSWORD = ") && text.contains("same name as a line above"),
            "{text}"
        );
        assert!(text.contains("\"\" is not a variable name"), "{text}");
        assert!(
            text.contains("CI_CD_KEY = ") && text.contains("CI%2FCD/key"),
            "{text}"
        );
        assert!(
            text.contains("# OLD_TOKEN = ") && text.contains("needs allow_legacy = true"),
            "{text}"
        );
        let parsed = Config::parse(&text, Path::new("r4.toml"), true).expect("valid TOML");
        assert_eq!(parsed.entries.len(), 2);
    }

    /// `init` wrote `LD_PRELOAD = "r4://Ctl/Ld/Preload"` as an explicit
    /// entry, which the next run set: a vault writer's name became the
    /// user's mapping. Such lines are commented out, with a warning.
    #[test]
    fn env_lines_never_map_a_name_a_vault_writer_may_not_choose() {
        let listing = Listing {
            vaults: vec![view(
                VaultModel::V3,
                &[
                    ("Ld", "Preload"),
                    ("Git Config", "Count"),
                    ("DB", "Password"),
                ],
            )],
            problems: vec![],
        };
        let (text, active) = env_lines(&listing);
        assert_eq!(active, 1, "{text}");
        for name in ["LD_PRELOAD", "GIT_CONFIG_COUNT"] {
            assert!(text.contains(&format!("# {name} = ")), "{text}");
        }
        assert!(text.contains("LD_*: a name chosen in a vault"), "{text}");
        let parsed = Config::parse(&text, Path::new("r4.toml"), true).expect("valid TOML");
        let names: Vec<_> = parsed.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["DB_PASSWORD"]);
        let warnings = refused_names(&listing);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("LD_PRELOAD (r4://"), "{warnings:?}");
        assert!(
            warnings[1].contains("(GIT_* is never taken"),
            "{warnings:?}"
        );
    }

    #[test]
    fn toml_strings_read_back_as_written() {
        for text in [
            "plain",
            "a \"quoted\" \\ path",
            "tab\tnew\nline\u{7f}\u{1}",
            "ünï €",
        ] {
            let doc = format!("k = {}\n", toml_string(text));
            let parsed: std::collections::BTreeMap<String, String> =
                toml::from_str(&doc).expect(&doc);
            assert_eq!(parsed["k"], text, "{doc}");
        }
    }
}
