"""IAM identity-policy evaluation as AWS does it, for the bed (pure Python, no AWS).

A request is a list of checks (action, resource ARN, context): AWS authorises a call that
touches several resources (ec2:CreateVpcEndpoint on the VPC, each subnet and the new
endpoint; tags on create) only if every one of them is allowed. Per check: an explicit
``Deny`` wins, else an ``Allow`` allows, else the default is deny.

Understood: ``Action``/``NotAction`` and ``Resource``/``NotResource`` with ``*`` and ``?``
wildcards (actions case-insensitively; ARNs per colon-separated part, as AWS matches them);
condition operators ``String*`` (Equals, NotEquals, EqualsIgnoreCase, Like, NotLike),
``Arn*`` (Equals, Like, NotEquals, NotLike), ``Bool``, ``Null``, ``Numeric*``, each with
``IfExists`` and the ``ForAnyValue:``/``ForAllValues:`` set qualifiers; context keys
case-insensitive, values lists for multi-valued keys. Anything else in a statement (an
operator not listed, a ``Principal`` in an identity policy, policy variables such as
``${aws:username}``) makes that statement never match (``Allow`` then allows nothing,
``Deny`` is reported as unsupported), so the bed refuses rather than allow what AWS might not.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "allow", "explicit-deny", "implicit-deny"


@dataclass
class Check:
    action: str
    resource: str
    context: dict = field(default_factory=dict)


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _glob(pattern: str, text: str, ignore_case=False) -> bool:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one; nothing else is special."""
    return _compiled(pattern, ignore_case).fullmatch(text) is not None


def action_matches(pattern: str, action: str) -> bool:
    return _glob(pattern, action, ignore_case=True)


def arn_matches(pattern: str, arn: str) -> bool:
    """AWS's ARN matching: each of the six parts on its own (a wildcard does not cross the
    colons of the first five), the resource part (which may hold colons) as a whole."""
    if pattern == "*":
        return True
    want = pattern.split(":", 5)
    have = arn.split(":", 5)
    if len(want) != 6 or len(have) != 6:
        return False  # not an ARN: only "*" covers actions that have no resource type
    return all(_glob(w, h) for w, h in zip(want, have))


class Unsupported(Exception):
    """A statement uses something this evaluator does not understand."""


def _string_op(base: str, have: str, want: str) -> bool:
    if base in ("StringEquals", "StringNotEquals"):
        return have == want
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return have.lower() == want.lower()
    if base in ("StringLike", "StringNotLike"):
        return _glob(want, have)
    if base in ("ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike"):
        return arn_matches(want, have) if "Like" in base else have == want
    if base == "Bool":
        return have.lower() == want.lower()
    if base.startswith("Numeric"):
        a, b = float(have), float(want)
        return {"NumericEquals": a == b, "NumericNotEquals": a == b, "NumericLessThan": a < b,
                "NumericLessThanEquals": a <= b, "NumericGreaterThan": a > b,
                "NumericGreaterThanEquals": a >= b}[base]
    raise Unsupported(f"condition operator {base}")


_KNOWN = {"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase",
          "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike", "ArnEquals", "ArnLike",
          "ArnNotEquals", "ArnNotLike", "Bool", "NumericEquals", "NumericNotEquals",
          "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan",
          "NumericGreaterThanEquals"}


def _negated(base: str) -> bool:
    return "Not" in base


def condition_holds(operator: str, key: str, wanted, context: dict) -> bool:
    qualifier = None
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
        if qualifier not in ("ForAnyValue", "ForAllValues"):
            raise Unsupported(f"set operator {qualifier}")
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    have = context.get(key.lower())
    wanted = [str(w).lower() if isinstance(w, bool) else str(w) for w in _as_list(wanted)]
    if base == "Null":
        return (have is None) == (wanted[0].lower() == "true")
    if base not in _KNOWN:
        raise Unsupported(f"condition operator {operator}")
    values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(have)]
    if have is None:
        if qualifier == "ForAllValues":
            return True
        return if_exists or (_negated(base) and qualifier is None)
    if qualifier == "ForAnyValue":
        if _negated(base):
            return any(not any(_string_op(base, v, w) for w in wanted) for v in values)
        return any(_string_op(base, v, w) for v in values for w in wanted)
    if qualifier == "ForAllValues":
        if _negated(base):
            return all(not any(_string_op(base, v, w) for w in wanted) for v in values)
        return all(any(_string_op(base, v, w) for w in wanted) for v in values)
    if len(values) != 1:
        # A multi-valued key needs a set qualifier; without one AWS matches nothing.
        return _negated(base)
    matched = any(_string_op(base, values[0], w) for w in wanted)
    return not matched if _negated(base) else matched


def _conditions_hold(conditions: dict | None, context: dict) -> bool:
    return all(condition_holds(op, key, wanted, context)
               for op, checks in (conditions or {}).items()
               for key, wanted in checks.items())


def _has_variable(values) -> bool:
    return any("${" in str(v) for v in values)


def statement_applies(statement: dict, check: Check) -> bool:
    """Whether the statement covers this action, resource and context."""
    if "Principal" in statement or "NotPrincipal" in statement:
        raise Unsupported("Principal in an identity policy")
    if "Action" in statement:
        if not any(action_matches(a, check.action) for a in _as_list(statement["Action"])):
            return False
    elif any(action_matches(a, check.action) for a in _as_list(statement.get("NotAction"))):
        return False
    if "Resource" in statement:
        resources = _as_list(statement["Resource"])
        if _has_variable(resources) or not all(isinstance(r, str) for r in resources):
            raise Unsupported(f"unresolved resource {resources}")
        if not any(arn_matches(r, check.resource) for r in resources):
            return False
    elif "NotResource" in statement:
        if any(arn_matches(r, check.resource) for r in _as_list(statement["NotResource"])):
            return False
    else:
        raise Unsupported("a statement with neither Resource nor NotResource")
    return _conditions_hold(statement.get("Condition"), check.context)


def decide(statements: list[dict], check: Check) -> tuple[str, list[str]]:
    """(ALLOW | EXPLICIT_DENY | IMPLICIT_DENY, notes on statements the evaluator skipped)."""
    allowed, notes = False, []
    context = {k.lower(): v for k, v in check.context.items()}
    lowered = Check(check.action, check.resource, context)
    for statement in statements:
        try:
            applies = statement_applies(statement, lowered)
        except Unsupported as e:
            notes.append(f"{statement.get('Sid', '(no Sid)')}: {e}")
            if statement.get("Effect") == "Deny":
                return EXPLICIT_DENY, notes  # a Deny we cannot read may well apply
            continue
        if not applies:
            continue
        if statement.get("Effect") == "Deny":
            return EXPLICIT_DENY, notes
        if statement.get("Effect") == "Allow":
            allowed = True
    return (ALLOW if allowed else IMPLICIT_DENY), notes


def first_refused(statements: list[dict], checks: list[Check]):
    """The first check the statements do not allow, with its decision; None if all pass."""
    for check in checks:
        decision, notes = decide(statements, check)
        if decision != ALLOW:
            return check, decision, notes
    return None
