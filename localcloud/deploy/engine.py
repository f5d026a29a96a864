"""Provisioning a transformed template through the emulator's public AWS APIs.

The engine orders resources by their references, resolves intrinsic functions against what is
already deployed and hands each resource to the handler for its type (localcloud/deploy/resources).
A handler declares every property it applies; a property it does not know stops the deployment
(UnsupportedError) instead of being dropped. A failed deployment is rolled back: what was created
is deleted in reverse order, as CloudFormation does."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from localcloud.deploy.errors import DeployError, TemplateError, UnsupportedError
from localcloud.deploy.intrinsics import Resolver, references
from localcloud.deploy.template import PackagedTemplate, transform

log = logging.getLogger("localcloud.deploy")

RESOURCE_KEYS = {"Type", "Properties", "DependsOn", "Condition", "Metadata", "DeletionPolicy", "UpdateReplacePolicy"}
ClientFactory = Callable[[str], Any]


@dataclass
class Resource:
    logical_id: str
    type: str
    physical_id: str
    attributes: dict[str, Any]
    properties: dict[str, Any]  # as applied, intrinsics resolved
    adopted: bool = False  # found already there (a persistent DynamoDB's table): never deleted by a rollback


@dataclass
class Stack:
    name: str
    stack_id: str
    template: dict[str, Any]  # the transformed CloudFormation template
    sam_template: dict[str, Any]  # the packaged template before the transform
    parameters: dict[str, Any]
    resources: dict[str, Resource] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    nested: dict[str, Stack] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0

    def walk(self, prefix: str = "") -> Iterator[tuple[str, Stack]]:
        yield prefix, self
        for logical, child in self.nested.items():
            yield from child.walk(f"{prefix}{logical}/")

    def all_resources(self) -> Iterator[tuple[str, Resource]]:
        """Every resource of this stack and its nested stacks, keyed 'Nested/Logical'."""
        for prefix, stack in self.walk():
            for logical, resource in stack.resources.items():
                yield prefix + logical, resource

    def resource(self, path: str) -> Resource:
        for key, resource in self.all_resources():
            if key == path:
                return resource
        raise KeyError(path)

    def find(self, resource_type: str) -> list[tuple[str, Resource]]:
        return [(k, r) for k, r in self.all_resources() if r.type == resource_type]


@dataclass(frozen=True)
class Created:
    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    adopted: bool = False


class ResourceContext:
    def __init__(self, provisioner: Provisioner, stack: Stack, packaged: PackagedTemplate) -> None:
        self.provisioner = provisioner
        self.stack = stack
        self.packaged = packaged
        self.region = provisioner.region
        self.account = provisioner.account

    def client(self, service: str) -> Any:
        return self.provisioner.client(service)

    def physical_name(self, logical: str, max_length: int = 64, lower: bool = False, separator: str = "-") -> str:
        """CloudFormation's generated name shape, <stack>-<logical>-<suffix>, but stable across deploys."""
        suffix = hashlib.sha256(f"{self.stack.name}/{logical}".encode()).hexdigest()[:12].upper()
        stack, logical_part = self.stack.name, logical
        room = max_length - len(suffix) - 2 * len(separator)
        if len(stack) + len(logical_part) > room:
            stack = stack[: max(1, room // 2)]
            logical_part = logical_part[: room - len(stack)]
        name = separator.join([stack, logical_part, suffix])
        return name.lower() if lower else name

    def arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account if account else ''}:{resource}"


class ResourceHandler:
    """Creates and deletes one resource type. Subclasses list every property they apply."""

    type: ClassVar[str]
    properties: ClassVar[frozenset[str]]
    required: ClassVar[frozenset[str]] = frozenset()

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        raise NotImplementedError

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        """Undo create (rollback). Handlers whose resources vanish with their parent skip it."""


HANDLERS: dict[str, ResourceHandler] = {}


def handler(cls: type[ResourceHandler]) -> type[ResourceHandler]:
    HANDLERS[cls.type] = cls()
    return cls


def _check_parameter(name: str, spec: dict[str, Any], value: Any) -> Any:
    kind = spec.get("Type", "String")
    if kind == "Number":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TemplateError(f"parameter {name} must be a number, got {value!r}") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above MaxValue {spec['MaxValue']}")
        return str(value)
    if kind in ("CommaDelimitedList", "List<String>", "List<Number>"):
        return value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
    if kind != "String":
        raise UnsupportedError(f"parameter {name}: type {kind} is not supported locally")
    value = str(value)
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        raise TemplateError(f"parameter {name}={value!r} is not one of {spec['AllowedValues']}")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        raise TemplateError(f"parameter {name}={value!r} does not match {spec['AllowedPattern']}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        raise TemplateError(f"parameter {name} is shorter than {spec['MinLength']}")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        raise TemplateError(f"parameter {name} is longer than {spec['MaxLength']}")
    return value


def resolve_parameters(template: dict[str, Any], given: dict[str, Any], stack: str) -> dict[str, Any]:
    declared = template.get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateError(f"stack {stack}: parameters {unknown} are not declared by the template")
    values = {}
    for name, spec in declared.items():
        if name in given:
            value = given[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise TemplateError(f"stack {stack}: parameter {name} needs a value")
        values[name] = _check_parameter(name, spec, value)
    return values


def order_resources(resources: dict[str, Any]) -> list[str]:
    """Dependency order (Ref, Fn::GetAtt, Fn::Sub, DependsOn); a cycle is a TemplateError."""
    deps: dict[str, set[str]] = {}
    for logical, resource in resources.items():
        extra = set(resource.keys()) - RESOURCE_KEYS
        if extra:
            raise UnsupportedError(f"{logical}: resource attributes {sorted(extra)} are not supported locally")
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else list(depends)
        found = {r for r in references(resource.get("Properties", {})) if r in resources}
        missing = [d for d in depends if d not in resources]
        if missing:
            raise TemplateError(f"{logical}: DependsOn names unknown resources {missing}")
        deps[logical] = found | set(depends)
    ordered: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = [*path[path.index(node) :], node]
            raise TemplateError(f"circular dependency between resources: {' -> '.join(cycle)}")
        state[node] = 1
        for dep in sorted(deps[node]):
            visit(dep, [*path, node])
        state[node] = 2
        ordered.append(node)

    for logical in resources:
        visit(logical, [])
    return ordered


class Provisioner:
    def __init__(self, client: ClientFactory, region: str, account: str) -> None:
        self.client = client
        self.region = region
        self.account = account
        from localcloud.deploy import resources  # noqa: F401 - registers the handlers

    def deploy(self, packaged: PackagedTemplate, stack_name: str, parameters: dict[str, Any] | None = None) -> Stack:
        started = time.perf_counter()
        sam = packaged.template
        params = resolve_parameters(sam, parameters or {}, stack_name)
        stack_id = (
            f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{stack_name}/"
            + hashlib.sha256(stack_name.encode()).hexdigest()[:8]
        )
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": stack_id,
            "AWS::NotificationARNs": [],
        }
        template = transform(sam, {**params, **pseudo}, self.region)
        stack = Stack(stack_name, stack_id, template, sam, params)
        resolver = Resolver(
            params,
            pseudo,
            ref=lambda name: self._ref(stack, name),
            get_att=lambda logical, attr: self._get_att(stack, logical, attr),
            mappings=template.get("Mappings", {}),
        )
        for name, expression in template.get("Conditions", {}).items():
            resolver.conditions[name] = resolver.condition(expression)
        stack.conditions = dict(resolver.conditions)
        declared = {
            k: v for k, v in template.get("Resources", {}).items() if resolver.conditions.get(v.get("Condition"), True)
        }
        ctx = ResourceContext(self, stack, packaged)
        try:
            for logical in order_resources(declared):
                self._create(ctx, resolver, logical, declared[logical])
            for name, output in template.get("Outputs", {}).items():
                if resolver.conditions.get(output.get("Condition"), True):
                    stack.outputs[name] = resolver.resolve(output["Value"])
        except Exception as exc:
            self._rollback(ctx)
            if isinstance(exc, DeployError):
                raise
            raise DeployError(f"stack {stack_name}: {exc}") from exc
        stack.seconds = time.perf_counter() - started
        log.info("deployed %s: %d resources in %.2fs", stack_name, len(stack.resources), stack.seconds)
        return stack

    def _create(self, ctx: ResourceContext, resolver: Resolver, logical: str, declared: dict[str, Any]) -> None:
        kind = declared["Type"]
        impl = HANDLERS.get(kind)
        if impl is None:
            raise UnsupportedError(
                f"stack {ctx.stack.name}: {logical} has type {kind}, which the local runtime does not deploy"
            )
        props = resolver.resolve(declared.get("Properties", {}))
        unknown = sorted(set(props) - impl.properties)
        if unknown:
            raise UnsupportedError(
                f"stack {ctx.stack.name}: {logical} ({kind}) sets {unknown}, which the local runtime does not apply"
            )
        missing = sorted(impl.required - set(props))
        if missing:
            raise TemplateError(f"stack {ctx.stack.name}: {logical} ({kind}) lacks required properties {missing}")
        try:
            created = impl.create(ctx, logical, props)
        except DeployError:
            raise
        except Exception as exc:
            raise DeployError(f"stack {ctx.stack.name}: creating {logical} ({kind}) failed: {exc}") from exc
        ctx.stack.resources[logical] = Resource(
            logical, kind, created.physical_id, created.attributes, props, adopted=created.adopted
        )

    @staticmethod
    def _ref(stack: Stack, name: str) -> Any:
        resource = stack.resources.get(name)
        if resource is None:
            raise TemplateError(f"stack {stack.name}: Ref to unknown or not yet created {name!r}")
        return resource.physical_id

    @staticmethod
    def _get_att(stack: Stack, logical: str, attribute: str) -> Any:
        resource = stack.resources.get(logical)
        if resource is None:
            raise TemplateError(f"stack {stack.name}: Fn::GetAtt on unknown resource {logical!r}")
        if attribute not in resource.attributes:
            raise TemplateError(
                f"stack {stack.name}: {logical} ({resource.type}) has no attribute {attribute!r} locally "
                f"(known: {sorted(resource.attributes)})"
            )
        return resource.attributes[attribute]

    def destroy(self, stack: Stack) -> None:
        """Delete a deployed stack's resources in reverse creation order (nested stacks included)."""
        self._rollback(ResourceContext(self, stack, PackagedTemplate(source=None, template={})))  # type: ignore[arg-type]

    def _rollback(self, ctx: ResourceContext) -> None:
        for logical in reversed(list(ctx.stack.resources)):
            resource = ctx.stack.resources[logical]
            if resource.adopted:
                log.info("%s/%s was there before this deploy: kept", ctx.stack.name, logical)
                continue
            try:
                HANDLERS[resource.type].delete(ctx, resource)
            except Exception as exc:  # noqa: BLE001 - rollback is best effort, and says what it could not undo
                log.warning("rollback of %s/%s failed: %s", ctx.stack.name, logical, exc)
        ctx.stack.resources.clear()
