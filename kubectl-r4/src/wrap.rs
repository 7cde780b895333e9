//! What `kubectl r4 wrap` does to a stream: finds the pod templates that
//! opt in (`r4.dev/inject`), puts r4-exec in front of the chosen
//! containers' commands, and leaves every other document byte for byte.

use crate::image::Platform;
use crate::yaml::{self, Node};

/// The annotation of a pod template that opts in: `"true"` for every
/// container, or a comma-separated list of container names.
pub const ANNOTATION: &str = "r4.dev/inject";
/// The pod volume the init container fills.
pub const VOLUME: &str = "r4-bin";
/// Where that volume is mounted, in the init container and in each wrapped
/// container.
pub const MOUNT: &str = "/r4";
/// The init container's name.
pub const INIT: &str = "r4-install";
/// The wrapped command's first word.
pub const SHIM: &str = "/r4/r4-exec";

/// How to wrap.
pub struct Options {
    /// The r4-exec image the init container copies the binary from.
    pub image: String,
    /// Wrap `exec` probes too.
    pub wrap_probes: bool,
}

/// What a registry says about an image: the Entrypoint and Cmd of its
/// config for each platform asked for, and the reference pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub pinned: String,
    pub configs: Vec<(Platform, Config)>,
}

/// Entrypoint and Cmd of an image config (`None`: not set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
}

/// Looks images up (the registry client, or a table in tests).
pub trait Resolve {
    /// The image's configs for the named platforms, and its pinned name.
    fn resolve(&mut self, image: &str) -> Result<ImageInfo, String>;
}

/// Wraps a whole stream; the output, or one line saying what failed.
pub fn wrap_stream(
    text: &str,
    opts: &Options,
    resolver: &mut dyn Resolve,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 1024);
    for (i, chunk) in yaml::split(text).into_iter().enumerate() {
        let at = format!("document {}", i + 1);
        let Some(mut node) = yaml::parse(chunk.text).map_err(|e| format!("{at}: {e}"))? else {
            out.push_str(chunk.text);
            continue;
        };
        if wrap_object(&mut node, opts, resolver, &at)? {
            let header = yaml::header(chunk.text);
            out.push_str(header);
            if chunk.explicit_start && !header.lines().any(yaml::is_start) {
                // `--- {…}`: the content started on the marker's line.
                out.push_str("---\n");
            }
            out.push_str(&yaml::emit(&node));
        } else {
            out.push_str(chunk.text);
        }
    }
    Ok(out)
}

/// The kind and name of an object, for messages.
fn describe(node: &Node) -> String {
    let kind = node.get("kind").and_then(Node::as_str).unwrap_or("?");
    let name = node
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Node::as_str);
    match name {
        Some(name) => format!(
            "{} {}",
            yaml::printable(kind, 64),
            yaml::printable(name, 253)
        ),
        None => yaml::printable(kind, 64).into_owned(),
    }
}

/// Wraps one object (a workload, or a list of objects); whether it changed.
fn wrap_object(
    node: &mut Node,
    opts: &Options,
    resolver: &mut dyn Resolve,
    at: &str,
) -> Result<bool, String> {
    let at = format!("{at} ({})", describe(node));
    let kind = node
        .get("kind")
        .and_then(Node::as_str)
        .unwrap_or("")
        .to_owned();
    let path: &[&str] = match kind.as_str() {
        "Pod" => &[],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => &["spec", "template"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template"],
        k if k.ends_with("List") => {
            let mut changed = false;
            if let Some(Node::Seq(items)) = node.get_mut("items") {
                for (j, item) in items.iter_mut().enumerate() {
                    changed |= wrap_object(item, opts, resolver, &format!("{at} item {}", j + 1))?;
                }
            }
            return Ok(changed);
        }
        _ => return Ok(false),
    };
    let mut template = node;
    for key in path {
        match template.get_mut(key) {
            Some(next) => template = next,
            None => return Ok(false),
        }
    }
    wrap_template(template, opts, resolver, &at)
}

/// The containers a template's annotation selects: `None` when it does not
/// opt in.
fn selected(template: &Node, at: &str) -> Result<Option<Vec<String>>, String> {
    let value = template
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(ANNOTATION));
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(text) = value.as_str() else {
        return Err(format!("{at}: annotation {ANNOTATION} is not a string"));
    };
    let names: Vec<String> = match text.trim() {
        "true" => container_names(template),
        "false" | "" => return Ok(None),
        list => list.split(',').map(|n| n.trim().to_owned()).collect(),
    };
    let present = container_names(template);
    for name in &names {
        if name.is_empty() || !present.contains(name) {
            return Err(format!(
                "{at}: annotation {ANNOTATION}: {:?} names no container of the pod (it has: {})",
                yaml::printable(name, 64),
                present.join(", ")
            ));
        }
    }
    Ok(Some(names))
}

fn container_names(template: &Node) -> Vec<String> {
    match template.get("spec").and_then(|s| s.get("containers")) {
        Some(Node::Seq(items)) => items
            .iter()
            .filter_map(|c| c.get("name").and_then(Node::as_str))
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// A string sequence, or an error naming `what`.
fn strings(node: &Node, what: &str) -> Result<Vec<String>, String> {
    match node {
        Node::Seq(items) => items
            .iter()
            .map(|n| {
                n.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{what} holds a value that is not a string"))
            })
            .collect(),
        n if n.is_null() => Ok(Vec::new()),
        _ => Err(format!("{what} is not a list")),
    }
}

fn string_seq(words: &[String]) -> Node {
    Node::Seq(words.iter().map(|w| Node::str(w)).collect())
}

/// Kubernetes' rule for what a container runs, from its `command` and
/// `args` and its image's Entrypoint and Cmd: a command replaces the
/// Entrypoint and drops the Cmd; args replace the Cmd.
pub fn effective(
    command: Option<&[String]>,
    args: Option<&[String]>,
    image: &Config,
) -> Vec<String> {
    let entry = image.entrypoint.as_deref().unwrap_or_default();
    let cmd = image.cmd.as_deref().unwrap_or_default();
    match (command, args) {
        (Some(c), Some(a)) => [c, a].concat(),
        (Some(c), None) => c.to_vec(),
        (None, Some(a)) => [entry, a].concat(),
        (None, None) => [entry, cmd].concat(),
    }
}

/// `command`/`args` of a container as Kubernetes reads them: absent, null
/// and `[]` all mean "not set".
fn field(container: &Node, key: &str, at: &str) -> Result<Option<Vec<String>>, String> {
    match container.get(key) {
        None => Ok(None),
        Some(node) => {
            let words = strings(node, &format!("{at}: {key}"))?;
            Ok(if words.is_empty() { None } else { Some(words) })
        }
    }
}

/// Whether a command already starts with the shim.
fn is_wrapped(command: Option<&[String]>) -> bool {
    command.is_some_and(|c| c.first().map(String::as_str) == Some(SHIM))
}

/// Wraps the selected containers of one pod template (`template` has
/// `metadata` and `spec`; a Pod is its own template).
fn wrap_template(
    template: &mut Node,
    opts: &Options,
    resolver: &mut dyn Resolve,
    at: &str,
) -> Result<bool, String> {
    let Some(names) = selected(template, at)? else {
        return Ok(false);
    };
    if names.is_empty() {
        return Ok(false);
    }
    let Some(spec) = template.get_mut("spec") else {
        return Ok(false);
    };
    let mut changed = false;
    if let Some(Node::Seq(containers)) = spec.get_mut("containers") {
        for container in containers.iter_mut() {
            let name = container
                .get("name")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_owned();
            if !names.contains(&name) {
                continue;
            }
            let at = format!("{at}, container {}", yaml::printable(&name, 64));
            changed |= wrap_container(container, opts, resolver, &at)?;
        }
    }
    changed |= ensure_volume(spec, at)?;
    changed |= ensure_init(spec, opts, at)?;
    Ok(changed)
}

fn wrap_container(
    container: &mut Node,
    opts: &Options,
    resolver: &mut dyn Resolve,
    at: &str,
) -> Result<bool, String> {
    let mut changed = false;
    let command = field(container, "command", at)?;
    let args = field(container, "args", at)?;
    if !is_wrapped(command.as_deref()) {
        let words = match &command {
            // The image's Entrypoint and Cmd do not count: no look-up, and
            // the image is left as written.
            Some(c) => effective(Some(c), args.as_deref(), &Config::default()),
            None => from_image(container, args.as_deref(), resolver, at)?,
        };
        if words.is_empty() {
            return Err(format!(
                "{at}: nothing to run: no command, and the image has neither Entrypoint nor Cmd"
            ));
        }
        let wrapped: Vec<String> = [SHIM.to_owned(), "--".to_owned()]
            .into_iter()
            .chain(words)
            .collect();
        container.remove("args");
        set_after(
            container,
            "command",
            string_seq(&wrapped),
            &["image", "name"],
        );
        changed = true;
    }
    changed |= ensure_mount(container, at)?;
    if opts.wrap_probes {
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            let Some(exec) = container.get_mut(probe).and_then(|p| p.get_mut("exec")) else {
                continue;
            };
            let words = match exec.get("command") {
                Some(node) => strings(node, &format!("{at}: {probe}.exec.command"))?,
                None => continue,
            };
            if words.is_empty() || is_wrapped(Some(&words)) {
                continue;
            }
            let wrapped: Vec<String> = [SHIM.to_owned(), "--".to_owned()]
                .into_iter()
                .chain(words)
                .collect();
            exec.set("command", string_seq(&wrapped));
            changed = true;
        }
    }
    Ok(changed)
}

/// The command from the image config (the container has no `command`),
/// the same on every platform asked for; pins the image by digest.
fn from_image(
    container: &mut Node,
    args: Option<&[String]>,
    resolver: &mut dyn Resolve,
    at: &str,
) -> Result<Vec<String>, String> {
    let image = container
        .get("image")
        .and_then(Node::as_str)
        .ok_or_else(|| format!("{at}: no command and no image"))?
        .to_owned();
    let info = resolver.resolve(&image).map_err(|e| format!("{at}: {e}"))?;
    let mut words: Option<(&Platform, Vec<String>)> = None;
    for (platform, config) in &info.configs {
        let these = effective(None, args, &escaped(config));
        match &words {
            None => words = Some((platform, these)),
            Some((first, w)) if *w != these => {
                return Err(format!(
                    "{at}: image {}: the command differs between platforms: {first} runs {}, {platform} runs {}; name one --platform, or set the container's command",
                    yaml::printable(&image, 256),
                    show(w),
                    show(&these)
                ));
            }
            Some(_) => {}
        }
    }
    let (_, words) = words.ok_or_else(|| format!("{at}: image {image}: no platform"))?;
    if info.pinned != image {
        container.set("image", Node::str(&info.pinned));
    }
    Ok(words)
}

/// The image's words as `command` must write them: Kubernetes expands
/// `$(VAR)` in a container's command and args (`$$` is a literal `$`), but
/// never in the image's Entrypoint and Cmd, so every `$` from the image is
/// doubled to mean what it meant.
fn escaped(config: &Config) -> Config {
    let esc = |words: &Option<Vec<String>>| {
        words
            .as_ref()
            .map(|w| w.iter().map(|s| s.replace('$', "$$")).collect())
    };
    Config {
        entrypoint: esc(&config.entrypoint),
        cmd: esc(&config.cmd),
    }
}

/// A command for a message: JSON-quoted words, control characters escaped.
fn show(words: &[String]) -> String {
    let text = serde_json::to_string(words).unwrap_or_default();
    yaml::printable(&text, 200).into_owned()
}

/// Sets `key` to `value`: in place if present, else after the first of
/// `after` that exists (else at the end).
fn set_after(node: &mut Node, key: &str, value: Node, after: &[&str]) {
    if let Some(slot) = node.get_mut(key) {
        *slot = value;
        return;
    }
    if let Node::Map(entries) = node {
        let at = after
            .iter()
            .find_map(|a| entries.iter().position(|(k, _)| k.as_str() == Some(a)))
            .map_or(entries.len(), |p| p + 1);
        entries.insert(at, (Node::plain(key), value));
    }
}

/// A list under `key` of a mapping, created if absent or null.
fn list<'a>(node: &'a mut Node, key: &str, at: &str) -> Result<&'a mut Vec<Node>, String> {
    if node.get(key).is_none_or(Node::is_null) {
        node.set(key, Node::Seq(Vec::new()));
    }
    match node.get_mut(key) {
        Some(Node::Seq(items)) => Ok(items),
        _ => Err(format!("{at}: {key} is not a list")),
    }
}

fn named<'a>(items: &'a [Node], name: &str) -> Option<&'a Node> {
    items
        .iter()
        .find(|n| n.get("name").and_then(Node::as_str) == Some(name))
}

fn map(entries: Vec<(&str, Node)>) -> Node {
    Node::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Node::plain(k), v))
            .collect(),
    )
}

fn ensure_mount(container: &mut Node, at: &str) -> Result<bool, String> {
    let mounts = list(container, "volumeMounts", at)?;
    if named(mounts, VOLUME).is_some() {
        return Ok(false);
    }
    if mounts.iter().any(|m| {
        m.get("mountPath")
            .and_then(Node::as_str)
            .map(|p| p.trim_end_matches('/'))
            == Some(MOUNT)
    }) {
        return Err(format!("{at}: something else is mounted at {MOUNT}"));
    }
    mounts.push(map(vec![
        ("name", Node::str(VOLUME)),
        ("mountPath", Node::str(MOUNT)),
        ("readOnly", Node::plain("true")),
    ]));
    Ok(true)
}

fn ensure_volume(spec: &mut Node, at: &str) -> Result<bool, String> {
    let volumes = list(spec, "volumes", at)?;
    if let Some(volume) = named(volumes, VOLUME) {
        if volume.get("emptyDir").is_none() {
            return Err(format!(
                "{at}: the pod already has a volume {VOLUME} that is not an emptyDir"
            ));
        }
        return Ok(false);
    }
    volumes.push(map(vec![
        ("name", Node::str(VOLUME)),
        (
            "emptyDir",
            map(vec![
                ("medium", Node::str("Memory")),
                ("sizeLimit", Node::str("16Mi")),
            ]),
        ),
    ]));
    Ok(true)
}

/// The init container that copies r4-exec into the volume.
pub fn init_container(image: &str) -> Node {
    map(vec![
        ("name", Node::str(INIT)),
        ("image", Node::str(image)),
        (
            "command",
            string_seq(&["/r4-exec".into(), "install".into(), format!("{MOUNT}/")]),
        ),
        (
            "volumeMounts",
            Node::Seq(vec![map(vec![
                ("name", Node::str(VOLUME)),
                ("mountPath", Node::str(MOUNT)),
            ])]),
        ),
        (
            "securityContext",
            map(vec![
                ("runAsNonRoot", Node::plain("true")),
                ("runAsUser", Node::plain("65532")),
                ("runAsGroup", Node::plain("65532")),
                ("allowPrivilegeEscalation", Node::plain("false")),
                ("readOnlyRootFilesystem", Node::plain("true")),
                (
                    "capabilities",
                    map(vec![("drop", Node::Seq(vec![Node::str("ALL")]))]),
                ),
                (
                    "seccompProfile",
                    map(vec![("type", Node::str("RuntimeDefault"))]),
                ),
            ]),
        ),
        (
            "resources",
            map(vec![
                (
                    "requests",
                    map(vec![
                        ("cpu", Node::str("10m")),
                        ("memory", Node::str("16Mi")),
                    ]),
                ),
                ("limits", map(vec![("memory", Node::str("32Mi"))])),
            ]),
        ),
    ])
}

fn ensure_init(spec: &mut Node, opts: &Options, at: &str) -> Result<bool, String> {
    let inits = list(spec, "initContainers", at)?;
    if named(inits, INIT).is_some() {
        return Ok(false);
    }
    inits.insert(0, init_container(&opts.image));
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn kubernetes_command_rules() {
        let image = Config {
            entrypoint: Some(v(&["/ep", "-x"])),
            cmd: Some(v(&["serve"])),
        };
        let (c, a) = (v(&["/bin/c"]), v(&["a1", "a2"]));
        assert_eq!(effective(None, None, &image), v(&["/ep", "-x", "serve"]));
        assert_eq!(
            effective(None, Some(&a), &image),
            v(&["/ep", "-x", "a1", "a2"])
        );
        assert_eq!(effective(Some(&c), None, &image), v(&["/bin/c"]));
        assert_eq!(
            effective(Some(&c), Some(&a), &image),
            v(&["/bin/c", "a1", "a2"])
        );
        let cmd_only = Config {
            entrypoint: None,
            cmd: Some(v(&["/app"])),
        };
        assert_eq!(effective(None, None, &cmd_only), v(&["/app"]));
        assert_eq!(effective(None, Some(&a), &cmd_only), v(&["a1", "a2"]));
    }

    /// A resolver from a table, counting look-ups.
    #[derive(Default)]
    struct Table(HashMap<String, ImageInfo>, usize);

    impl Resolve for Table {
        fn resolve(&mut self, image: &str) -> Result<ImageInfo, String> {
            self.1 += 1;
            self.0
                .get(image)
                .cloned()
                .ok_or_else(|| format!("image {image}: not in the table"))
        }
    }

    fn amd64() -> Platform {
        "linux/amd64".parse().unwrap()
    }

    fn table() -> Table {
        let mut t = Table::default();
        t.0.insert(
            "reg.example/app:1".into(),
            ImageInfo {
                pinned: format!("reg.example/app@sha256:{}", "a".repeat(64)),
                configs: vec![(
                    amd64(),
                    Config {
                        entrypoint: Some(v(&["/app"])),
                        cmd: Some(v(&["serve", "--port=80"])),
                    },
                )],
            },
        );
        t.0.insert(
            "reg.example/multi:1".into(),
            ImageInfo {
                pinned: format!("reg.example/multi@sha256:{}", "b".repeat(64)),
                configs: vec![
                    (
                        amd64(),
                        Config {
                            entrypoint: Some(v(&["/app"])),
                            cmd: Some(v(&["amd"])),
                        },
                    ),
                    (
                        "linux/arm64".parse().unwrap(),
                        Config {
                            entrypoint: Some(v(&["/app"])),
                            cmd: Some(v(&["arm"])),
                        },
                    ),
                ],
            },
        );
        t
    }

    fn opts() -> Options {
        Options {
            image: "ghcr.io/r4-dev/r4-exec:0.1.0".into(),
            wrap_probes: true,
        }
    }

    #[test]
    fn the_image_s_dollars_are_escaped_the_container_s_are_not() {
        let mut t = table();
        t.0.insert(
            "reg.example/dollar:1".into(),
            ImageInfo {
                pinned: "reg.example/dollar@sha256:0".into(),
                configs: vec![(
                    amd64(),
                    Config {
                        entrypoint: Some(v(&["sh", "-c", "echo $(HOME) $$ $X"])),
                        cmd: Some(v(&["$(NOT_THIS)"])),
                    },
                )],
            },
        );
        let pod = "kind: Pod\nmetadata: {name: p, annotations: {r4.dev/inject: 'true'}}\nspec:\n  containers:\n  - name: a\n    image: reg.example/dollar:1\n";
        let out = wrap_stream(pod, &opts(), &mut t).unwrap();
        assert!(
            out.contains("- \"echo $$(HOME) $$$$ $$X\"\n    - \"$$(NOT_THIS)\"\n"),
            "{out}"
        );
        let with_args = format!("{pod}    args: [\"$(KEEP)\"]\n");
        let out = wrap_stream(&with_args, &opts(), &mut t).unwrap();
        assert!(out.contains("- \"$(KEEP)\"\n"), "{out}");
    }

    #[test]
    fn a_changed_document_keeps_its_header() {
        let text = "---\n# Source: chart/templates/pod.yaml\nkind: Pod # gone\nmetadata: {name: p, annotations: {r4.dev/inject: 'true'}}\nspec: {containers: [{name: a, image: x, command: [y]}]}\n";
        let out = wrap_stream(text, &opts(), &mut table()).unwrap();
        assert!(
            out.starts_with("---\n# Source: chart/templates/pod.yaml\nkind: Pod\n"),
            "{out}"
        );
        let flow = "--- {kind: Pod, metadata: {name: p, annotations: {r4.dev/inject: 'true'}}, spec: {containers: [{name: a, command: [y]}]}}\n";
        let out = wrap_stream(flow, &opts(), &mut table()).unwrap();
        assert!(out.starts_with("---\nkind: Pod\n"), "{out}");
        let theirs = text.replace(
            "command: [y]}]",
            "command: [y]}], volumes: [{name: r4-bin, hostPath: {path: /x}}]",
        );
        let err = wrap_stream(&theirs, &opts(), &mut table()).unwrap_err();
        assert!(
            err.ends_with("the pod already has a volume r4-bin that is not an emptyDir"),
            "{err}"
        );
    }

    const DEPLOYMENT: &str = "# a comment that passes through
apiVersion: v1
kind: ConfigMap
metadata: {name: untouched}
data: {mode: 0400, flag: on}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      annotations:
        r4.dev/inject: \"true\"
    spec:
      containers:
      - name: app
        image: reg.example/app:1
        livenessProbe:
          exec:
            command: [/bin/check]
      - name: side
        image: busybox
        command: [sh, -c]
        args: ['sleep 1000']
      volumes:
      - name: cfg
        secret: {secretName: x, defaultMode: 0400}
";

    #[test]
    fn wraps_and_passes_the_rest_through_and_is_idempotent() {
        let mut t = table();
        let out = wrap_stream(DEPLOYMENT, &opts(), &mut t).unwrap();
        // The ConfigMap: byte for byte.
        let first = yaml::split(DEPLOYMENT)[0].text;
        assert!(out.starts_with(first), "{out}");
        assert_eq!(t.1, 1, "one look-up: the side car has a command");
        let node = yaml::parse(yaml::split(&out)[1].text).unwrap().unwrap();
        let spec = node
            .get("spec")
            .unwrap()
            .get("template")
            .unwrap()
            .get("spec")
            .unwrap();
        let Some(Node::Seq(cs)) = spec.get("containers") else {
            panic!()
        };
        let cmd = strings(cs[0].get("command").unwrap(), "").unwrap();
        assert_eq!(cmd, v(&[SHIM, "--", "/app", "serve", "--port=80"]));
        assert_eq!(
            cs[0].get("image").unwrap().as_str().unwrap(),
            format!("reg.example/app@sha256:{}", "a".repeat(64))
        );
        let probe = cs[0]
            .get("livenessProbe")
            .unwrap()
            .get("exec")
            .unwrap()
            .get("command")
            .unwrap();
        assert_eq!(strings(probe, "").unwrap(), v(&[SHIM, "--", "/bin/check"]));
        let cmd = strings(cs[1].get("command").unwrap(), "").unwrap();
        assert_eq!(cmd, v(&[SHIM, "--", "sh", "-c", "sleep 1000"]));
        assert!(cs[1].get("args").is_none());
        assert_eq!(
            cs[1].get("image").unwrap().as_str(),
            Some("busybox"),
            "not pinned"
        );
        assert!(out.contains("defaultMode: 0400"), "{out}");
        let Some(Node::Seq(inits)) = spec.get("initContainers") else {
            panic!()
        };
        assert!(yaml::equivalent(&inits[0], &init_container(&opts().image)));
        let Some(Node::Seq(vols)) = spec.get("volumes") else {
            panic!()
        };
        assert_eq!(vols.len(), 2);

        // Second pass: byte-identical, no look-up.
        let mut t2 = Table::default();
        assert_eq!(wrap_stream(&out, &opts(), &mut t2).unwrap(), out);
        assert_eq!(t2.1, 0);
    }

    #[test]
    fn not_opted_in_is_untouched() {
        let text = DEPLOYMENT.replace("\"true\"", "\"false\"");
        let mut t = table();
        assert_eq!(wrap_stream(&text, &opts(), &mut t).unwrap(), text);
        let text = "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: x}]}\n";
        assert_eq!(wrap_stream(text, &opts(), &mut t).unwrap(), text);
        assert_eq!(t.1, 0);
    }

    #[test]
    fn a_list_of_names_wraps_only_those() {
        let text = DEPLOYMENT.replace("\"true\"", "\" side \"");
        let mut t = table();
        let out = wrap_stream(&text, &opts(), &mut t).unwrap();
        assert_eq!(t.1, 0);
        assert!(out.contains("image: reg.example/app:1"), "{out}");
        let text = DEPLOYMENT.replace("\"true\"", "side,nope");
        let err = wrap_stream(&text, &opts(), &mut t).unwrap_err();
        assert!(
            err.starts_with("document 2 (Deployment web): annotation r4.dev/inject: \"nope\""),
            "{err}"
        );
    }

    #[test]
    fn differing_platforms_fail_and_args_can_reconcile_them() {
        let pod = "kind: Pod\nmetadata:\n  name: p\n  annotations: {r4.dev/inject: 'true'}\nspec:\n  containers:\n  - name: a\n    image: reg.example/multi:1\n";
        let err = wrap_stream(pod, &opts(), &mut table()).unwrap_err();
        assert!(err.contains("document 1 (Pod p), container a: image reg.example/multi:1: the command differs between platforms: linux/amd64 runs [\"/app\",\"amd\"], linux/arm64 runs [\"/app\",\"arm\"]"), "{err}");
        // With args, only the (equal) Entrypoint counts.
        let with_args = format!("{pod}    args: [x]\n");
        let out = wrap_stream(&with_args, &opts(), &mut table()).unwrap();
        assert!(out.contains("- /app\n    - x\n"), "{out}");
        assert!(out.contains(&"b".repeat(64)), "{out}");
    }

    #[test]
    fn lists_and_cronjobs() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- kind: CronJob\n  metadata: {name: c}\n  spec:\n    jobTemplate:\n      spec:\n        template:\n          metadata: {annotations: {r4.dev/inject: 'true'}}\n          spec:\n            containers: [{name: j, image: i, command: [/job]}]\n";
        let out = wrap_stream(text, &opts(), &mut table()).unwrap();
        assert!(out.contains("- /r4/r4-exec\n"), "{out}");
        assert!(out.contains("name: r4-install"), "{out}");
        let again = wrap_stream(&out, &opts(), &mut Table::default()).unwrap();
        assert_eq!(again, out);
    }

    #[test]
    fn errors_name_the_document_and_container() {
        let text = "---\nkind: ConfigMap\n---\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    metadata: {annotations: {r4.dev/inject: 'true'}}\n    spec:\n      containers: [{name: c, image: unknown}]\n";
        let err = wrap_stream(text, &opts(), &mut table()).unwrap_err();
        assert_eq!(
            err,
            "document 2 (Job j), container c: image unknown: not in the table"
        );
        let text = "kind: Pod\nmetadata: {name: p, annotations: {r4.dev/inject: 'true'}}\nspec:\n  containers: [{name: c, image: x, command: [a], volumeMounts: [{name: other, mountPath: /r4/}]}]\n";
        let err = wrap_stream(text, &opts(), &mut table()).unwrap_err();
        assert_eq!(
            err,
            "document 1 (Pod p), container c: something else is mounted at /r4"
        );
    }
}
