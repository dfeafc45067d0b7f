"""The policies the template gives each role, as IAM would hold them once deployed.

``statements(role, parameters, resources)`` translates the SAM template (tests/bed/template.py),
takes the role's inline policies, the ``AWS::IAM::Policy``/``ManagedPolicy`` resources
attached to it and the AWS managed policies SAM attaches, and resolves what CloudFormation
would: parameters and pseudo parameters, ``Fn::Sub``, ``Fn::Join``, ``Fn::If`` on the
template's conditions, and ``Ref``/``Fn::GetAtt`` of the template's resources to the names
the bed gave them (``resources``: logical id -> a name or ARN, or ``{"Ref": .., "Arn": ..}``).
A reference the bed did not name stays unresolved: the evaluator then lets the statement
allow nothing, as a policy naming some other resource would.
"""
from __future__ import annotations

import copy
import functools
import json
import re

import template

# AWS managed policies SAM attaches (their published documents, the parts that apply).
MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream",
                                       "logs:PutLogEvents"], "Resource": "*"}],
}


@functools.lru_cache(maxsize=4)
def _translated(mtime: float) -> str:
    return json.dumps(template.translate())


def translated() -> dict:
    """The translated template (cached while infra/template.yaml is unchanged)."""
    return json.loads(_translated(template.TEMPLATE.stat().st_mtime))


def _physical(logical: str, resources: dict, types: dict) -> dict:
    value = resources.get(logical)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if value.startswith("arn:"):
        return {"Ref": value, "Arn": value}
    if types.get(logical) == "AWS::S3::Bucket":
        return {"Ref": value, "Arn": f"arn:aws:s3:::{value}"}
    return {"Ref": value}


class _Resolver:
    def __init__(self, cfn: dict, parameters: dict, resources: dict):
        self.values = template.parameter_values(cfn, parameters)
        self.types = {k: r["Type"] for k, r in cfn["Resources"].items()}
        self.resources = resources
        self.conditions = cfn.get("Conditions", {})

    def ref(self, name: str):
        if name in self.values:
            return self.values[name]
        return _physical(name, self.resources, self.types).get("Ref")

    def att(self, name: str, attribute: str):
        return _physical(name, self.resources, self.types).get(attribute)

    def condition(self, name: str) -> bool:
        return bool(self(self.conditions[name]))

    def sub(self, text: str, extra: dict) -> str:
        def one(m):
            name = m.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name:
                value = self.att(*name.split(".", 1))
            else:
                value = self.ref(name)
            return m.group(0) if value is None else str(value)
        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def __call__(self, node):
        if isinstance(node, list):
            return [v for v in (self(n) for n in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return _NO_VALUE
                value = self.ref(arg)
                return node if value is None else value
            if key == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                value = self.att(name, attribute)
                return node if value is None else value
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
                return self.sub(text, extra)
            if key == "Fn::Join":
                parts = self(arg[1])
                if all(isinstance(p, (str, int, float)) for p in parts):
                    return arg[0].join(str(p) for p in parts)
                return node
            if key == "Fn::If":
                return self(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                a, b = self(arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self(arg[0])
            if key == "Fn::And":
                return all(self(arg))
            if key == "Fn::Or":
                return any(self(arg))
            if key == "Condition":
                return self.condition(arg)
        return {k: v for k, v in ((k, self(v)) for k, v in node.items()) if v is not _NO_VALUE}


_NO_VALUE = object()


def statements(role: str, parameters: dict | None = None, resources: dict | None = None,
               without: list[str] | None = None) -> list[dict]:
    """Every identity-policy statement of ``role`` (a logical id), resolved; the statements
    whose Sid is in ``without`` left out (to show that a check can fail)."""
    cfn = translated()
    spec = cfn["Resources"].get(role)
    if not spec or spec["Type"] != "AWS::IAM::Role":
        raise KeyError(f"the template has no role {role}")
    resolve = _Resolver(cfn, parameters or {}, resources or {})
    props = resolve(copy.deepcopy(spec["Properties"]))
    out = []
    for policy in props.get("Policies", []):
        out += policy["PolicyDocument"]["Statement"]
    for arn in props.get("ManagedPolicyArns", []):
        if arn not in MANAGED:
            raise KeyError(f"{role}: the bed does not know managed policy {arn}")
        out += copy.deepcopy(MANAGED[arn])
    for spec in cfn["Resources"].values():
        if spec["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and \
                {"Ref": role} in spec["Properties"].get("Roles", []):
            out += resolve(copy.deepcopy(spec["Properties"]["PolicyDocument"]))["Statement"]
    out = [s for s in out if isinstance(s, dict)]
    if without:
        missing = set(without) - {s.get("Sid") for s in out}
        if missing:
            raise KeyError(f"{role} has no statement {sorted(missing)}")
        out = [s for s in out if s.get("Sid") not in without]
    return out


def functions(parameters: dict | None = None, resources: dict | None = None) -> dict:
    """{logical id: properties} of every AWS::Lambda::Function, resolved as ``statements``
    resolves a role (the bed's Lambda service, tests/bed/lambda_local.py, runs them)."""
    return {name: props for name, (_, props) in
            of_type("AWS::Lambda::Function", parameters, resources).items()}


def of_type(kind: str, parameters: dict | None = None, resources: dict | None = None) -> dict:
    """{logical id: (properties as translated, properties resolved)} of every resource of
    ``kind`` (the translated ones still say which function a ``Ref`` names)."""
    cfn = translated()
    resolve = _Resolver(cfn, parameters or {}, resources or {})
    return {name: (spec["Properties"], resolve(copy.deepcopy(spec["Properties"])))
            for name, spec in cfn["Resources"].items() if spec["Type"] == kind}
