//! `packaging/r4-admission-policy.yaml`, the ValidatingAdmissionPolicy that
//! rejects a Pod whose container has an `r4://` or `r4+file://` reference in
//! env but is not started by r4-exec. Its CEL is evaluated by two real CEL
//! implementations, cel-python and cel-cpp (through cel-expr-python, whose
//! checker also type-checks every expression), driven by
//! `admission/evaluate.py`, which reads the expressions out of the policy
//! file itself (the test holds no copy of them), on the Pods of
//! `admission/pods.yaml`; both files must also be valid Kubernetes objects
//! (kubernetes-validate, as `.ci/run` runs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{require, stderr, stdout};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn policy() -> PathBuf {
    root().join("packaging/r4-admission-policy.yaml")
}

fn fixtures() -> PathBuf {
    root().join("tests/e2e/admission/pods.yaml")
}

/// What the policy must decide for a fixture.
enum Expect {
    /// Matched and admitted.
    Allow,
    /// Matched and denied, the one message holding every fragment.
    Deny(&'static [&'static str]),
    /// Not matched by the policy's rules (admitted without evaluation).
    Unmatched,
}

/// Every fixture of `admission/pods.yaml`, with its verdict.
const EXPECTED: &[(&str, Expect)] = &[
    // (a) what kubectl-r4 wrap writes
    ("wrapped", Expect::Allow),
    // (b) FROM the r4-exec image
    ("image-built", Expect::Allow),
    // (c)
    (
        "unwrapped",
        Expect::Deny(&[
            "container \"app\" has an r4:// or r4+file:// reference",
            "command starts with /app/server, not /r4/r4-exec or /r4-exec",
            "kubectl-r4 wrap",
        ]),
    ),
    // (d)
    ("no-reference", Expect::Allow),
    // (e)
    (
        "init-unwrapped",
        Expect::Deny(&["init container \"migrate\"", "starts with /app/migrate"]),
    ),
    // (f)
    ("value-from", Expect::Allow),
    // (g)
    (
        "no-command",
        Expect::Deny(&[
            "container \"app\" has an r4:// or r4+file:// reference in env but no command",
            "ENTRYPOINT",
            "kubectl-r4 wrap",
            "set command to [\"/r4-exec\", \"--\", ...]",
        ]),
    ),
    (
        "ephemeral-unwrapped",
        Expect::Deny(&["ephemeral container \"debugger\"", "starts with sh,"]),
    ),
    (
        "two-unwrapped",
        Expect::Deny(&["container \"web\" (and 1 more)", "starts with sh,"]),
    ),
    ("update-unwrapped", Expect::Unmatched),
];

/// Whether python3 can import `modules` (comma-separated).
fn python_has(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether python3 can import cel-python (`celpy`) and PyYAML.
fn cel_python() -> bool {
    python_has("celpy, yaml")
}

/// The JSON lines `evaluate.py` prints for the policy and the fixtures,
/// evaluated by cel-python.
fn evaluate() -> Vec<Value> {
    evaluate_with("cel-python")
}

/// The same, evaluated by `engine` (`cel-python` or `cel-cpp`).
fn evaluate_with(engine: &str) -> Vec<Value> {
    let out = Command::new("python3")
        .arg(root().join("tests/e2e/admission/evaluate.py"))
        .args(["--engine", engine])
        .arg(policy())
        .arg(fixtures())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "evaluate.py failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn the_policy_denies_each_unwrapped_reference_and_admits_the_rest() {
    let test = "admission::the_policy_denies_each_unwrapped_reference_and_admits_the_rest";
    if !require(
        cel_python(),
        test,
        "python3 with cel-python (pip install cel-python)",
    ) {
        return;
    }
    let lines = evaluate();
    let fixtures: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("fixture").is_some())
        .collect();
    let names: Vec<&str> = fixtures
        .iter()
        .map(|f| f["fixture"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = EXPECTED.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected, "the fixtures of admission/pods.yaml");
    for (fixture, (name, expect)) in fixtures.iter().zip(EXPECTED) {
        assert_eq!(
            fixture["errors"],
            Value::Array(vec![]),
            "{name}: evaluation errors (with failurePolicy: Fail the Pod is denied for them)"
        );
        let denied: Vec<&str> = fixture["denied"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        let matched = fixture["matched"].as_bool().unwrap();
        match expect {
            Expect::Allow => {
                assert!(matched, "{name}: not matched");
                assert!(denied.is_empty(), "{name}: denied: {denied:?}");
            }
            Expect::Unmatched => assert!(!matched, "{name}: matched"),
            Expect::Deny(fragments) => {
                assert!(matched, "{name}: not matched");
                let [message] = denied[..] else {
                    panic!("{name}: one denial expected, got {denied:?}");
                };
                for fragment in *fragments {
                    assert!(
                        message.contains(fragment),
                        "{name}: {message:?} lacks {fragment:?}"
                    );
                }
            }
        }
    }
}

/// What the evaluation does not show: the policy fails closed, every
/// validation says why, and the binding denies (not only warns) for it.
#[test]
fn the_policy_fails_closed_and_its_binding_denies() {
    let test = "admission::the_policy_fails_closed_and_its_binding_denies";
    if !require(
        cel_python(),
        test,
        "python3 with cel-python (pip install cel-python)",
    ) {
        return;
    }
    let lines = evaluate();
    let policies: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("policy").is_some() && l.get("fixture").is_none())
        .collect();
    let [policy] = policies[..] else {
        panic!("one policy expected: {policies:?}");
    };
    assert_eq!(policy["failurePolicy"], "Fail");
    assert_eq!(
        policy["literalIssues"],
        serde_json::json!([]),
        "Kubernetes' CEL rejects a literal whose values have different types"
    );
    let validations = policy["validations"].as_array().unwrap();
    assert!(!validations.is_empty());
    for v in validations {
        // A single-line expression (Kubernetes requires a message for one
        // with line breaks), a message naming the container, and a static
        // single-line message, which Kubernetes uses if messageExpression
        // fails.
        let expression = v["expression"].as_str().unwrap();
        assert!(!expression.contains('\n'), "{v}");
        assert!(v["messageExpression"].is_string(), "{v}");
        let message = v["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message: {v}"));
        assert!(!message.trim().is_empty() && !message.contains('\n'), "{v}");
        assert!(message.contains("kubectl-r4 wrap"), "{v}");
    }
    let bindings: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("binding").is_some())
        .collect();
    let [binding] = bindings[..] else {
        panic!("one binding expected: {bindings:?}");
    };
    assert_eq!(binding["policyName"], policy["policy"]);
    assert_eq!(binding["validationActions"], serde_json::json!(["Deny"]));
}

/// cel-cpp, Google's C++ implementation, type-checks every expression (with
/// `object` and the other variables dyn, as the API server declares them at
/// run time): each validation is a bool and each messageExpression a string;
/// and it decides every fixture exactly as cel-python does, message for
/// message.
#[test]
fn cel_cpp_type_checks_the_policy_and_agrees_on_every_fixture() {
    let test = "admission::cel_cpp_type_checks_the_policy_and_agrees_on_every_fixture";
    if !require(
        cel_python() && python_has("cel_expr_python, yaml"),
        test,
        "python3 with cel-python and cel-expr-python (pip install cel-python cel-expr-python)",
    ) {
        return;
    }
    let cpp = evaluate_with("cel-cpp");
    let policy = cpp
        .iter()
        .find(|l| l.get("policy").is_some() && l.get("fixture").is_none())
        .expect("the policy line");
    assert_eq!(policy["engine"], "cel-cpp");
    for v in policy["validations"].as_array().unwrap() {
        assert_eq!(v["type"], "BOOL", "{v}");
        assert_eq!(v["messageType"], "STRING", "{v}");
    }
    let fixtures = |lines: &[Value]| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l.get("fixture").is_some())
            .cloned()
            .collect()
    };
    let python = evaluate();
    assert_eq!(fixtures(&cpp).len(), EXPECTED.len());
    assert_eq!(
        fixtures(&cpp),
        fixtures(&python),
        "cel-cpp and cel-python disagree"
    );
}

/// cel-python checks no types, so `evaluate.py` infers what it can of the
/// type of each literal's values, as Kubernetes' CEL environment requires
/// one type per literal (HomogeneousAggregateLiterals): it finds a map
/// literal mixing a string and a list (a first draft of the policy did
/// that, and the evaluation alone passed), and a conditional mixing types.
/// A field (`c.name`) is of no known type to it: what it sees are literals,
/// operators and functions.
#[test]
fn the_literal_check_finds_mixed_types() {
    let test = "admission::the_literal_check_finds_mixed_types";
    if !require(
        cel_python(),
        test,
        "python3 with cel-python (pip install cel-python)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: { name: mixed }
spec:
  matchConstraints:
    resourceRules:
      - { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] }
  variables:
    - name: shaped
      expression: >-
        object.spec.containers.map(c, {'name': c.name, 'kind': 'container',
          'command': has(c.command) ? c.command : []})
  validations:
    - expression: "size(variables.shaped) > 0"
      messageExpression: "size(variables.shaped) > 1 ? 'many' : 1"
"#,
    )
    .unwrap();
    let out = Command::new("python3")
        .arg(root().join("tests/e2e/admission/evaluate.py"))
        .arg(&policy)
        .arg(fixtures())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let first: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    let issues: Vec<&str> = first["literalIssues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert!(
        issues[0].starts_with("a map literal's values mix list, string"),
        "{issues:?}"
    );
    assert!(
        issues[1].starts_with("a conditional mixes string and number"),
        "{issues:?}"
    );
}

/// The policy and the fixtures are valid objects of Kubernetes 1.30, the
/// first release with admissionregistration.k8s.io/v1 policies, and of the
/// newest one kubernetes-validate knows. Its exit status is not enough: a
/// kind it has no schema for is only a warning.
#[test]
fn the_policy_and_its_fixtures_are_valid_kubernetes() {
    let test = "admission::the_policy_and_its_fixtures_are_valid_kubernetes";
    if !require(
        crate::util::on_path("kubernetes-validate"),
        test,
        "kubernetes-validate (pip install kubernetes-validate)",
    ) {
        return;
    }
    for version in [Some("1.30.0"), None] {
        let mut cmd = Command::new("kubernetes-validate");
        cmd.arg("--strict");
        if let Some(v) = version {
            cmd.args(["-k", v]);
        }
        let out = cmd.arg(policy()).arg(fixtures()).output().unwrap();
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(out.status.success(), "{version:?}: {text}");
        let passed = text.lines().filter(|l| l.contains(" passed for ")).count();
        assert_eq!(
            passed,
            2 + EXPECTED.len(),
            "{version:?}: a policy, a binding and each fixture pass:\n{text}"
        );
        assert!(!text.contains("WARN"), "{version:?}: {text}");
    }
}
