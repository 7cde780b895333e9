"""Evaluates a ValidatingAdmissionPolicy's CEL on fixture objects, as the
API server would, with cel-python (module celpy): tests/e2e/admission.rs.

    python3 evaluate.py POLICY.yaml FIXTURES.yaml

The expressions are read from POLICY.yaml (nothing here knows them). For
each policy and binding it prints one JSON line describing it; then, for each
fixture, one line: its name, the request (annotation test.r4.dev/request,
default "CREATE pods"), whether the policy's resourceRules match it, the
message of each validation that failed and any evaluation error.

Kubernetes binds `object`, `oldObject`, `request`, `params`,
`namespaceObject` and `variables`; the policy may use the first three and
`variables` (spec.variables, each evaluated in order, as the API server
composes them). `authorizer` and the Kubernetes extension libraries are not
bound: an expression that used them fails here, which is the point (the
policy keeps to standard CEL).
"""

import json
import sys

import celpy
import yaml

REQUEST_ANNOTATION = "test.r4.dev/request"


def main(policy_path, fixtures_path):
    with open(policy_path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    policies = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
    for d in docs:
        if d["kind"] == "ValidatingAdmissionPolicyBinding":
            spec = d["spec"]
            emit(
                binding=d["metadata"]["name"],
                policyName=spec.get("policyName"),
                validationActions=spec.get("validationActions"),
                matchResources=spec.get("matchResources"),
            )
    env = celpy.Environment()
    compiled = [compile_policy(env, p) for p in policies]
    with open(fixtures_path) as f:
        fixtures = [d for d in yaml.safe_load_all(f) if d]
    for obj in fixtures:
        request = (obj["metadata"].get("annotations") or {}).get(
            REQUEST_ANNOTATION, "CREATE pods"
        )
        operation, resource = request.split()
        for policy in compiled:
            emit(
                fixture=obj["metadata"]["name"],
                policy=policy["name"],
                request=request,
                **evaluate(policy, obj, operation, resource),
            )


def emit(**fields):
    print(json.dumps(fields), flush=True)


def compile_policy(env, policy):
    spec = policy["spec"]

    def program(expr):
        return env.program(env.compile(expr))

    compiled = {
        "name": policy["metadata"]["name"],
        "spec": spec,
        "matchConditions": [
            (m["name"], program(m["expression"]))
            for m in spec.get("matchConditions", [])
        ],
        "variables": [
            (v["name"], program(v["expression"])) for v in spec.get("variables", [])
        ],
        "validations": [
            {
                "expression": v["expression"],
                "program": program(v["expression"]),
                "message": v.get("message"),
                "messageExpression": (
                    program(v["messageExpression"])
                    if "messageExpression" in v
                    else None
                ),
            }
            for v in spec["validations"]
        ],
    }
    emit(
        policy=compiled["name"],
        failurePolicy=spec.get("failurePolicy"),
        resourceRules=spec["matchConstraints"]["resourceRules"],
        variables=[n for n, _ in compiled["variables"]],
        validations=[
            {
                "expression": v["expression"],
                "message": v.get("message"),
                "messageExpression": v.get("messageExpression"),
                "reason": v.get("reason"),
            }
            for v in spec["validations"]
        ],
    )
    return compiled


def matches(rules, obj, operation, resource):
    group, _, version = obj["apiVersion"].rpartition("/")
    for rule in rules:
        if (
            any(g in ("*", group) for g in rule.get("apiGroups", []))
            and any(v in ("*", version) for v in rule.get("apiVersions", []))
            and any(o in ("*", operation) for o in rule.get("operations", []))
            and resource in rule.get("resources", [])
        ):
            return True
    return False


def run(program, activation):
    """The value, or raises what cel-python reports as an error."""
    try:
        value = program.evaluate(activation)
    except celpy.CELEvalError as e:
        raise EvalError(str(e)) from None
    if isinstance(value, celpy.CELEvalError):
        raise EvalError(str(value))
    return value


class EvalError(Exception):
    pass


def evaluate(policy, obj, operation, resource):
    result = {"matched": False, "denied": [], "errors": []}
    spec = policy["spec"]
    if not matches(spec["matchConstraints"]["resourceRules"], obj, operation, resource):
        return result
    name, _, sub = resource.partition("/")
    request = {
        "operation": operation,
        "kind": {"group": "", "version": "v1", "kind": obj["kind"]},
        "resource": {"group": "", "version": "v1", "resource": name},
        "subResource": sub,
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"].get("namespace", "default"),
    }
    activation = {
        "object": celpy.json_to_cel(obj),
        # On UPDATE the test's old object is the same Pod: the fixtures
        # describe the object the request would leave behind.
        "oldObject": celpy.json_to_cel(obj if operation == "UPDATE" else None),
        "request": celpy.json_to_cel(request),
        "params": celpy.json_to_cel(None),
    }
    try:
        for cname, program in policy["matchConditions"]:
            value = run(program, activation)
            if not isinstance(value, celpy.celtypes.BoolType):
                raise EvalError(f"matchCondition {cname}: {value!r} is not a bool")
            if not value:
                return result
        result["matched"] = True
        variables = {}
        for vname, program in policy["variables"]:
            activation["variables"] = celpy.celtypes.MapType(variables)
            variables[celpy.celtypes.StringType(vname)] = run(program, activation)
        activation["variables"] = celpy.celtypes.MapType(variables)
    except EvalError as e:
        result["errors"].append(str(e))
        return result
    for v in policy["validations"]:
        try:
            value = run(v["program"], activation)
            if not isinstance(value, celpy.celtypes.BoolType):
                raise EvalError(f"{v['expression']!r}: {value!r} is not a bool")
            if value:
                continue
            message = v["message"]
            if v["messageExpression"] is not None:
                value = run(v["messageExpression"], activation)
                if not isinstance(value, str):
                    raise EvalError(f"messageExpression: {value!r} is not a string")
                # Kubernetes uses `message` instead of an empty, blank or
                # multi-line result; the test wants to see that happen.
                if not value.strip() or "\n" in value:
                    raise EvalError(f"messageExpression: {value!r} is blank or multi-line")
                message = value
            result["denied"].append(str(message))
        except EvalError as e:
            result["errors"].append(str(e))
    return result


if __name__ == "__main__":
    main(*sys.argv[1:])
