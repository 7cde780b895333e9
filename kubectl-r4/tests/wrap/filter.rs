//! The filter through its binary, no registry: pass-through byte for byte,
//! wrapping of containers that have a command (no registry is contacted:
//! their images name an address nothing listens on), idempotence, one-line
//! errors with nothing on stdout, and the output of every workload kind
//! against the Kubernetes schema (`kubernetes-validate --strict`).

use std::process::Command;

use crate::util::*;

/// An image on a port nothing listens on: any look-up would fail.
const NOWHERE: &str = "127.0.0.1:9/app:1";

fn template(kind_head: &str, indent: &str) -> String {
    let body = format!(
        "metadata:\n  labels: {{app: a}}\n  annotations:\n    r4.dev/inject: \"true\"\nspec:\n  containers:\n  - name: app\n    image: {NOWHERE}\n    command: [/bin/server]\n    args: [--port, \"8080\"]\n    readinessProbe:\n      exec:\n        command: [/bin/check]\n    volumeMounts:\n    - {{name: cfg, mountPath: /etc/app}}\n  volumes:\n  - name: cfg\n    configMap: {{name: app, defaultMode: 0400}}\n"
    );
    let mut out = kind_head.to_owned();
    for line in body.lines() {
        out.push_str(indent);
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// One object of each kind kubectl-r4 wraps, valid before wrapping.
fn workloads() -> Vec<(&'static str, String)> {
    let sel = "  selector:\n    matchLabels: {app: a}\n";
    vec![
        (
            "Pod",
            format!(
                "apiVersion: v1\nkind: Pod\n{}",
                template("", "").replace("metadata:\n", "metadata:\n  name: p\n")
            ),
        ),
        (
            "Deployment",
            template(
                &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec:\n{sel}  template:\n"),
                "    ",
            ),
        ),
        (
            "StatefulSet",
            template(
                &format!("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: s}}\nspec:\n  serviceName: s\n{sel}  template:\n"),
                "    ",
            ),
        ),
        (
            "DaemonSet",
            template(
                &format!("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: ds}}\nspec:\n{sel}  template:\n"),
                "    ",
            ),
        ),
        (
            "Job",
            template(
                "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n",
                "    ",
            )
            .replace("  containers:\n", "  restartPolicy: Never\n      containers:\n"),
        ),
        (
            "CronJob",
            template(
                "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n",
                "        ",
            )
            .replace("  containers:\n", "  restartPolicy: OnFailure\n          containers:\n"),
        ),
    ]
}

const OTHERS: &str = "# A comment, odd spacing and flow style: kept as they are.\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata:\n  mode:    0400   # not re-serialised\n  flag: on\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec: {ports: [{port: 80}]}\n...\n";

#[test]
fn documents_it_does_not_wrap_pass_through_byte_for_byte() {
    let not_opted = workloads()[1]
        .1
        .replace("r4.dev/inject: \"true\"", "other: x");
    let input = format!("{OTHERS}---\n{not_opted}---\n# only a comment\n");
    assert_eq!(wrap_ok(&input, &[]), input);
    // Without a trailing newline, and with CRLF line ends.
    let crlf = OTHERS.replace('\n', "\r\n");
    assert_eq!(wrap_ok(&crlf, &[]), crlf);
    assert_eq!(wrap_ok("kind: ConfigMap", &[]), "kind: ConfigMap");
    assert_eq!(wrap_ok("", &[]), "");
}

#[test]
fn wraps_every_kind_and_a_second_pass_changes_nothing() {
    for (kind, object) in workloads() {
        let input = format!("{OTHERS}---\n{object}");
        let out = wrap_ok(&input, &["--wrap-probes"]);
        assert!(
            out.starts_with(OTHERS),
            "{kind}: the others changed:\n{out}"
        );
        assert_eq!(
            first_command(&out),
            ["/r4/r4-exec", "--", "/bin/server", "--port", "8080"],
            "{kind}:\n{out}"
        );
        assert!(!out.contains("args:"), "{kind}: args folded in:\n{out}");
        assert!(
            out.contains(&format!("image: {NOWHERE}\n")),
            "{kind}: not pinned without a look-up"
        );
        assert!(
            out.contains("defaultMode: 0400\n"),
            "{kind}: the octal mode is kept"
        );
        assert!(
            out.contains("- /r4/r4-exec\n") && out.contains("- /bin/check\n"),
            "{kind}: probe"
        );
        assert!(out.contains("name: r4-install\n"), "{kind}");
        assert!(
            out.contains("medium: Memory\n") && out.contains("sizeLimit: \"16Mi\"\n"),
            "{kind}"
        );
        assert_eq!(
            wrap_ok(&out, &["--wrap-probes"]),
            out,
            "{kind}: second pass"
        );
    }
}

#[test]
fn a_list_is_wrapped_item_by_item() {
    let mut input = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for (_, object) in workloads().into_iter().take(2) {
        for (i, line) in object.lines().enumerate() {
            input.push_str(if i == 0 { "- " } else { "  " });
            input.push_str(line);
            input.push('\n');
        }
    }
    let out = wrap_ok(&input, &[]);
    assert_eq!(out.matches("name: r4-install").count(), 2, "{out}");
    assert_eq!(wrap_ok(&out, &[]), out);
}

#[test]
fn errors_are_one_line_and_write_nothing() {
    let pod = pod("p", NOWHERE, "");
    let input = format!("{OTHERS}---\n{pod}");
    wrap_fails(
        &input,
        &["--insecure-registry", "127.0.0.1:9"],
        &[
            "document 3 (Pod p), container app: image 127.0.0.1:9/app:1: cannot reach registry 127.0.0.1:9",
        ],
    );
    wrap_fails("a: [\n", &[], &["document 1: YAML"]);
    wrap_fails(&input, &["--platform", "linux"], &["--platform linux"]);
    let bad = pod.replace("\"true\"", "\"app,web\"");
    wrap_fails(
        &bad,
        &[],
        &["document 1 (Pod p): annotation r4.dev/inject: \"web\" names no container"],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-r4"))
        .args(["wrap", "-f", "/nonexistent/x.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("kubectl-r4: reading /nonexistent/x.yaml: "));
    assert!(out.stdout.is_empty());
}

#[test]
fn reads_a_file_and_documents_its_flags() {
    let dir = tempdir();
    let (_, object) = &workloads()[0];
    let file = write(dir.path(), "in.yaml", object);
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-r4"))
        .args(["wrap", "--image", "reg.example/r4-exec@sha256:0123", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("image: reg.example/r4-exec@sha256:0123\n"));
    // `-f -` is standard input.
    assert_eq!(wrap_ok(object, &["-f", "-"]), wrap_ok(object, &[]));
    let help = Command::new(env!("CARGO_BIN_EXE_kubectl-r4"))
        .args(["wrap", "--help"])
        .output()
        .unwrap();
    let help = stdout(&help);
    for flag in [
        "--filename",
        "--image",
        "--platform",
        "--insecure-registry",
        "--registry-ca",
        "--authfile",
        "--wrap-probes",
        "ghcr.io/r4-dev/r4-exec:",
    ] {
        assert!(help.contains(flag), "{flag} in --help");
    }
}

#[test]
fn wrapped_workloads_pass_the_kubernetes_schema() {
    if !require(
        on_path("kubernetes-validate"),
        "wrapped_workloads_pass_the_kubernetes_schema",
        "kubernetes-validate (pip install kubernetes-validate)",
    ) {
        return;
    }
    let dir = tempdir();
    for (kind, object) in workloads() {
        let out = wrap_ok(&object, &["--wrap-probes"]);
        let file = write(dir.path(), &format!("{kind}.yaml"), &out);
        let check = Command::new("kubernetes-validate")
            .args(["--strict", "--quiet"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{kind}: {}{}\n{out}",
            stdout(&check),
            stderr(&check)
        );
    }
}

/// The shim's static budget: r4-exec depends neither on kubectl-r4 nor on
/// the crates only kubectl-r4 brings (its HTTP client and YAML parser), as
/// Cargo.lock records r4-exec's dependencies.
#[test]
fn r4_exec_never_depends_on_kubectl_r4() {
    let lock =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
    let block = lock
        .split("[[package]]")
        .find(|b| b.contains("\nname = \"r4-exec\"\n"))
        .expect("r4-exec in Cargo.lock");
    assert!(block.contains("dependencies = ["), "{block}");
    for name in ["kubectl-r4", "ureq", "saphyr-parser"] {
        assert!(
            !block.contains(&format!("\"{name}")),
            "r4-exec depends on {name}"
        );
    }
}
