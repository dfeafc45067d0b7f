"""The SAM template, translated offline the way CloudFormation would.

    template.py translate [Name=value ...]   the CloudFormation JSON
    template.py patterns  [Name=value ...]   every AWS::Events::Rule pattern, by logical id,
                                              parameters resolved (Name=value overrides)
"""
import json
import re
import sys
from pathlib import Path

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
          "AWS::Partition": "aws", "AWS::StackName": "mwaa-ops", "AWS::URLSuffix": "amazonaws.com"}


class _NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs; offline there are none to look up."""

    def load(self):
        return {}


def load(path=TEMPLATE):
    return yaml_parse(Path(path).read_text())


def translate(path=TEMPLATE, overrides=None):
    """The template as CloudFormation would see it: state machine definitions read from their
    files (as `sam package` does), then the SAM transform. `overrides` is unused here (kept for
    callers that resolve parameters afterwards)."""
    import os
    os.environ.setdefault("AWS_DEFAULT_REGION", PSEUDO["AWS::Region"])
    template = load(path)
    for res in template["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            # `sam package` puts the built code in S3; the translator insists on that form.
            res["Properties"]["CodeUri"] = "s3://mwaa-ops-artifacts/code.zip"
        if res["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in res["Properties"]:
            uri = res["Properties"].pop("DefinitionUri")
            res["Properties"]["Definition"] = json.loads((Path(path).parent / uri).read_text())
    try:
        return transform(template, {}, _NoManagedPolicies())
    except InvalidDocumentException as e:
        raise SystemExit("SAM translation failed: " + "; ".join(str(c) for c in e.causes))


def parameter_values(template, overrides):
    values = dict(PSEUDO)
    for name, spec in template.get("Parameters", {}).items():
        raw = overrides.get(name, spec.get("Default"))
        if raw is None:
            continue
        if spec.get("Type") == "CommaDelimitedList":
            values[name] = [v for v in raw.split(",") if v] if isinstance(raw, str) else raw
        else:
            values[name] = raw
    return values


def resolve(node, values):
    """Resolves Ref and Sub of parameters; other intrinsics stay as they are."""
    if isinstance(node, list):
        return [resolve(n, values) for n in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"} and node["Ref"] in values:
        return values[node["Ref"]]
    if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(values.get(m.group(1), m.group(0))),
                      node["Fn::Sub"])
    return {k: resolve(v, values) for k, v in node.items()}


def rule_patterns(overrides=None):
    cfn = translate(overrides=overrides)
    values = parameter_values(cfn, overrides or {})
    return {name: resolve(res["Properties"]["EventPattern"], values)
            for name, res in cfn["Resources"].items()
            if res["Type"] == "AWS::Events::Rule" and "EventPattern" in res["Properties"]}


def main(argv):
    if not argv or argv[0] not in ("translate", "patterns"):
        raise SystemExit(__doc__)
    overrides = dict(a.split("=", 1) for a in argv[1:])
    if argv[0] == "translate":
        cfn = translate(overrides=overrides)
        print(json.dumps(resolve(cfn, parameter_values(cfn, overrides)), indent=2))
    else:
        print(json.dumps(rule_patterns(overrides)))


if __name__ == "__main__":
    main(sys.argv[1:])
