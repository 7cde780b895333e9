//! `r4-exec ls` and `r4-exec init`: what this key can read — vaults, items
//! and fields with their ids, types and whether each is secret — verified
//! the way a run verifies it ([`crate::resolve::vault`]: signer directory,
//! summary checkpoint, wrapped key, item signatures), so that a reference
//! copied from here resolves the same way under `check`. What fails
//! verification is reported, never listed.
//!
//! No value is ever shown, not even of a field marked not secret: "not
//! secret" is a label an operator chose, not a promise (a host name or a user
//! name can still matter to an attacker), and listings like this one end up
//! in terminals, tickets and CI logs. Nothing here copies a value.

use std::fmt::Write;
use std::path::Path;

use crate::config::Config;
use crate::contract::crypto::PrivateKey;
use crate::contract::directory::TrustPolicy;
use crate::contract::envname::{derive, is_valid_env_name};
use crate::contract::wire::{ItemSummary, ProjectDetail, SyncResponse, SyncVault, Vault};
use crate::contract::{VaultModel, VerifyError};
use crate::error::AppError;
use crate::reference::{escape_segment, unescape_segment, ReferenceError, SCHEME};
use crate::resolve::select::select;
use crate::resolve::vault::{check_vault, Checked};
use crate::resolve::{Failure, Problem};

/// What `ls` lists: everything, or one vault, item or field, each segment
/// an id or a name matched as in a reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Vault segment.
    pub vault: Option<String>,
    /// Item segment (only with a vault).
    pub item: Option<String>,
    /// Field segment (only with an item).
    pub field: Option<String>,
}

impl Scope {
    /// Parses `r4://<vault>[/<item>[/<field>]]` (a trailing `/` is ignored),
    /// with the escapes of a full reference.
    pub fn parse(text: &str) -> Result<Scope, String> {
        let bad = |why: String| format!("\"{text}\": {why}; expected r4://<vault>[/<item>]");
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("does not start with r4://".into()))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let raw: Vec<&str> = rest.split('/').collect();
        if raw.len() > 3 {
            return Err(bad(format!("{} segments, at most 3", raw.len())));
        }
        let mut segs = Vec::new();
        for (i, seg) in raw.iter().enumerate() {
            if seg.is_empty() {
                return Err(bad(ReferenceError::Empty(i + 1).to_string()));
            }
            segs.push(
                unescape_segment(seg)
                    .ok_or_else(|| bad(ReferenceError::Escape(i + 1).to_string()))?,
            );
        }
        let mut segs = segs.into_iter();
        Ok(Scope {
            vault: segs.next(),
            item: segs.next(),
            field: segs.next(),
        })
    }
}

/// A field as listed: never its value.
#[derive(Debug, Clone)]
pub struct FieldView {
    /// Field id.
    pub id: String,
    /// Field name.
    pub name: String,
    /// Field type (PASSWORD, TEXT, ...).
    pub field_type: String,
    /// Whether R4 marks it secret.
    pub secret: bool,
    /// Its reference segment: the name when the name selects it, else the id.
    pub segment: String,
}

/// An item whose signature verified.
#[derive(Debug, Clone)]
pub struct ItemView {
    /// Item id.
    pub id: String,
    /// Item name.
    pub name: String,
    /// Item type (LOGIN, API_KEY, ...).
    pub item_type: String,
    /// Its reference segment.
    pub segment: String,
    /// Fingerprint of the key that signed it.
    pub signer: String,
    /// Its fields, in the item's order.
    pub fields: Vec<FieldView>,
}

/// A vault whose directory, summary and key verified.
#[derive(Debug, Clone)]
pub struct VaultView {
    /// Vault id.
    pub id: String,
    /// Vault name (not signed: reference a vault by id to be immune to a rename).
    pub name: String,
    /// Its reference segment.
    pub segment: String,
    /// How its values are protected.
    pub model: VaultModel,
    /// Its items, by name.
    pub items: Vec<ItemView>,
}

impl VaultView {
    /// Every field of the vault with its item and full reference.
    fn fields(&self) -> impl Iterator<Item = (&ItemView, &FieldView, String)> {
        self.items.iter().flat_map(move |i| {
            i.fields.iter().map(move |f| {
                let reference = format!("{SCHEME}{}/{}/{}", self.segment, i.segment, f.segment);
                (i, f, reference)
            })
        })
    }
}

/// What verified, and what did not.
#[derive(Debug, Default)]
pub struct Listing {
    /// Vaults, by name.
    pub vaults: Vec<VaultView>,
    /// Everything that failed (or that the scope named and does not exist).
    pub problems: Vec<Problem>,
}

impl Listing {
    /// `Ok` when nothing failed; otherwise every problem, and `outcome`
    /// (what that means for the command) as the last line.
    pub fn complete(self, outcome: &'static str) -> Result<Listing, AppError> {
        if self.problems.is_empty() {
            Ok(self)
        } else {
            Err(AppError::Incomplete {
                problems: self.problems,
                outcome,
            })
        }
    }
}

/// Verifies and lists what `scope` names in a full sync answer.
pub fn list(sync: &SyncResponse, key: &PrivateKey, trust: &TrustPolicy, scope: &Scope) -> Listing {
    let mut listing = Listing::default();
    let vaults: Vec<&SyncVault> = match &scope.vault {
        None => sync.vaults.iter().collect(),
        Some(segment) => match select("vault", segment, vaults_of(sync)) {
            Ok(v) => sync.vaults.iter().filter(|s| s.vault.id == v.id).collect(),
            Err(failure) => {
                listing.problems.push(problem(segment, failure));
                return listing;
            }
        },
    };
    add_vaults(&mut listing, sync, vaults, key, trust, scope);
    listing
}

/// Verifies and lists the vaults of a project that are shared with this key.
pub fn list_project(
    sync: &SyncResponse,
    key: &PrivateKey,
    trust: &TrustPolicy,
    project: &ProjectDetail,
) -> Listing {
    let mut listing = Listing::default();
    let vaults = sync
        .vaults
        .iter()
        .filter(|v| project.vaults.iter().any(|p| p.id == v.vault.id))
        .collect();
    add_vaults(&mut listing, sync, vaults, key, trust, &Scope::default());
    listing
}

fn add_vaults(
    listing: &mut Listing,
    sync: &SyncResponse,
    vaults: Vec<&SyncVault>,
    key: &PrivateKey,
    trust: &TrustPolicy,
    scope: &Scope,
) {
    for raw in vaults {
        let segment = segment_for(&raw.vault.id, &raw.vault.name, || {
            select("vault", &raw.vault.name, vaults_of(sync)).map(|v| &v.id)
        });
        let label = format!("{SCHEME}{segment}");
        match verify_vault(raw, key, trust) {
            Ok(checked) => {
                let items = items(&checked, &label, scope, &mut listing.problems);
                listing.vaults.push(VaultView {
                    id: raw.vault.id.clone(),
                    name: raw.vault.name.clone(),
                    segment,
                    model: checked.model(),
                    items,
                });
            }
            Err(failure) => listing.problems.push(problem(&label, failure)),
        }
    }
    by_name(&mut listing.vaults, |v| &v.name);
}

/// The vault list entries of a sync answer: one iterator type, so that
/// `select` over vaults is compiled once here (the static binary has a
/// 6 MiB budget).
fn vaults_of(sync: &SyncResponse) -> impl Iterator<Item = &Vault> + Clone {
    sync.vaults.iter().map(|v| &v.vault)
}

/// Orders `items` by name, case-insensitively. The keys are sorted by one
/// non-generic function, so vaults and items share one copy of the sort
/// code (each generic sort costs about 7 KB of the static binary's budget).
fn by_name<T>(items: &mut Vec<T>, name: impl Fn(&T) -> &String) {
    let order = name_order(items.iter().map(|i| name(i).to_lowercase()).collect());
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

/// The positions of `names` in sorted order (ties in their given order).
fn name_order(names: Vec<String>) -> Vec<usize> {
    let mut keyed: Vec<(String, usize)> = names.into_iter().zip(0..).collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// A vault's directory and summary, then its wrapped key: signed for this
/// vault by a signer of the directory, wrapped to this agent's key, and
/// unwrapped (the DEK is wiped at once). That is what "this key can read
/// it" means.
fn verify_vault<'s>(
    raw: &'s SyncVault,
    key: &PrivateKey,
    trust: &TrustPolicy,
) -> Result<Checked<'s>, Failure> {
    let checked = check_vault(raw, None, trust)?;
    drop(checked.open_key(key)?);
    Ok(checked)
}

/// The items of a verified vault that `scope` names, each with its
/// signature checked; a failing item is a problem and is left out.
fn items(
    checked: &Checked<'_>,
    vault: &str,
    scope: &Scope,
    problems: &mut Vec<Problem>,
) -> Vec<ItemView> {
    let chosen: Vec<&ItemSummary> = match &scope.item {
        None => checked.item_summaries().collect(),
        Some(segment) => match select("item", segment, checked.item_summaries()) {
            Ok(item) => vec![item],
            Err(failure) => {
                problems.push(problem(&format!("{vault}/{segment}"), failure));
                return Vec::new();
            }
        },
    };
    let mut out = Vec::new();
    for summary in chosen {
        let segment = segment_for(&summary.id, &summary.name, || {
            select("item", &summary.name, checked.item_summaries()).map(|i| &i.id)
        });
        let label = format!("{vault}/{segment}");
        match item(checked, summary, segment, scope) {
            Ok(view) => out.push(view),
            Err(failure) => problems.push(problem(&label, failure)),
        }
    }
    by_name(&mut out, |i| &i.name);
    out
}

/// One item: its detail verified against the vault summary (§4.3), its
/// fields as `scope` selects them.
fn item(
    checked: &Checked<'_>,
    summary: &ItemSummary,
    segment: String,
    scope: &Scope,
) -> Result<ItemView, Failure> {
    let (id, detail) = checked
        .detail(&summary.id)
        .ok_or_else(|| Failure::Verify(VerifyError::NotInSummary(summary.id.clone())))?;
    let signer = checked.check(detail, id)?;
    let fields = match &scope.field {
        None => detail.fields.iter().collect(),
        Some(segment) => vec![select("field", segment, detail.fields.iter())?],
    };
    let fields = fields
        .into_iter()
        .map(|f| FieldView {
            id: f.id.clone(),
            name: f.name.clone(),
            field_type: f.field_type.clone(),
            secret: f.is_secret,
            segment: segment_for(&f.id, &f.name, || {
                select("field", &f.name, detail.fields.iter()).map(|g| &g.id)
            }),
        })
        .collect();
    Ok(ItemView {
        id: summary.id.clone(),
        name: summary.name.clone(),
        item_type: summary.item_type.clone(),
        segment,
        signer,
        fields,
    })
}

/// The segment that names an object in a reference: its name (escaped)
/// when the name selects this very object, else its id, so that every
/// reference printed resolves, even among duplicate names.
fn segment_for<'a, F>(id: &str, name: &str, selected: F) -> String
where
    F: FnOnce() -> Result<&'a String, Failure>,
{
    match selected() {
        Ok(found) if found == id => escape_segment(name),
        _ => id.to_string(),
    }
}

fn problem(reference: &str, failure: Failure) -> Problem {
    Problem {
        name: None,
        reference: Some(reference.to_string()),
        failure,
    }
}

/// How a vault's values are protected, and what a run does with it.
fn model_text(model: VaultModel) -> &'static str {
    match model {
        VaultModel::V3 => "end-to-end encrypted, key unwrapped with this agent's key",
        VaultModel::Legacy => {
            "legacy: the server holds the key; a run refuses it unless allow_legacy = true"
        }
        VaultModel::Unencrypted => {
            "unencrypted: the server can read it; a run refuses it unless allow_unencrypted = true"
        }
    }
}

/// One line per listed vault that a run refuses by default (legacy,
/// unencrypted): with `[project]` these fail `check` until the operator
/// opts in, which `init` must say rather than leave to be discovered.
pub fn refused_by_default(listing: &Listing) -> Vec<String> {
    listing
        .vaults
        .iter()
        .filter_map(|v| {
            let (kind, key) = match v.model {
                VaultModel::V3 => return None,
                VaultModel::Legacy => ("legacy (the server holds its key)", "allow_legacy"),
                VaultModel::Unencrypted => {
                    ("unencrypted (the server can read it)", "allow_unencrypted")
                }
            };
            Some(format!(
                "vault \"{}\" is {kind}: `r4-exec check` refuses it until {key} = true in [r4]",
                v.name
            ))
        })
        .collect()
}

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

/// What `init` writes besides the listing.
#[derive(Debug)]
pub struct Starter<'a> {
    /// The base URL in use.
    pub base_url: &'a str,
    /// The agent key in use, as an absolute path.
    pub private_key_file: Option<&'a Path>,
    /// `--project`: its selector line (`name = "…"` or `id = "…"`) and the
    /// vaults of the project this key cannot see.
    pub project: Option<(String, Vec<String>)>,
}

const STARTER_HEAD: &str = "\
# r4.toml: what r4-exec fetches from R4, written by `r4-exec init`.
# Every key is documented in r4.toml.example (README: Configuration).
# Next: `r4-exec check` verifies everything and prints no value;
# then `r4-exec -- COMMAND` runs COMMAND with these variables.
";

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

/// A starter `r4.toml` for `listing`: connection settings, then an `[env]`
/// line per field (or, with a project, its `[project]` table and the names
/// it yields, as comments). Validated as `r4-exec` will read it; an error
/// when it would fetch nothing.
pub fn starter(listing: &Listing, s: &Starter<'_>, path: &Path) -> Result<String, AppError> {
    let mut out = String::from(STARTER_HEAD);
    r4_table(&mut out, listing, s);
    let (env, active) = env_lines(listing);
    match &s.project {
        Some((selector, unseen)) => {
            let _ = writeln!(out, "\n[project]\n{selector}");
            let _ = writeln!(out, "# It yields these variables (all of them unless include/exclude):");
            for line in env.lines().skip(1) {
                let _ = writeln!(out, "#   {}", line.trim_start_matches("# "));
            }
            for vault in unseen {
                let _ = writeln!(out, "# Vault {vault} of the project is not shared with this key: a run skips it.");
            }
        }
        None if active == 0 => {
            return Err(AppError::Usage(
                "nothing to write: this key can read no field of an end-to-end encrypted vault (see `r4-exec ls`); share a vault with the agent in R4, or use --project".into(),
            ))
        }
        None => {
            let _ = writeln!(out, "\n# Keys and certificates are better in [files] (a sealed in-memory file, not an env var): move their lines there.");
            out.push_str(&env);
        }
    }
    Config::parse(&out, path, true).map_err(AppError::from)?;
    Ok(out)
}

/// `[r4]`: where the server and the agent key are, never the API key.
fn r4_table(out: &mut String, listing: &Listing, s: &Starter<'_>) {
    let _ = writeln!(out, "\n[r4]\nbase_url = {}", toml_string(s.base_url));
    let _ = writeln!(
        out,
        "# The API key is never written here: R4_API_KEY, api_key_file, or the systemd credential r4-api-key.\n# api_key_file = \"/run/secrets/r4-api-key\""
    );
    match s.private_key_file {
        Some(p) => {
            let _ = writeln!(
                out,
                "private_key_file = {}",
                toml_string(&p.display().to_string())
            );
        }
        None => {
            let _ = writeln!(out, "# private_key_file = \"/run/secrets/r4-agent.pem\"");
        }
    }
    for (model, key, why) in [
        (
            VaultModel::Legacy,
            "allow_legacy",
            "the server holds their key (not zero-trust)",
        ),
        (
            VaultModel::Unencrypted,
            "allow_unencrypted",
            "the server can read their values",
        ),
    ] {
        let names: Vec<String> = listing
            .vaults
            .iter()
            .filter(|v| v.model == model)
            .map(|v| format!("\"{}\"", v.name))
            .collect();
        if !names.is_empty() {
            let _ = writeln!(
                out,
                "# {} ({}): a run refuses them unless you accept that {why}:\n# {key} = true",
                names.join(", "),
                if model == VaultModel::Legacy {
                    "legacy"
                } else {
                    "unencrypted"
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_like_references() {
        let s = Scope::parse("r4://Production Secrets/CI%2FCD").unwrap();
        assert_eq!(s.vault.as_deref(), Some("Production Secrets"));
        assert_eq!(s.item.as_deref(), Some("CI/CD"));
        assert_eq!(s.field, None);
        assert_eq!(Scope::parse("r4://V/").unwrap().item, None);
        assert_eq!(
            Scope::parse("r4://V/I/F").unwrap().field.as_deref(),
            Some("F")
        );
        for (bad, why) in [
            ("V/I", "does not start with r4://"),
            ("r4://", "segment 1 of the reference is empty"),
            ("r4://V//F", "segment 2 of the reference is empty"),
            ("r4://V/I/F/G", "4 segments, at most 3"),
            ("r4://V%20", "bad escape in segment 1"),
        ] {
            let e = Scope::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    fn view(model: VaultModel, fields: &[(&str, &str)]) -> VaultView {
        let items = fields
            .iter()
            .map(|(item, field)| ItemView {
                id: format!("i-{item}"),
                name: item.to_string(),
                item_type: "LOGIN".into(),
                segment: escape_segment(item),
                signer: "sha256:00".into(),
                fields: vec![FieldView {
                    id: format!("f-{field}"),
                    name: field.to_string(),
                    field_type: "PASSWORD".into(),
                    secret: true,
                    segment: escape_segment(field),
                }],
            })
            .collect();
        VaultView {
            id: "v".into(),
            name: "V \"quoted\"".into(),
            segment: escape_segment("V \"quoted\""),
            model,
            items,
        }
    }

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

    #[test]
    fn a_starter_never_holds_an_api_key_and_parses() {
        let listing = Listing {
            vaults: vec![view(VaultModel::V3, &[("DB", "Password")])],
            problems: vec![],
        };
        let s = Starter {
            base_url: "https://r4.example/api/v1/machine",
            private_key_file: Some(Path::new("/keys/agent.pem")),
            project: None,
        };
        let text = starter(&listing, &s, Path::new("r4.toml")).unwrap();
        let c = Config::parse(&text, Path::new("r4.toml"), true).unwrap();
        assert_eq!(
            c.r4.private_key_file.as_deref(),
            Some(Path::new("/keys/agent.pem"))
        );
        assert_eq!(c.r4.api_key_file, None);
        assert!(!text.contains("rk_"), "{text}");
        let empty = Listing {
            vaults: vec![view(VaultModel::Legacy, &[("Old", "Token")])],
            problems: vec![],
        };
        let e = starter(&empty, &s, Path::new("r4.toml")).unwrap_err();
        assert!(e.to_string().starts_with("nothing to write"), "{e}");
    }
}
