//! Image references, platforms, and what the OCI manifests and configs a
//! registry serves say (pure: no I/O).

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::wrap::Config;
use crate::yaml::printable;

/// An image reference, split the way the container engines read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The name as written, without tag or digest (`nginx`, `reg:5000/a/b`).
    pub name: String,
    /// The registry host (and port) as written or implied: `docker.io` for
    /// names without one. Auth files are keyed by it.
    pub registry: String,
    /// The repository path in the registry (`library/nginx` on Docker Hub).
    pub repository: String,
    /// The tag, `latest` if neither tag nor digest was written.
    pub tag: Option<String>,
    /// The digest, if written (`sha256:` and 64 hex digits).
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Reference, String> {
        let bad = |why: &str| format!("image {}: {why}", printable(text, 256));
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest).map_err(|e| bad(&e))?;
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                && !tag.starts_with(['.', '-']);
            if !ok {
                return Err(bad("not a valid tag"));
            }
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_owned(), path.to_owned())
            }
            _ => ("docker.io".to_owned(), name.to_owned()),
        };
        let repository = if registry == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let ok = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            })
            && !registry.is_empty()
            && registry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
        if !ok {
            return Err(bad("not a valid image name"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            name: name.to_owned(),
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host requests go to (Docker Hub's API host for `docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// What to ask the registry's manifest endpoint for.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The name pinned to `digest`: `name@sha256:…`.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}@{digest}", self.name)
    }
}

/// `sha256:` and 64 lowercase hex digits (the only algorithm registries
/// serve in practice and the one checked here).
pub fn check_digest(digest: &str) -> Result<(), String> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(())
        }
        _ => Err(format!("{} is not a sha256 digest", printable(digest, 80))),
    }
}

/// The digest of `bytes`: `sha256:` and its hex SHA-256.
pub fn digest_of(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = String::from("sha256:");
    for b in d.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// An OS/architecture(/variant), as `--platform` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        match parts.as_slice() {
            [os, arch] if [os, arch].iter().all(|p| valid(p)) => Ok(Platform {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: None,
            }),
            [os, arch, variant] if [os, arch, variant].iter().all(|p| valid(p)) => Ok(Platform {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: Some((*variant).to_owned()),
            }),
            _ => Err(format!(
                "{}: a platform is os/arch or os/arch/variant (linux/amd64, linux/arm64/v8)",
                printable(s, 80)
            )),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The media types asked for (`Accept`), indexes first.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A manifest a registry served.
#[derive(Debug, PartialEq, Eq)]
pub enum Manifest {
    /// An image index (manifest list): its entries, each a digest and a
    /// platform (if it names one).
    Index(Vec<(String, Option<Platform>)>),
    /// An image manifest: the digest of its config blob.
    Image { config: String },
}

/// Reads a manifest from its bytes and the `Content-Type` it came with.
pub fn parse_manifest(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, String> {
    let json: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the manifest is not JSON ({e})"))?;
    if json.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
        return Err("the registry served a schema 1 manifest, which is not supported".into());
    }
    let media = json
        .get("mediaType")
        .and_then(Value::as_str)
        .or(content_type.map(|c| c.split(';').next().unwrap_or("").trim()))
        .unwrap_or("");
    let is_index = media.ends_with("image.index.v1+json")
        || media.ends_with("manifest.list.v2+json")
        || (!media.ends_with("manifest.v1+json")
            && !media.ends_with("manifest.v2+json")
            && json.get("manifests").is_some());
    if is_index {
        let entries = json
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or("the index has no manifests")?;
        let mut out = Vec::new();
        for entry in entries {
            let digest = entry
                .get("digest")
                .and_then(Value::as_str)
                .ok_or("an index entry has no digest")?;
            let platform = entry.get("platform").and_then(|p| {
                Some(Platform {
                    os: p.get("os")?.as_str()?.to_owned(),
                    architecture: p.get("architecture")?.as_str()?.to_owned(),
                    variant: p.get("variant").and_then(Value::as_str).map(str::to_owned),
                })
            });
            out.push((digest.to_owned(), platform));
        }
        return Ok(Manifest::Index(out));
    }
    let config = json
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(Value::as_str)
        .ok_or("the manifest names no config")?;
    check_digest(config)?;
    Ok(Manifest::Image {
        config: config.to_owned(),
    })
}

/// The entry of an index for `want`: same OS and architecture, and the
/// variant if `want` names one. Never a guess: no entry, or several that
/// only a variant would tell apart, is an error.
pub fn select<'a>(
    entries: &'a [(String, Option<Platform>)],
    want: &Platform,
) -> Result<&'a str, String> {
    let matches: Vec<&(String, Option<Platform>)> = entries
        .iter()
        .filter(|(_, p)| {
            p.as_ref().is_some_and(|p| {
                p.os == want.os
                    && p.architecture == want.architecture
                    && (want.variant.is_none() || p.variant == want.variant)
            })
        })
        .collect();
    let offered = || {
        let names: Vec<String> = entries
            .iter()
            .filter_map(|(_, p)| p.as_ref())
            .filter(|p| p.os != "unknown")
            .map(|p| printable(&p.to_string(), 64).into_owned())
            .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    match matches.as_slice() {
        [(digest, _)] => {
            check_digest(digest)?;
            Ok(digest)
        }
        [] => Err(format!(
            "its index has no {want} image (it has: {})",
            offered()
        )),
        _ => Err(format!(
            "its index has several {want} images (it has: {}); name the variant in --platform",
            offered()
        )),
    }
}

/// Entrypoint and Cmd of an image config blob, and its os/architecture.
pub fn parse_config(bytes: &[u8]) -> Result<(Config, Option<Platform>), String> {
    let json: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the image config is not JSON ({e})"))?;
    let words = |key: &str| -> Result<Option<Vec<String>>, String> {
        match json.get("config").and_then(|c| c.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("the image config's {key} holds a non-string"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(format!("the image config's {key} is not a list")),
        }
    };
    let config = Config {
        entrypoint: words("Entrypoint")?,
        cmd: words("Cmd")?,
    };
    let platform = match (
        json.get("os").and_then(Value::as_str),
        json.get("architecture").and_then(Value::as_str),
    ) {
        (Some(os), Some(arch)) => Some(Platform {
            os: os.to_owned(),
            architecture: arch.to_owned(),
            variant: json
                .get("variant")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }),
        _ => None,
    };
    Ok((config, platform))
}

/// Whether a single-platform image of `have` serves `want`.
pub fn serves(have: &Platform, want: &Platform) -> bool {
    have.os == want.os
        && have.architecture == want.architecture
        && (want.variant.is_none() || have.variant.is_none() || have.variant == want.variant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = Reference::parse("nginx").unwrap();
        assert_eq!(
            (
                r.registry.as_str(),
                r.repository.as_str(),
                r.tag.as_deref(),
                r.api_host()
            ),
            (
                "docker.io",
                "library/nginx",
                Some("latest"),
                "registry-1.docker.io"
            )
        );
        assert_eq!(r.pinned("sha256:x"), "nginx@sha256:x");
        let r = Reference::parse("127.0.0.1:5000/a/b:v1.2").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "a/b", Some("v1.2"))
        );
        let d = format!("sha256:{}", "0".repeat(64));
        let r = Reference::parse(&format!("localhost/x:t@{d}")).unwrap();
        assert_eq!(
            (r.registry.as_str(), r.manifest_ref()),
            ("localhost", d.as_str())
        );
        let r = Reference::parse("user/app").unwrap();
        assert_eq!(r.repository, "user/app");
        for bad in ["", "UPPER/x", "a:b:c", "x@sha256:12", "x:-t", "reg.io/"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digests() {
        assert_eq!(
            digest_of(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(check_digest(&digest_of(b"x")).is_ok());
        assert!(check_digest("sha512:00").is_err());
    }

    #[test]
    fn platforms() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//x".parse::<Platform>().is_err());
    }

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn index_selection_never_guesses() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"digest":"{}","platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"digest":"{}","platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"digest":"{}","platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let Manifest::Index(entries) = parse_manifest(index.as_bytes(), None).unwrap() else {
            panic!()
        };
        assert_eq!(
            select(&entries, &"linux/amd64".parse().unwrap()).unwrap(),
            d('a')
        );
        assert_eq!(
            select(&entries, &"linux/arm64".parse().unwrap()).unwrap(),
            d('b')
        );
        assert_eq!(
            select(&entries, &"linux/arm64/v8".parse().unwrap()).unwrap(),
            d('b')
        );
        let err = select(&entries, &"linux/s390x".parse().unwrap()).unwrap_err();
        assert_eq!(
            err,
            "its index has no linux/s390x image (it has: linux/amd64, linux/arm64/v8)"
        );
        assert!(select(&entries, &"linux/arm64/v7".parse().unwrap()).is_err());
        let twice = [
            entries[1].clone(),
            (d('d'), Some("linux/arm64/v9".parse().unwrap())),
        ];
        assert!(select(&twice, &"linux/arm64".parse().unwrap())
            .unwrap_err()
            .contains("several"));
    }

    #[test]
    fn manifests_and_configs() {
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}"}},"layers":[]}}"#,
            d('e')
        );
        assert_eq!(
            parse_manifest(
                m.as_bytes(),
                Some("application/vnd.docker.distribution.manifest.v2+json")
            )
            .unwrap(),
            Manifest::Image { config: d('e') }
        );
        assert!(parse_manifest(br#"{"schemaVersion":1}"#, None)
            .unwrap_err()
            .contains("schema 1"));
        let (c, p) = parse_config(
            br#"{"os":"linux","architecture":"arm64","config":{"Entrypoint":["/a"],"Cmd":null}}"#,
        )
        .unwrap();
        assert_eq!(c.entrypoint, Some(vec!["/a".to_owned()]));
        assert_eq!(c.cmd, None);
        assert_eq!(p.unwrap().to_string(), "linux/arm64");
        assert!(parse_config(br#"{"config":{"Cmd":"sh"}}"#).is_err());
    }
}
