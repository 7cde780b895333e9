//! The seed: the TOML file that describes the world a devserver starts with
//! (org, tenant, API keys, projects, vaults, items, fields), parsed strictly
//! and resolved to concrete ids before anything else runs.
//!
//! # Format
//!
//! ```toml
//! [org]                      # required
//! id = "…"                   # optional, 24 lowercase hex; derived when absent
//! name = "Demo Org"
//!
//! [tenant]                   # required; same keys as [org]
//! name = "Demo Tenant"
//!
//! [[agents]]                 # one per API key
//! id = "…"                   # optional
//! name = "demo-agent"
//! api_key = "rk_<access>.<secret>"      # what clients send in X-API-Key
//! scope = "AGENT"            # AGENT (default) | USER | TENANT | ORG
//! permissions = ["machine.all"]         # default ["machine.all"]
//! public_key = """-----BEGIN PUBLIC KEY-----…"""   # optional: pre-registered runtime key (SPKI PEM)
//!
//! [[projects]]
//! id = "…"                   # optional
//! name = "Demo Project"
//! description = "…"          # optional
//! external_id = "…"          # optional
//!
//! [[vaults]]
//! id = "…"                   # optional
//! name = "Production Secrets"
//! model = "encrypted"        # encrypted (default) | legacy | unencrypted
//! project = "Demo Project"   # optional: a project id or name
//! shared_with = ["demo-agent"]          # AGENT keys, by id or name
//! data_classification = "CONFIDENTIAL"  # optional
//!
//! [[vaults.items]]
//! id = "…"                   # optional
//! name = "Production DB"
//! type = "LOGIN"             # default "LOGIN"
//! websites = ["https://db.example.com"] # default []
//!
//! [[vaults.items.fields]]
//! id = "…"                   # optional
//! name = "Password"
//! type = "PASSWORD"          # default "TEXT"
//! value = "s3cret"           # plaintext; default ""
//! secret = true              # default: true for type PASSWORD or SECRET
//! ```
//!
//! Unknown keys are errors. Absent ids are derived deterministically as the
//! first 24 hex characters of SHA-256 of a path of names ([`derive_id`]):
//! `org/<name>`, `tenant/<name>`, `agent/<name>`, `project/<name>`,
//! `vault/<vault>`, `vault/<vault>/item/<item>`,
//! `vault/<vault>/item/<item>/field/<field>` — so
//! `printf 'vault/Edge' | sha256sum | cut -c1-24` is the id of vault "Edge".

use std::collections::HashSet;

use r4_contract::crypto::{sha256, PublicKey};
use r4_contract::VaultModel;
use serde::Deserialize;

/// Why a seed was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// Not valid TOML, or a key of the wrong type, or an unknown key.
    #[error("seed: {0}")]
    Toml(#[from] toml::de::Error),
    /// Valid TOML that breaks a rule of the format.
    #[error("seed: {0}")]
    Invalid(String),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, SeedError> {
    Err(SeedError::Invalid(msg.into()))
}

/// A whole seed file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// The organisation.
    pub org: NamedSeed,
    /// The tenant.
    pub tenant: NamedSeed,
    /// API keys (and the agents or users behind them).
    #[serde(default)]
    pub agents: Vec<AgentSeed>,
    /// Projects.
    #[serde(default)]
    pub projects: Vec<ProjectSeed>,
    /// Vaults with their items.
    #[serde(default)]
    pub vaults: Vec<VaultSeed>,
}

/// An `{id, name}` table (`[org]`, `[tenant]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedSeed {
    /// Optional explicit id.
    pub id: Option<String>,
    /// Display name.
    pub name: String,
}

/// Scope of an API key (contract §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Scope {
    /// An agent runtime key: the only scope that reads vaults.
    #[default]
    Agent,
    /// A user key.
    User,
    /// A tenant key.
    Tenant,
    /// An org key.
    Org,
}

impl Scope {
    /// `AGENT`, `USER`, `TENANT` or `ORG`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Agent => "AGENT",
            Scope::User => "USER",
            Scope::Tenant => "TENANT",
            Scope::Org => "ORG",
        }
    }
}

/// One `[[agents]]` entry: an API key and its owner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSeed {
    /// Optional explicit id.
    pub id: Option<String>,
    /// Agent (or key owner) name.
    pub name: String,
    /// `rk_<access>.<secret>`.
    pub api_key: String,
    /// Key scope.
    #[serde(default)]
    pub scope: Scope,
    /// Machine permissions (default `["machine.all"]`).
    pub permissions: Option<Vec<String>>,
    /// Pre-registered runtime public key (SPKI PEM).
    pub public_key: Option<String>,
}

/// One `[[projects]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSeed {
    /// Optional explicit id.
    pub id: Option<String>,
    /// Project name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// External id.
    pub external_id: Option<String>,
}

/// Reads a seed's `model` (`encrypted`, `legacy` or `unencrypted`) as the
/// contract's [`VaultModel`]: v3 envelopes under a DEK wrapped to each agent
/// key, secret fields RSA-OAEP-SHA1 encrypted to a server-held agent key
/// (§6.5), or plaintext values.
fn seed_model<'de, D: serde::Deserializer<'de>>(d: D) -> Result<VaultModel, D::Error> {
    match String::deserialize(d)?.as_str() {
        "encrypted" => Ok(VaultModel::V3),
        "legacy" => Ok(VaultModel::Legacy),
        "unencrypted" => Ok(VaultModel::Unencrypted),
        other => Err(serde::de::Error::unknown_variant(
            other,
            &["encrypted", "legacy", "unencrypted"],
        )),
    }
}

fn default_model() -> VaultModel {
    VaultModel::V3
}

/// One `[[vaults]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSeed {
    /// Optional explicit id.
    pub id: Option<String>,
    /// Vault name.
    pub name: String,
    /// Protection model (`encrypted` when absent).
    #[serde(default = "default_model", deserialize_with = "seed_model")]
    pub model: VaultModel,
    /// Project id or name.
    pub project: Option<String>,
    /// AGENT keys (ids or names) the vault is shared with.
    #[serde(default)]
    pub shared_with: Vec<String>,
    /// Classification label.
    pub data_classification: Option<String>,
    /// Items.
    #[serde(default)]
    pub items: Vec<ItemSeed>,
}

/// One `[[vaults.items]]` entry (also the input of `Admin::add_item`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSeed {
    /// Optional explicit id.
    pub id: Option<String>,
    /// Item name.
    pub name: String,
    /// Item type (default `LOGIN`).
    #[serde(rename = "type", default = "default_item_type")]
    pub item_type: String,
    /// Websites.
    #[serde(default)]
    pub websites: Vec<String>,
    /// Fields.
    #[serde(default)]
    pub fields: Vec<FieldSeed>,
}

/// One `[[vaults.items.fields]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSeed {
    /// Optional explicit id.
    pub id: Option<String>,
    /// Field label.
    pub name: String,
    /// Field type (default `TEXT`).
    #[serde(rename = "type", default = "default_field_type")]
    pub field_type: String,
    /// Plaintext value.
    #[serde(default)]
    pub value: String,
    /// Whether the field is secret (default: type PASSWORD or SECRET).
    pub secret: Option<bool>,
}

fn default_item_type() -> String {
    "LOGIN".into()
}

fn default_field_type() -> String {
    "TEXT".into()
}

impl ItemSeed {
    /// An item with a name and fields `(name, type, value, secret)`.
    pub fn new(name: &str, fields: &[(&str, &str, &str, bool)]) -> ItemSeed {
        ItemSeed {
            id: None,
            name: name.into(),
            item_type: default_item_type(),
            websites: Vec::new(),
            fields: fields
                .iter()
                .map(|(n, t, v, s)| FieldSeed {
                    id: None,
                    name: (*n).into(),
                    field_type: (*t).into(),
                    value: (*v).into(),
                    secret: Some(*s),
                })
                .collect(),
        }
    }
}

/// First 24 lowercase hex characters of SHA-256 of `path`.
pub fn derive_id(path: &str) -> String {
    hex::encode(sha256(path.as_bytes()))[..24].to_string()
}

/// Derived id of the vault named `vault`.
pub fn vault_id(vault: &str) -> String {
    derive_id(&format!("vault/{vault}"))
}

/// Derived id of item `item` in vault `vault`.
pub fn item_id(vault: &str, item: &str) -> String {
    derive_id(&format!("vault/{vault}/item/{item}"))
}

/// Derived id of field `field` of item `item` in vault `vault`.
pub fn field_id(vault: &str, item: &str, field: &str) -> String {
    derive_id(&format!("vault/{vault}/item/{item}/field/{field}"))
}

/// Derived id of the agent (API key owner) named `name`.
pub fn agent_id(name: &str) -> String {
    derive_id(&format!("agent/{name}"))
}

/// Derived id of the project named `name`.
pub fn project_id(name: &str) -> String {
    derive_id(&format!("project/{name}"))
}

fn check_id(id: &str) -> Result<(), SeedError> {
    if id.len() == 24 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        invalid(format!("id \"{id}\" is not 24 lowercase hex characters"))
    }
}

fn id_or(explicit: &Option<String>, path: String) -> Result<String, SeedError> {
    match explicit {
        Some(id) => check_id(id).map(|()| id.clone()),
        None => Ok(derive_id(&path)),
    }
}

/// A seed with every id, reference and default resolved.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub org: (String, String),
    pub tenant: (String, String),
    pub agents: Vec<RAgent>,
    pub projects: Vec<RProject>,
    pub vaults: Vec<RVault>,
}

#[derive(Debug, Clone)]
pub(crate) struct RAgent {
    pub id: String,
    pub name: String,
    pub access: String,
    pub secret: String,
    pub scope: Scope,
    pub permissions: Vec<String>,
    pub public_key: Option<PublicKey>,
}

#[derive(Debug, Clone)]
pub(crate) struct RProject {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct RVault {
    pub id: String,
    pub name: String,
    pub model: VaultModel,
    pub project: Option<String>,
    pub shared_with: Vec<String>,
    pub data_classification: Option<String>,
    pub items: Vec<RItem>,
}

#[derive(Debug, Clone)]
pub(crate) struct RItem {
    pub id: String,
    pub name: String,
    pub item_type: String,
    pub websites: Vec<String>,
    pub fields: Vec<RField>,
}

#[derive(Debug, Clone)]
pub(crate) struct RField {
    pub id: String,
    pub name: String,
    pub field_type: String,
    pub value: String,
    pub secret: bool,
}

/// Splits `rk_<access>.<secret>` at its first dot.
pub(crate) fn split_api_key(key: &str) -> Option<(&str, &str)> {
    let (access, secret) = key.split_once('.')?;
    (access.starts_with("rk_") && access.len() > 3 && !secret.is_empty())
        .then_some((access, secret))
}

impl Seed {
    /// Parses and validates a seed.
    pub fn from_toml(text: &str) -> Result<Seed, SeedError> {
        let seed: Seed = toml::from_str(text)?;
        seed.resolve()?;
        Ok(seed)
    }

    /// The built-in demo world (`seeds/demo.toml`).
    pub fn demo() -> Seed {
        Seed::from_toml(include_str!("../seeds/demo.toml")).expect("the demo seed is valid")
    }

    pub(crate) fn resolve(&self) -> Result<Resolved, SeedError> {
        let org = (
            id_or(&self.org.id, format!("org/{}", self.org.name))?,
            self.org.name.clone(),
        );
        let tenant = (
            id_or(&self.tenant.id, format!("tenant/{}", self.tenant.name))?,
            self.tenant.name.clone(),
        );
        let mut ids = Ids::default();
        let agents = resolve_agents(&self.agents, &mut ids)?;
        let mut projects = Vec::new();
        for p in &self.projects {
            projects.push(RProject {
                id: ids.claim(id_or(&p.id, format!("project/{}", p.name))?, &p.name)?,
                name: p.name.clone(),
                description: p.description.clone(),
                external_id: p.external_id.clone(),
            });
        }
        let mut vaults = Vec::new();
        for v in &self.vaults {
            vaults.push(resolve_vault(v, &agents, &projects, &mut ids)?);
        }
        Ok(Resolved {
            org,
            tenant,
            agents,
            projects,
            vaults,
        })
    }
}

/// The seed's API keys: ids unique, access parts unique, a public key only
/// on AGENT keys.
fn resolve_agents(seeds: &[AgentSeed], ids: &mut Ids) -> Result<Vec<RAgent>, SeedError> {
    let mut access_keys = HashSet::new();
    let mut agents = Vec::new();
    for a in seeds {
        let id = ids.claim(id_or(&a.id, format!("agent/{}", a.name))?, &a.name)?;
        let Some((access, secret)) = split_api_key(&a.api_key) else {
            return invalid(format!(
                "agent \"{}\": api_key must look like rk_<access>.<secret>",
                a.name
            ));
        };
        if !access_keys.insert(access.to_string()) {
            return invalid(format!("agent \"{}\": api_key access part reused", a.name));
        }
        let public_key = match &a.public_key {
            Some(pem) => Some(PublicKey::from_pem(pem).map_err(|e| {
                SeedError::Invalid(format!("agent \"{}\": public_key: {e}", a.name))
            })?),
            None => None,
        };
        if public_key.is_some() && a.scope != Scope::Agent {
            return invalid(format!(
                "agent \"{}\": only AGENT keys register a public_key",
                a.name
            ));
        }
        agents.push(RAgent {
            id,
            name: a.name.clone(),
            access: access.to_string(),
            secret: secret.to_string(),
            scope: a.scope,
            permissions: a
                .permissions
                .clone()
                .unwrap_or_else(|| vec!["machine.all".into()]),
            public_key,
        });
    }
    Ok(agents)
}

/// One vault: its project and the agents it is shared with, by id or name.
fn resolve_vault(
    v: &VaultSeed,
    agents: &[RAgent],
    projects: &[RProject],
    ids: &mut Ids,
) -> Result<RVault, SeedError> {
    let id = ids.claim(id_or(&v.id, format!("vault/{}", v.name))?, &v.name)?;
    let project = match &v.project {
        None => None,
        Some(r) => Some(
            projects
                .iter()
                .find(|p| &p.id == r)
                .or_else(|| projects.iter().find(|p| &p.name == r))
                .map(|p| p.id.clone())
                .ok_or_else(|| {
                    SeedError::Invalid(format!("vault \"{}\": unknown project \"{r}\"", v.name))
                })?,
        ),
    };
    let mut shared_with = Vec::new();
    for r in &v.shared_with {
        let agent = agents
            .iter()
            .find(|a| &a.id == r)
            .or_else(|| agents.iter().find(|a| &a.name == r))
            .ok_or_else(|| {
                SeedError::Invalid(format!("vault \"{}\": unknown agent \"{r}\"", v.name))
            })?;
        if agent.scope != Scope::Agent {
            return invalid(format!(
                "vault \"{}\": \"{r}\" is not an AGENT key; vaults are shared to agents",
                v.name
            ));
        }
        if !shared_with.contains(&agent.id) {
            shared_with.push(agent.id.clone());
        }
    }
    let mut items = Vec::new();
    for item in &v.items {
        items.push(resolve_item(&v.name, item, ids)?);
    }
    Ok(RVault {
        id,
        name: v.name.clone(),
        model: v.model,
        project,
        shared_with,
        data_classification: v.data_classification.clone(),
        items,
    })
}

/// Ids handed out so far; every object id must be unique.
#[derive(Default)]
pub(crate) struct Ids(HashSet<String>);

impl Ids {
    pub(crate) fn claim(&mut self, id: String, name: &str) -> Result<String, SeedError> {
        if self.0.insert(id.clone()) {
            Ok(id)
        } else {
            invalid(format!(
                "\"{name}\": id {id} is already used (give one of the objects an explicit id)"
            ))
        }
    }
}

/// Resolves one item of vault `vault_name` (seed and `Admin::add_item`).
pub(crate) fn resolve_item(
    vault_name: &str,
    item: &ItemSeed,
    ids: &mut Ids,
) -> Result<RItem, SeedError> {
    let base = format!("vault/{vault_name}/item/{}", item.name);
    let id = ids.claim(id_or(&item.id, base.clone())?, &item.name)?;
    let mut fields = Vec::new();
    for f in &item.fields {
        if f.value.len() > r4_contract::envelope::MAX_VALUE {
            return invalid(format!("field \"{}\": value exceeds 1 MiB", f.name));
        }
        fields.push(RField {
            id: ids.claim(id_or(&f.id, format!("{base}/field/{}", f.name))?, &f.name)?,
            name: f.name.clone(),
            secret: f
                .secret
                .unwrap_or(matches!(f.field_type.as_str(), "PASSWORD" | "SECRET")),
            field_type: f.field_type.clone(),
            value: f.value.clone(),
        });
    }
    Ok(RItem {
        id,
        name: item.name.clone(),
        item_type: item.item_type.clone(),
        websites: item.websites.clone(),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        org = { name = "O" }
        tenant = { name = "T" }
        [[agents]]
        name = "a"
        api_key = "rk_a.b"
        [[vaults]]
        name = "V"
        shared_with = ["a"]
        [[vaults.items]]
        name = "I"
        [[vaults.items.fields]]
        name = "Password"
        type = "PASSWORD"
        value = "x"
    "#;

    #[test]
    fn derives_ids_and_defaults() {
        let r = Seed::from_toml(MINIMAL).unwrap().resolve().unwrap();
        assert_eq!(r.vaults[0].id, vault_id("V"));
        assert_eq!(r.vaults[0].model, VaultModel::V3);
        assert_eq!(r.vaults[0].shared_with, vec![agent_id("a")]);
        let item = &r.vaults[0].items[0];
        assert_eq!(item.id, item_id("V", "I"));
        assert_eq!(item.item_type, "LOGIN");
        assert_eq!(item.fields[0].id, field_id("V", "I", "Password"));
        assert!(item.fields[0].secret);
        assert_eq!(r.agents[0].permissions, vec!["machine.all"]);
        assert_eq!(r.agents[0].scope, Scope::Agent);
        assert_eq!(derive_id("vault/Edge").len(), 24);
    }

    #[test]
    fn refuses_unknown_keys_and_bad_references() {
        let unknown = MINIMAL.replace("name = \"I\"", "name = \"I\"\ncolour = \"red\"");
        assert!(matches!(Seed::from_toml(&unknown), Err(SeedError::Toml(_))));
        let bad_ref = MINIMAL.replace("[\"a\"]", "[\"nobody\"]");
        assert!(Seed::from_toml(&bad_ref).is_err());
        let bad_key = MINIMAL.replace("rk_a.b", "nodot");
        assert!(Seed::from_toml(&bad_key).is_err());
        let bad_id = MINIMAL.replace("name = \"V\"", "name = \"V\"\nid = \"XYZ\"");
        assert!(Seed::from_toml(&bad_id).is_err());
        let dup = format!("{MINIMAL}\n[[vaults]]\nname = \"V\"\n");
        assert!(Seed::from_toml(&dup).is_err());
    }
}

#[cfg(test)]
mod demo_tests {
    use super::*;

    /// The ids listed in demo.toml's header are the ones the server uses.
    #[test]
    fn demo_ids_are_documented() {
        let text = include_str!("../seeds/demo.toml");
        let r = Seed::demo().resolve().unwrap();
        let mut ids: Vec<&str> = vec![];
        ids.extend(r.agents.iter().map(|a| a.id.as_str()));
        ids.extend(r.projects.iter().map(|p| p.id.as_str()));
        for v in &r.vaults {
            ids.push(&v.id);
            for i in &v.items {
                ids.push(&i.id);
                ids.extend(i.fields.iter().map(|f| f.id.as_str()));
            }
        }
        for id in ids {
            assert!(text.contains(id), "demo.toml does not document id {id}");
        }
        assert_eq!(vault_id("Production Secrets"), "9d1fc17bedcc3d0d598e5682");
        assert_eq!(agent_id("demo-agent"), "2e6c86a774c37debe750c526");
        assert_eq!(r.agents[0].access, "rk_demo0000000000");
    }
}
