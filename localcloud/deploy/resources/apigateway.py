"""API Gateway REST API resources (from a SAM-generated OpenAPI Body) and nested stacks.

moto's import of an API definition accepts OpenAPI 3 only and ignores `security`, so a SAM API
(Swagger 2.0 with AWS_IAM auth) would lose its routes' authorisation. The Body is applied here
through the public API instead: one resource per path, one method per operation with its
authorizationType, and its Lambda proxy integration. Anything the local front door could not
honour (custom authorizers, non-proxy integrations) stops the deployment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localcloud.deploy.engine import Created, Resource, ResourceContext, ResourceHandler, handler
from localcloud.deploy.errors import TemplateError, UnsupportedError

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "x-amazon-apigateway-any-method"}
DOC_KEYS = {
    "responses",
    "parameters",
    "summary",
    "description",
    "operationId",
    "produces",
    "consumes",
    "tags",
    "requestBody",
}
TOP_KEYS = {
    "swagger",
    "openapi",
    "info",
    "paths",
    "securityDefinitions",
    "components",
    "definitions",
    "basePath",
    "schemes",
    "host",
    "x-amazon-apigateway-binary-media-types",
}


@dataclass(frozen=True)
class Route:
    path: str
    method: str  # GET, POST, ..., ANY
    authorization: str  # NONE or AWS_IAM
    api_key_required: bool
    integration_type: str
    integration_uri: str
    credentials: str | None


def routes_of(body: dict[str, Any], where: str = "RestApi") -> list[Route]:
    """The routes an API definition declares, with the auth API Gateway enforces for each."""
    extra = sorted(k for k in body if k not in TOP_KEYS)
    if extra:
        raise UnsupportedError(f"{where}: API definition keys {extra} are not applied locally")
    schemes = dict(body.get("securityDefinitions", {}))
    schemes.update(body.get("components", {}).get("securitySchemes", {}))
    default_security = body.get("security", [])
    routes = []
    for path, operations in body.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                raise UnsupportedError(f"{where}: {path} has {method!r}, which is not applied locally")
            unknown = sorted(
                k for k in operation if k not in DOC_KEYS | {"security", "x-amazon-apigateway-integration"}
            )
            if unknown:
                raise UnsupportedError(f"{where}: {method.upper()} {path} sets {unknown}, not applied locally")
            auth, api_key = "NONE", False
            for requirement in operation.get("security", default_security):
                for scheme_name in requirement:
                    scheme = schemes.get(scheme_name)
                    if scheme is None:
                        raise TemplateError(f"{where}: {path} uses undeclared security scheme {scheme_name!r}")
                    if scheme.get("x-amazon-apigateway-authtype") == "awsSigv4":
                        auth = "AWS_IAM"
                    elif scheme.get("type") == "apiKey" and scheme.get("name", "").lower() == "x-api-key":
                        api_key = True
                    else:
                        raise UnsupportedError(f"{where}: security scheme {scheme_name!r} is not enforced locally")
            integration = operation.get("x-amazon-apigateway-integration")
            if integration is None:
                raise UnsupportedError(f"{where}: {method.upper()} {path} has no integration")
            if integration.get("type", "").lower() != "aws_proxy":
                raise UnsupportedError(f"{where}: {path}: only Lambda proxy integrations run locally")
            name = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
            routes.append(
                Route(path, name, auth, api_key, "AWS_PROXY", integration["uri"], integration.get("credentials"))
            )
    return routes


@handler
class RestApi(ResourceHandler):
    type = "AWS::ApiGateway::RestApi"
    properties = frozenset({"Name", "Body", "Description", "EndpointConfiguration", "BinaryMediaTypes", "Tags"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        client = ctx.client("apigateway")
        body = props.get("Body", {})
        name = props.get("Name") or body.get("info", {}).get("title") or logical
        kwargs: dict[str, Any] = {"name": str(name)}
        if "Description" in props:
            kwargs["description"] = props["Description"]
        if "EndpointConfiguration" in props:
            kwargs["endpointConfiguration"] = {"types": props["EndpointConfiguration"].get("Types", ["EDGE"])}
        media = props.get("BinaryMediaTypes") or body.get("x-amazon-apigateway-binary-media-types")
        if media:
            kwargs["binaryMediaTypes"] = media
        if props.get("Tags"):
            kwargs["tags"] = {t["Key"]: t["Value"] for t in props["Tags"]}
        api = client.create_rest_api(**kwargs)
        api_id = api["id"]
        root = next(r for r in client.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
        ids = {"/": root["id"]}
        for route in routes_of(body, logical):
            resource_id = self._resource(client, api_id, ids, route.path)
            client.put_method(
                restApiId=api_id,
                resourceId=resource_id,
                httpMethod=route.method,
                authorizationType=route.authorization,
                apiKeyRequired=route.api_key_required,
            )
            integration: dict[str, Any] = {
                "restApiId": api_id,
                "resourceId": resource_id,
                "httpMethod": route.method,
                "type": route.integration_type,
                "integrationHttpMethod": "POST",
                "uri": route.integration_uri,
            }
            if route.credentials:
                integration["credentials"] = route.credentials
            client.put_integration(**integration)
        return Created(api_id, {"RootResourceId": root["id"], "RestApiId": api_id})

    @staticmethod
    def _resource(client: Any, api_id: str, ids: dict[str, str], path: str) -> str:
        current = ""
        for part in [p for p in path.split("/") if p]:
            parent = ids[current or "/"]
            current = f"{current}/{part}"
            if current not in ids:
                ids[current] = client.create_resource(restApiId=api_id, parentId=parent, pathPart=part)["id"]
        return ids[current or "/"]

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("apigateway").delete_rest_api(restApiId=resource.physical_id)


@handler
class Deployment(ResourceHandler):
    type = "AWS::ApiGateway::Deployment"
    properties = frozenset({"RestApiId", "Description", "StageName"})
    required = frozenset({"RestApiId"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        kwargs = {"restApiId": props["RestApiId"], "description": props.get("Description", "")}
        if props.get("StageName"):
            kwargs["stageName"] = props["StageName"]
        deployment = ctx.client("apigateway").create_deployment(**kwargs)
        return Created(deployment["id"], {"DeploymentId": deployment["id"]})


@handler
class Stage(ResourceHandler):
    type = "AWS::ApiGateway::Stage"
    properties = frozenset(
        {
            "RestApiId",
            "DeploymentId",
            "StageName",
            "Description",
            "Variables",
            "MethodSettings",
            "TracingEnabled",
            "AccessLogSetting",
            "CacheClusterEnabled",
            "Tags",
        }
    )
    required = frozenset({"RestApiId", "StageName"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        client = ctx.client("apigateway")
        kwargs: dict[str, Any] = {
            "restApiId": props["RestApiId"],
            "stageName": props["StageName"],
            "deploymentId": props.get("DeploymentId", ""),
        }
        if "Description" in props:
            kwargs["description"] = props["Description"]
        if "Variables" in props:
            kwargs["variables"] = props["Variables"]
        if "TracingEnabled" in props:
            kwargs["tracingEnabled"] = bool(props["TracingEnabled"])
        if "CacheClusterEnabled" in props:
            kwargs["cacheClusterEnabled"] = bool(props["CacheClusterEnabled"])
        if props.get("Tags"):
            kwargs["tags"] = {t["Key"]: t["Value"] for t in props["Tags"]}
        client.create_stage(**kwargs)
        operations = []
        for setting in props.get("MethodSettings", []):
            resource_path = setting.get("ResourcePath", "/*")
            resource_part = "*" if resource_path == "/*" else resource_path.replace("/", "~1")
            prefix = f"/{resource_part}/{setting.get('HttpMethod', '*')}"
            mapping = {
                "ThrottlingBurstLimit": "throttling/burstLimit",
                "ThrottlingRateLimit": "throttling/rateLimit",
                "MetricsEnabled": "metrics/enabled",
                "LoggingLevel": "logging/loglevel",
                "DataTraceEnabled": "logging/dataTrace",
                "CachingEnabled": "caching/enabled",
            }
            for key, value in setting.items():
                if key in ("ResourcePath", "HttpMethod"):
                    continue
                if key not in mapping:
                    raise UnsupportedError(f"{logical}: MethodSettings.{key} is not applied locally")
                operations.append(
                    {
                        "op": "replace",
                        "path": f"{prefix}/{mapping[key]}",
                        "value": str(value).lower() if isinstance(value, bool) else str(value),
                    }
                )
        if "AccessLogSetting" in props:
            for key, api_key in (("DestinationArn", "destinationArn"), ("Format", "format")):
                if key in props["AccessLogSetting"]:
                    operations.append(
                        {
                            "op": "replace",
                            "path": f"/accessLogSettings/{api_key}",
                            "value": props["AccessLogSetting"][key],
                        }
                    )
        if operations:
            client.update_stage(restApiId=props["RestApiId"], stageName=props["StageName"], patchOperations=operations)
        return Created(props["StageName"])


@handler
class NestedStack(ResourceHandler):
    type = "AWS::CloudFormation::Stack"
    properties = frozenset({"TemplateURL", "Parameters", "Tags", "TimeoutInMinutes"})
    required = frozenset({"TemplateURL"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        child = ctx.packaged.nested.get(props["TemplateURL"])
        if child is None:
            raise TemplateError(f"{logical}: {props['TemplateURL']} was not packaged from a local template")
        name = f"{ctx.stack.name}-{logical}"
        parameters = {k: ",".join(v) if isinstance(v, list) else v for k, v in props.get("Parameters", {}).items()}
        stack = ctx.provisioner.deploy(child, name, parameters)
        ctx.stack.nested[logical] = stack
        return Created(stack.stack_id, {f"Outputs.{k}": v for k, v in stack.outputs.items()})

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        stack = ctx.stack.nested.pop(resource.logical_id, None)
        if stack is not None:
            ctx.provisioner.destroy(stack)
