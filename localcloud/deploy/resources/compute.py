"""IAM, Lambda and Step Functions resources."""

from __future__ import annotations

import json
import re
from typing import Any

from localcloud.deploy.engine import Created, Resource, ResourceContext, ResourceHandler, handler
from localcloud.deploy.errors import TemplateError, UnsupportedError
from localcloud.deploy.resources.storage import tags_list_to_dict


def policy_json(document: dict[str, Any]) -> str:
    """IAM accepts a document without Version (it then means 2008-10-17); moto refuses one, and SAM's
    policy templates omit it. 2012-10-17 only adds policy variables, which SAM's templates do not use."""
    return json.dumps({"Version": "2012-10-17", **document})


@handler
class Role(ResourceHandler):
    type = "AWS::IAM::Role"
    properties = frozenset(
        {
            "RoleName",
            "AssumeRolePolicyDocument",
            "Policies",
            "ManagedPolicyArns",
            "Path",
            "Description",
            "MaxSessionDuration",
            "PermissionsBoundary",
            "Tags",
        }
    )
    required = frozenset({"AssumeRolePolicyDocument"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        iam = ctx.client("iam")
        name = props.get("RoleName") or ctx.physical_name(logical, 64)
        kwargs: dict[str, Any] = {
            "RoleName": name,
            "AssumeRolePolicyDocument": json.dumps(props["AssumeRolePolicyDocument"]),
            "Path": props.get("Path", "/"),
        }
        for key in ("Description", "PermissionsBoundary", "Tags"):
            if props.get(key):
                kwargs[key] = props[key]
        if "MaxSessionDuration" in props:
            kwargs["MaxSessionDuration"] = int(props["MaxSessionDuration"])
        role = iam.create_role(**kwargs)["Role"]
        for policy in props.get("Policies", []):
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=policy_json(policy["PolicyDocument"])
            )
        for arn in props.get("ManagedPolicyArns", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return Created(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        iam = ctx.client("iam")
        for policy in resource.properties.get("Policies", []):
            iam.delete_role_policy(RoleName=resource.physical_id, PolicyName=policy["PolicyName"])
        for arn in resource.properties.get("ManagedPolicyArns", []):
            iam.detach_role_policy(RoleName=resource.physical_id, PolicyArn=arn)
        iam.delete_role(RoleName=resource.physical_id)


@handler
class Policy(ResourceHandler):
    type = "AWS::IAM::Policy"
    properties = frozenset({"PolicyName", "PolicyDocument", "Roles", "Users", "Groups"})
    required = frozenset({"PolicyName", "PolicyDocument"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        iam = ctx.client("iam")
        document = policy_json(props["PolicyDocument"])
        for role in props.get("Roles", []):
            iam.put_role_policy(RoleName=role, PolicyName=props["PolicyName"], PolicyDocument=document)
        for user in props.get("Users", []):
            iam.put_user_policy(UserName=user, PolicyName=props["PolicyName"], PolicyDocument=document)
        for group in props.get("Groups", []):
            iam.put_group_policy(GroupName=group, PolicyName=props["PolicyName"], PolicyDocument=document)
        return Created(ctx.physical_name(logical, 64))

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        iam = ctx.client("iam")
        for role in resource.properties.get("Roles", []):
            iam.delete_role_policy(RoleName=role, PolicyName=resource.properties["PolicyName"])


@handler
class ManagedPolicy(ResourceHandler):
    type = "AWS::IAM::ManagedPolicy"
    properties = frozenset({"ManagedPolicyName", "PolicyDocument", "Roles", "Users", "Groups", "Description", "Path"})
    required = frozenset({"PolicyDocument"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        iam = ctx.client("iam")
        name = props.get("ManagedPolicyName") or ctx.physical_name(logical, 128)
        arn = iam.create_policy(
            PolicyName=name,
            PolicyDocument=policy_json(props["PolicyDocument"]),
            Description=props.get("Description", ""),
            Path=props.get("Path", "/"),
        )["Policy"]["Arn"]
        for role in props.get("Roles", []):
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        for user in props.get("Users", []):
            iam.attach_user_policy(UserName=user, PolicyArn=arn)
        for group in props.get("Groups", []):
            iam.attach_group_policy(GroupName=group, PolicyArn=arn)
        return Created(arn, {"PolicyArn": arn})


@handler
class LayerVersion(ResourceHandler):
    type = "AWS::Lambda::LayerVersion"
    properties = frozenset(
        {"LayerName", "Content", "CompatibleRuntimes", "CompatibleArchitectures", "Description", "LicenseInfo"}
    )
    required = frozenset({"Content"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        kwargs: dict[str, Any] = {
            "LayerName": props.get("LayerName") or ctx.physical_name(logical, 140),
            "Content": {"S3Bucket": props["Content"]["S3Bucket"], "S3Key": props["Content"]["S3Key"]},
        }
        for key in ("CompatibleRuntimes", "CompatibleArchitectures", "Description", "LicenseInfo"):
            if key in props:
                kwargs[key] = props[key]
        arn = ctx.client("lambda").publish_layer_version(**kwargs)["LayerVersionArn"]
        return Created(arn, {"LayerVersionArn": arn})


@handler
class Function(ResourceHandler):
    type = "AWS::Lambda::Function"
    properties = frozenset(
        {
            "FunctionName",
            "Code",
            "Handler",
            "Runtime",
            "Role",
            "Environment",
            "Layers",
            "Architectures",
            "MemorySize",
            "Timeout",
            "TracingConfig",
            "Description",
            "Tags",
            "ReservedConcurrentExecutions",
            "DeadLetterConfig",
            "EphemeralStorage",
            "LoggingConfig",
            "PackageType",
        }
    )
    required = frozenset({"Code", "Role"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        client = ctx.client("lambda")
        if props.get("PackageType", "Zip") != "Zip":
            raise UnsupportedError(f"{logical}: only zip-packaged functions run locally")
        code = props["Code"]
        if "ZipFile" in code:
            raise UnsupportedError(f"{logical}: inline ZipFile code is not packaged locally; use CodeUri")
        name = props.get("FunctionName") or ctx.physical_name(logical, 64)
        kwargs: dict[str, Any] = {
            "FunctionName": name,
            "Role": props["Role"],
            "Code": {"S3Bucket": code["S3Bucket"], "S3Key": code["S3Key"]},
            "Handler": props.get("Handler"),
            "Runtime": props.get("Runtime"),
            "Publish": False,
        }
        for key in (
            "Environment",
            "Layers",
            "Architectures",
            "TracingConfig",
            "Description",
            "DeadLetterConfig",
            "EphemeralStorage",
            "LoggingConfig",
        ):
            if key in props:
                kwargs[key] = props[key]
        if "Environment" in kwargs:
            kwargs["Environment"] = {
                "Variables": {k: str(v) for k, v in props["Environment"].get("Variables", {}).items()}
            }
        for key in ("MemorySize", "Timeout"):
            if key in props:
                kwargs[key] = int(props[key])
        if props.get("Tags"):
            kwargs["Tags"] = tags_list_to_dict(props["Tags"])
        arn = client.create_function(**kwargs)["FunctionArn"]
        if "ReservedConcurrentExecutions" in props:
            client.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=int(props["ReservedConcurrentExecutions"])
            )
        return Created(name, {"Arn": arn})

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("lambda").delete_function(FunctionName=resource.physical_id)


@handler
class Permission(ResourceHandler):
    type = "AWS::Lambda::Permission"
    properties = frozenset({"Action", "FunctionName", "Principal", "SourceArn", "SourceAccount"})
    required = frozenset({"Action", "FunctionName", "Principal"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        statement_id = ctx.physical_name(logical, 100)
        kwargs = {
            "FunctionName": props["FunctionName"],
            "StatementId": statement_id,
            "Action": props["Action"],
            "Principal": props["Principal"],
        }
        for key in ("SourceArn", "SourceAccount"):
            if key in props:
                kwargs[key] = props[key]
        ctx.client("lambda").add_permission(**kwargs)
        return Created(statement_id)


@handler
class EventInvokeConfig(ResourceHandler):
    type = "AWS::Lambda::EventInvokeConfig"
    properties = frozenset(
        {"FunctionName", "Qualifier", "MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"}
    )
    required = frozenset({"FunctionName", "Qualifier"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        kwargs: dict[str, Any] = {"FunctionName": props["FunctionName"]}
        if props["Qualifier"] != "$LATEST":
            kwargs["Qualifier"] = props["Qualifier"]
        for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
            if key in props:
                kwargs[key] = int(props[key])
        if "DestinationConfig" in props:
            kwargs["DestinationConfig"] = props["DestinationConfig"]
        ctx.client("lambda").put_function_event_invoke_config(**kwargs)
        return Created(f"{props['FunctionName']}:{props['Qualifier']}")


PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def substitute(definition: str, substitutions: dict[str, Any], where: str) -> str:
    """Apply DefinitionSubstitutions as CloudFormation does; a placeholder left unfilled is an error."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in substitutions:
            raise TemplateError(f"{where}: the definition uses ${{{name}}} but DefinitionSubstitutions lacks it")
        value = substitutions[name]
        return json.dumps(value)[1:-1] if isinstance(value, str) else json.dumps(value)

    return PLACEHOLDER.sub(fill, definition)


@handler
class StateMachine(ResourceHandler):
    type = "AWS::StepFunctions::StateMachine"
    properties = frozenset(
        {
            "StateMachineName",
            "Definition",
            "DefinitionString",
            "DefinitionS3Location",
            "DefinitionSubstitutions",
            "RoleArn",
            "StateMachineType",
            "LoggingConfiguration",
            "TracingConfiguration",
            "Tags",
        }
    )
    required = frozenset({"RoleArn"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        if "Definition" in props:
            definition = json.dumps(props["Definition"])
        elif "DefinitionString" in props:
            definition = props["DefinitionString"]
        elif "DefinitionS3Location" in props:
            location = props["DefinitionS3Location"]
            definition = (
                ctx.client("s3").get_object(Bucket=location["Bucket"], Key=location["Key"])["Body"].read().decode()
            )
        else:
            raise TemplateError(
                f"{logical}: a state machine needs Definition, DefinitionString or DefinitionS3Location"
            )
        definition = substitute(definition, props.get("DefinitionSubstitutions", {}), logical)
        try:
            json.loads(definition)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"{logical}: the definition is not valid JSON after substitution: {exc}") from exc
        name = props.get("StateMachineName") or ctx.physical_name(logical, 80)
        kwargs: dict[str, Any] = {
            "name": name,
            "definition": definition,
            "roleArn": props["RoleArn"],
            "type": props.get("StateMachineType", "STANDARD"),
        }
        if "LoggingConfiguration" in props:
            kwargs["loggingConfiguration"] = _lower_first(props["LoggingConfiguration"])
        if "TracingConfiguration" in props:
            kwargs["tracingConfiguration"] = _lower_first(props["TracingConfiguration"])
        if props.get("Tags"):
            kwargs["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in props["Tags"]]
        arn = ctx.client("stepfunctions").create_state_machine(**kwargs)["stateMachineArn"]
        return Created(arn, {"Arn": arn, "Name": name})

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("stepfunctions").delete_state_machine(stateMachineArn=resource.physical_id)


def _lower_first(value: Any) -> Any:
    """CloudFormation's PascalCase keys to the Step Functions API's camelCase."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _lower_first(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_first(v) for v in value]
    return value
