"""A CloudFormation template as one stack would have it, for given parameter values: the tests' stand-in for
what CloudFormation does before it creates anything.

`stack(template, {"ReadersSeeTrusted": "true"})` evaluates the conditions (Fn::Equals, Fn::Not, Fn::And,
Fn::Or, Condition), keeps the resources and outputs whose condition holds, takes each Fn::If's branch
(dropping `Ref: AWS::NoValue`), and replaces every Ref, Fn::Sub and Fn::GetAtt of a parameter, of a pseudo
parameter (with `pseudo`: partition aws, region us-east-1, account 123456789012) or of a resource named in
`physical` (`{"LakehouseBucket": "b", "LakehouseBucket.Arn": "arn:..."}`). What is left unresolved stays as
written, so the result can be linted (the parameters and conditions are gone: it is one stack's template).
"""

from __future__ import annotations

import re
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "amazonaws.com",
          "AWS::StackName": "stedi"}
_NO_VALUE = object()
_SUB = re.compile(r"\$\{([A-Za-z0-9:._]+)\}")


def stack(template: dict[str, Any], parameters: dict[str, str] | None = None, pseudo: bool = True,
          physical: dict[str, str] | None = None) -> dict[str, Any]:
    declared = template.get("Parameters", {})
    unknown = set(parameters or {}) - set(declared)
    assert not unknown, f"no such parameters: {unknown}"
    values: dict[str, Any] = {name: p.get("Default") for name, p in declared.items()}
    values.update(parameters or {})
    missing = [name for name, value in values.items() if value is None]
    assert not missing, f"parameters without a value: {missing}"
    if pseudo:
        values.update(PSEUDO)
    values.update(physical or {})
    conditions: dict[str, bool] = {}
    for name, expression in template.get("Conditions", {}).items():
        conditions[name] = _condition(expression, values, template["Conditions"], conditions)
    out = {k: v for k, v in template.items() if k not in ("Parameters", "Conditions")}
    for section in ("Resources", "Outputs"):
        if section in out:
            out[section] = {name: {k: v for k, v in body.items() if k != "Condition"}
                            for name, body in out[section].items()
                            if conditions.get(body.get("Condition", ""), True)}
    return dict(_resolve(out, values, conditions))


def _condition(expression: Any, values: dict[str, Any], declared: dict[str, Any], known: dict[str, bool]) -> bool:
    (function, args), = expression.items()
    if function == "Condition":
        if args not in known:
            known[args] = _condition(declared[args], values, declared, known)
        return known[args]
    if function == "Fn::Equals":
        left, right = (_resolve(a, values, known) for a in args)
        return bool(str(left) == str(right))
    if function == "Fn::Not":
        return not _condition(args[0], values, declared, known)
    if function == "Fn::And":
        return all(_condition(a, values, declared, known) for a in args)
    if function == "Fn::Or":
        return any(_condition(a, values, declared, known) for a in args)
    raise AssertionError(f"not a condition function: {function}")


def _resolve(node: Any, values: dict[str, Any], conditions: dict[str, bool]) -> Any:
    if isinstance(node, list):
        items = [_resolve(item, values, conditions) for item in node]
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (key, arg), = node.items()
        if key == "Ref":
            if arg == "AWS::NoValue":
                return _NO_VALUE
            return values.get(arg, node)
        if key == "Fn::If":
            condition, then, otherwise = arg
            return _resolve(then if conditions[condition] else otherwise, values, conditions)
        if key == "Fn::GetAtt":
            return values.get(".".join(arg), node)
        if key == "Fn::Sub":
            text = _SUB.sub(lambda m: str(values.get(m.group(1), m.group(0))), arg)
            return text if "${" not in text else {"Fn::Sub": text}
    resolved = {k: _resolve(v, values, conditions) for k, v in node.items()}
    return {k: v for k, v in resolved.items() if v is not _NO_VALUE}
