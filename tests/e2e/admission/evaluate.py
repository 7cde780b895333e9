"""Evaluates a ValidatingAdmissionPolicy's CEL on fixture objects, as the
API server would: tests/e2e/admission.rs.

    python3 evaluate.py [--engine cel-python|cel-cpp] POLICY.yaml FIXTURES.yaml

Two independent CEL implementations: cel-python (module celpy, pure Python;
the default) and cel-cpp, Google's C++ implementation, through its Python
binding cel-expr-python (module cel_expr_python), which also type-checks each
expression before it runs: a validation must be a bool, a messageExpression
a string, and every function must exist with those argument types.

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

Neither checks what Kubernetes' CEL environment also checks, that
the values of a list or map literal have one type
(HomogeneousAggregateLiterals): `{'name': c.name, 'command': c.command}` is
an error there. With cel-python, `literal_issues` infers what it can of each
literal value's type from the syntax and reports literals (and conditionals)
that mix types.
"""

import json
import sys

import yaml

REQUEST_ANNOTATION = "test.r4.dev/request"


class EvalError(Exception):
    pass


class CelPython:
    """cel-python: values are celpy's CEL types."""

    name = "cel-python"

    def __init__(self):
        import celpy

        self.celpy = celpy
        self.env = celpy.Environment()

    def compile(self, expr):
        return self.env.program(self.env.compile(expr)), None

    def issues(self, expr):
        return literal_issues(self.env.compile(expr))

    def activation(self, plain):
        return {k: self.celpy.json_to_cel(v) for k, v in plain.items()}

    def bind(self, activation, variables):
        types = self.celpy.celtypes
        activation["variables"] = types.MapType(
            {types.StringType(k): v for k, v in variables.items()}
        )

    def run(self, program, activation):
        try:
            value = program.evaluate(activation)
        except self.celpy.CELEvalError as e:
            raise EvalError(str(e)) from None
        if isinstance(value, self.celpy.CELEvalError):
            raise EvalError(str(value))
        return value

    def is_bool(self, value):
        return isinstance(value, self.celpy.celtypes.BoolType)

    def is_string(self, value):
        return isinstance(value, str)


class CelCpp:
    """cel-cpp through cel-expr-python: every expression is type-checked
    with the variables Kubernetes declares as dyn; values are plain Python."""

    name = "cel-cpp"

    def __init__(self):
        from cel_expr_python import cel

        self.cel = cel
        dyn = cel.Type.DYN
        self.env = cel.NewEnv(
            variables={
                "object": dyn,
                "oldObject": dyn,
                "request": dyn,
                "params": dyn,
                "namespaceObject": dyn,
                "variables": cel.Type.Map(cel.Type.STRING, dyn),
            }
        )

    def compile(self, expr):
        try:
            program = self.env.compile(expr)
        except Exception as e:  # the binding raises its checker's error as is
            raise SystemExit(f"cel-cpp does not compile {expr!r}: {e}") from None
        return program, str(program.return_type())

    def issues(self, expr):
        return []

    def activation(self, plain):
        return dict(plain)

    def bind(self, activation, variables):
        activation["variables"] = dict(variables)

    def run(self, program, activation):
        value = program.eval(data=activation)
        if value.type() == self.cel.Type.ERROR:
            raise EvalError(str(value))
        return value.plain_value()

    def is_bool(self, value):
        return isinstance(value, bool)

    def is_string(self, value):
        return isinstance(value, str)


ENGINES = {"cel-python": CelPython, "cel-cpp": CelCpp}


def main(*argv):
    engine = "cel-python"
    if argv[0] == "--engine":
        engine, argv = argv[1], argv[2:]
    run_all(ENGINES[engine](), *argv)


def run_all(engine, policy_path, fixtures_path):
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
    compiled = [compile_policy(engine, p) for p in policies]
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
                **evaluate(engine, policy, obj, operation, resource),
            )


def emit(**fields):
    print(json.dumps(fields), flush=True)


def compile_policy(engine, policy):
    spec = policy["spec"]
    return_types = {}

    def program(expr):
        compiled, return_type = engine.compile(expr)
        return_types[expr] = return_type
        return compiled

    issues = []
    for expr in expressions(spec):
        issues += [f"{issue}, in {expr!r}" for issue in engine.issues(expr)]
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
        engine=engine.name,
        failurePolicy=spec.get("failurePolicy"),
        resourceRules=spec["matchConstraints"]["resourceRules"],
        variables=[n for n, _ in compiled["variables"]],
        literalIssues=issues,
        validations=[
            {
                "expression": v["expression"],
                "message": v.get("message"),
                "messageExpression": v.get("messageExpression"),
                "reason": v.get("reason"),
                # What the type checker says each returns (cel-cpp only).
                "type": return_types[v["expression"]],
                "messageType": return_types.get(v.get("messageExpression")),
            }
            for v in spec["validations"]
        ],
    )
    return compiled


def expressions(spec):
    """Every CEL expression of a policy's spec."""
    for m in spec.get("matchConditions", []):
        yield m["expression"]
    for v in spec.get("variables", []):
        yield v["expression"]
    for v in spec["validations"]:
        yield v["expression"]
        if "messageExpression" in v:
            yield v["messageExpression"]


# Methods and functions whose result type the syntax tells.
BOOL_METHODS = {"startsWith", "endsWith", "contains", "matches", "all", "exists", "exists_one"}
LIST_METHODS = {"map", "filter"}
FUNCTIONS = {"has": "bool", "size": "number", "int": "number", "uint": "number",
             "double": "number", "string": "string"}


def lark_types():
    import lark

    return lark.Tree, lark.Token


def subtrees(tree):
    tree_type, _ = lark_types()
    return [c for c in tree.children if isinstance(c, tree_type)]


def name_of(tree):
    """The identifier token of a method or function call node."""
    _, token_type = lark_types()
    return next(str(c) for c in tree.children if isinstance(c, token_type))


def join(a, b, issues, where):
    if a is None or b is None or a == b:
        return a if b is None else b
    issues.append(f"{where} mixes {a} and {b}")
    return None


def infer(tree, issues):
    """The type of `tree` as far as its syntax tells ('string', 'number',
    'bool', 'list', 'map', 'null'), or None (a field, a variable: dyn)."""
    if not isinstance(tree, lark_types()[0]):
        return None
    d, kids = tree.data, subtrees(tree)
    if d == "expr" and len(kids) == 3:
        return join(infer(kids[1], issues), infer(kids[2], issues), issues, "a conditional")
    if d in ("conditionalor", "conditionaland", "relation") and len(kids) > 1:
        for k in kids:
            infer(k, issues)
        return "bool"
    if d == "addition" and len(kids) > 1:
        types = {infer(k, issues) for k in kids}
        for t in ("string", "list", "number"):
            if t in types:
                return t
        return None
    if d in ("addition_add", "addition_sub") and kids:
        return infer(kids[0], issues)
    if d == "multiplication" and len(kids) > 1:
        for k in kids:
            infer(k, issues)
        return "number"
    if d == "unary" and kids and kids[0].data == "unary_not":
        infer(kids[-1], issues)
        return "bool"
    if d == "unary" and kids and kids[0].data == "unary_neg":
        infer(kids[-1], issues)
        return "number"
    if d == "literal":
        text = str(tree.children[0])
        if text in ("true", "false"):
            return "bool"
        if text == "null":
            return "null"
        return "number" if text[0].isdigit() or text[0] in "-." else "string"
    if d == "list_lit":
        literal(kids[0].children if kids else [], "a list literal's items", issues)
        return "list"
    if d == "map_lit":
        entries = subtrees(kids[0]) if kids else []
        literal(entries[0::2], "a map literal's keys", issues)
        literal(entries[1::2], "a map literal's values", issues)
        return "map"
    if d == "member_dot_arg":
        for k in kids:
            infer(k, issues)
        method = name_of(tree)
        return "bool" if method in BOOL_METHODS else "list" if method in LIST_METHODS else None
    if d == "ident_arg":
        for k in kids:
            infer(k, issues)
        return FUNCTIONS.get(name_of(tree))
    if d in ("member_dot", "member_index", "ident", "dot_ident", "dot_ident_arg"):
        for k in kids:
            infer(k, issues)
        return None
    if len(kids) == 1:
        return infer(kids[0], issues)
    for k in kids:
        infer(k, issues)
    return None


def literal(items, what, issues):
    types = set()
    for item in items:
        if isinstance(item, lark_types()[0]):
            t = infer(item, issues)
            if t not in (None, "null"):
                types.add(t)
    if len(types) > 1:
        issues.append(f"{what} mix {', '.join(sorted(types))}")


def literal_issues(tree):
    issues = []
    infer(tree, issues)
    return issues


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


def evaluate(engine, policy, obj, operation, resource):
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
    activation = engine.activation(
        {
            "object": obj,
            # On UPDATE the test's old object is the same Pod: the fixtures
            # describe the object the request would leave behind.
            "oldObject": obj if operation == "UPDATE" else None,
            "request": request,
            "params": None,
            "namespaceObject": None,
        }
    )
    run = engine.run
    try:
        for cname, program in policy["matchConditions"]:
            value = run(program, activation)
            if not engine.is_bool(value):
                raise EvalError(f"matchCondition {cname}: {value!r} is not a bool")
            if not value:
                return result
        result["matched"] = True
        variables = {}
        for vname, program in policy["variables"]:
            engine.bind(activation, variables)
            variables[vname] = run(program, activation)
        engine.bind(activation, variables)
    except EvalError as e:
        result["errors"].append(str(e))
        return result
    for v in policy["validations"]:
        try:
            value = run(v["program"], activation)
            if not engine.is_bool(value):
                raise EvalError(f"{v['expression']!r}: {value!r} is not a bool")
            if value:
                continue
            message = v["message"]
            if v["messageExpression"] is not None:
                value = run(v["messageExpression"], activation)
                if not engine.is_string(value):
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
