"""CloudFormation intrinsic functions and conditions, resolved against deployed resources.

Every function CloudFormation documents for resource properties is handled except Fn::Cidr and
Fn::Transform (macros), which raise: the local deployer never guesses."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from localcloud.deploy.errors import TemplateError

SUB_PATTERN = re.compile(r"\$\{([^}]*)\}")
PSEUDO = {
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
}


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


def intrinsic(value: Any) -> tuple[str, Any] | None:
    """(function, argument) when `value` is an intrinsic function call, else None."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" or key.startswith("Fn::") or key == "Condition":
            return key, arg
    return None


def references(value: Any) -> Iterator[str]:
    """Names referred to by Ref, Fn::GetAtt and Fn::Sub anywhere in `value` (parameters included)."""
    call = intrinsic(value)
    if call is not None:
        fn, arg = call
        if fn == "Ref" and isinstance(arg, str):
            yield arg
        elif fn == "Fn::GetAtt":
            yield (arg.split(".", 1)[0] if isinstance(arg, str) else arg[0])
        elif fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            for name in SUB_PATTERN.findall(text):
                if not name.startswith("!") and name.split(".", 1)[0] not in variables:
                    yield name.split(".", 1)[0]
            yield from references(variables)
            return
    if isinstance(value, dict):
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


class Resolver:
    def __init__(
        self,
        parameters: dict[str, Any],
        pseudo: dict[str, Any],
        ref: Callable[[str], Any],
        get_att: Callable[[str, str], Any],
        mappings: dict[str, Any] | None = None,
        conditions: dict[str, bool] | None = None,
    ) -> None:
        self._parameters = parameters
        self._pseudo = pseudo
        self._ref = ref
        self._get_att = get_att
        self._mappings = mappings or {}
        self.conditions: dict[str, bool] = conditions or {}

    def resolve(self, value: Any) -> Any:
        call = intrinsic(value)
        if call is not None:
            return self._call(*call)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                resolved = self.resolve(item)
                if resolved is not NO_VALUE:
                    out[key] = resolved
            return out
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        return value

    def condition(self, value: Any) -> bool:
        result = self.resolve(value)
        if not isinstance(result, bool):
            raise TemplateError(f"a condition must evaluate to true or false, got {result!r}")
        return result

    def lookup(self, name: str) -> Any:
        if name in self._pseudo:
            return self._pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            raise TemplateError(f"pseudo parameter {name} is not available locally")
        if name in self._parameters:
            return self._parameters[name]
        return self._ref(name)

    def _call(self, fn: str, arg: Any) -> Any:
        if fn == "Ref":
            return self.lookup(arg)
        if fn == "Fn::GetAtt":
            logical, attribute = arg.split(".", 1) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
            return self._get_att(logical, attribute)
        if fn == "Fn::Sub":
            return self._sub(arg)
        if fn == "Fn::Join":
            delimiter, items = arg
            items = self.resolve(items)
            return self.resolve(delimiter).join(str(self._scalar(i)) for i in items)
        if fn == "Fn::Select":
            index, items = self.resolve(arg[0]), self.resolve(arg[1])
            return items[int(index)]
        if fn == "Fn::Split":
            delimiter, text = arg
            return str(self.resolve(text)).split(self.resolve(delimiter))
        if fn == "Fn::If":
            name, when_true, when_false = arg
            if name not in self.conditions:
                raise TemplateError(f"Fn::If refers to unknown condition {name!r}")
            return self.resolve(when_true if self.conditions[name] else when_false)
        if fn == "Fn::Equals":
            left, right = (self.resolve(a) for a in arg)
            return str(left) == str(right)
        if fn == "Fn::And":
            return all(self.condition(a) for a in arg)
        if fn == "Fn::Or":
            return any(self.condition(a) for a in arg)
        if fn == "Fn::Not":
            return not self.condition(arg[0])
        if fn == "Condition":
            if arg not in self.conditions:
                raise TemplateError(f"unknown condition {arg!r}")
            return self.conditions[arg]
        if fn == "Fn::FindInMap":
            name, top, second = (self.resolve(a) for a in arg[:3])
            try:
                return self._mappings[name][top][second]
            except KeyError:
                raise TemplateError(f"Fn::FindInMap: {name}/{top}/{second} is not in the template's Mappings") from None
        if fn == "Fn::Base64":
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if fn == "Fn::GetAZs":
            region = self.resolve(arg) or self._pseudo["AWS::Region"]
            return [f"{region}{zone}" for zone in "abc"]
        if fn == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        if fn == "Fn::Length":
            return len(self.resolve(arg))
        raise TemplateError(f"{fn} is not supported by the local deployer")

    def _scalar(self, value: Any) -> Any:
        if isinstance(value, dict | list):
            raise TemplateError(f"expected a string, got {value!r}")
        return value

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self._scalar(variables[name]))
            if "." in name and name.split(".", 1)[0] not in PSEUDO:
                logical, attribute = name.split(".", 1)
                return str(self._scalar(self._get_att(logical, attribute)))
            return str(self._scalar(self.lookup(name)))

        return SUB_PATTERN.sub(replace, text)
