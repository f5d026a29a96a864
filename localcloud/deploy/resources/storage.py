"""S3, DynamoDB, KMS and CloudWatch Logs resources."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from localcloud.deploy.engine import Created, Resource, ResourceContext, ResourceHandler, handler
from localcloud.deploy.errors import TemplateError, UnsupportedError


def tags_list_to_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def _only(props: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(props) - allowed)
    if extra:
        raise UnsupportedError(f"{where}: {extra} are not applied by the local runtime")


def _filter_rules(filter_: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    if not filter_:
        return None
    _only(filter_, {"S3Key"}, where)
    return {"Key": {"FilterRules": filter_["S3Key"]["Rules"]}}


def _lifecycle_rule(rule: dict[str, Any], where: str) -> dict[str, Any]:
    _only(
        rule,
        {"Id", "Status", "Prefix", "ExpirationInDays", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload"},
        where,
    )
    out: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return out


@handler
class Bucket(ResourceHandler):
    type = "AWS::S3::Bucket"
    properties = frozenset(
        {
            "BucketName",
            "BucketEncryption",
            "VersioningConfiguration",
            "PublicAccessBlockConfiguration",
            "NotificationConfiguration",
            "LifecycleConfiguration",
            "OwnershipControls",
            "CorsConfiguration",
            "Tags",
        }
    )

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        s3 = ctx.client("s3")
        name = props.get("BucketName") or ctx.physical_name(logical, 63, lower=True)
        kwargs: dict[str, Any] = {"Bucket": name}
        if ctx.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
        s3.create_bucket(**kwargs)
        if "BucketEncryption" in props:
            rules = []
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]:
                _only(rule, {"ServerSideEncryptionByDefault", "BucketKeyEnabled"}, f"{logical}.BucketEncryption")
                converted: dict[str, Any] = {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]
                }
                if "BucketKeyEnabled" in rule:
                    converted["BucketKeyEnabled"] = bool(rule["BucketKeyEnabled"])
                rules.append(converted)
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
            )
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        if "LifecycleConfiguration" in props:
            rules = [
                _lifecycle_rule(r, f"{logical}.LifecycleConfiguration")
                for r in props["LifecycleConfiguration"]["Rules"]
            ]
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
        if "CorsConfiguration" in props:
            rules = []
            for rule in props["CorsConfiguration"]["CorsRules"]:
                converted = {
                    k: v for k, v in rule.items() if k in {"AllowedMethods", "AllowedOrigins", "AllowedHeaders", "Id"}
                }
                if "MaxAge" in rule:
                    converted["MaxAgeSeconds"] = int(rule["MaxAge"])
                if "ExposedHeaders" in rule:
                    converted["ExposeHeaders"] = rule["ExposedHeaders"]
                rules.append(converted)
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
        if "NotificationConfiguration" in props:
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration=self._notifications(logical, props["NotificationConfiguration"])
            )
        if props.get("Tags"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": props["Tags"]})
        return Created(
            name,
            {
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
                "WebsiteURL": f"http://{name}.s3-website-{ctx.region}.amazonaws.com",
            },
        )

    @staticmethod
    def _notifications(logical: str, config: dict[str, Any]) -> dict[str, Any]:
        where = f"{logical}.NotificationConfiguration"
        _only(
            config,
            {"LambdaConfigurations", "QueueConfigurations", "TopicConfigurations", "EventBridgeConfiguration"},
            where,
        )
        out: dict[str, Any] = {}
        for cfn_key, api_key, arn_key, api_arn in (
            ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
            ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
            ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
        ):
            entries = []
            for entry in config.get(cfn_key, []):
                _only(entry, {"Event", "Filter", arn_key}, f"{where}.{cfn_key}")
                converted: dict[str, Any] = {api_arn: entry[arn_key], "Events": [entry["Event"]]}
                rules = _filter_rules(entry.get("Filter"), f"{where}.{cfn_key}.Filter")
                if rules:
                    converted["Filter"] = rules
                entries.append(converted)
            if entries:
                out[api_key] = entries
        if config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            out["EventBridgeConfiguration"] = {}
        return out

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        s3 = ctx.client("s3")
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=resource.physical_id):
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=resource.physical_id, Key=item["Key"], VersionId=item["VersionId"])
        s3.delete_bucket(Bucket=resource.physical_id)


@handler
class BucketPolicy(ResourceHandler):
    type = "AWS::S3::BucketPolicy"
    properties = frozenset({"Bucket", "PolicyDocument"})
    required = frozenset({"Bucket", "PolicyDocument"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        ctx.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"]))
        return Created(props["Bucket"])

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("s3").delete_bucket_policy(Bucket=resource.physical_id)


@handler
class Table(ResourceHandler):
    type = "AWS::DynamoDB::Table"
    properties = frozenset(
        {
            "TableName",
            "AttributeDefinitions",
            "KeySchema",
            "BillingMode",
            "ProvisionedThroughput",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "SSESpecification",
            "PointInTimeRecoverySpecification",
            "StreamSpecification",
            "TimeToLiveSpecification",
            "DeletionProtectionEnabled",
            "TableClass",
            "Tags",
        }
    )
    required = frozenset({"KeySchema", "AttributeDefinitions"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        ddb = ctx.client("dynamodb")
        name = props.get("TableName") or ctx.physical_name(logical, 255)
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        for key in ("ProvisionedThroughput", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "TableClass"):
            if key in props:
                kwargs[key] = props[key]
        for key in ("ProvisionedThroughput",):
            if key in kwargs:
                kwargs[key] = {k: int(v) for k, v in kwargs[key].items()}
        if "SSESpecification" in props:
            sse = props["SSESpecification"]
            kwargs["SSESpecification"] = {
                "Enabled": bool(sse.get("SSEEnabled")),
                **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
                **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
            }
        if "StreamSpecification" in props:
            kwargs["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": props["StreamSpecification"]["StreamViewType"],
            }
        if "DeletionProtectionEnabled" in props:
            kwargs["DeletionProtectionEnabled"] = bool(props["DeletionProtectionEnabled"])
        if props.get("Tags"):
            kwargs["Tags"] = props["Tags"]
        adopted = False
        try:
            description = ddb.create_table(**kwargs)["TableDescription"]
        except ddb.exceptions.ResourceInUseException:
            # a persistent DynamoDB (DynamoDB Local) keeps tables between runs: adopt one whose keys match
            description = ddb.describe_table(TableName=name)["Table"]
            adopted = True
            if description["KeySchema"] != props["KeySchema"]:
                raise
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
        if props.get("TimeToLiveSpecification", {}).get("Enabled") and not _ttl_on(ddb, name, props):
            ttl = props["TimeToLiveSpecification"]
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
            )
        if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            ddb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        attributes = {"Arn": description["TableArn"], "StreamArn": description.get("LatestStreamArn", "")}
        return Created(name, attributes, adopted=adopted)

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("dynamodb").delete_table(TableName=resource.physical_id)


def _ttl_on(ddb: Any, name: str, props: dict[str, Any]) -> bool:
    """Whether an adopted table (kept by a persistent DynamoDB) already expires items on the declared
    attribute: enabling it again is a ValidationException."""
    current = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    wanted = props["TimeToLiveSpecification"]["AttributeName"]
    return current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and current.get("AttributeName") == wanted


@handler
class Key(ResourceHandler):
    type = "AWS::KMS::Key"
    properties = frozenset(
        {
            "Description",
            "KeyPolicy",
            "EnableKeyRotation",
            "KeySpec",
            "KeyUsage",
            "Enabled",
            "PendingWindowInDays",
            "Tags",
        }
    )

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        kms = ctx.client("kms")
        kwargs: dict[str, Any] = {
            "Description": props.get("Description", ""),
            "KeyUsage": props.get("KeyUsage", "ENCRYPT_DECRYPT"),
            "KeySpec": props.get("KeySpec", "SYMMETRIC_DEFAULT"),
        }
        if "KeyPolicy" in props:
            kwargs["Policy"] = json.dumps(props["KeyPolicy"])
        if props.get("Tags"):
            kwargs["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props["Tags"]]
        meta = kms.create_key(**kwargs)["KeyMetadata"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        if props.get("Enabled") is False:
            kms.disable_key(KeyId=meta["KeyId"])
        return Created(meta["KeyId"], {"Arn": meta["Arn"], "KeyId": meta["KeyId"]})

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("kms").schedule_key_deletion(KeyId=resource.physical_id, PendingWindowInDays=7)


@handler
class KeyAlias(ResourceHandler):
    type = "AWS::KMS::Alias"
    properties = frozenset({"AliasName", "TargetKeyId"})
    required = properties

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        ctx.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        return Created(props["AliasName"])

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("kms").delete_alias(AliasName=resource.physical_id)


_PASSWORD_OPTIONS = frozenset(  # GenerateSecretString properties that are GetRandomPassword's parameters
    {
        "PasswordLength",
        "ExcludeCharacters",
        "ExcludeNumbers",
        "ExcludePunctuation",
        "ExcludeUppercase",
        "ExcludeLowercase",
        "IncludeSpace",
        "RequireEachIncludedType",
    }
)


@handler
class Secret(ResourceHandler):
    """AWS::SecretsManager::Secret: a given SecretString, or one generated as CloudFormation does
    (GetRandomPassword with the GenerateSecretString options; with SecretStringTemplate and
    GenerateStringKey, the template's JSON with the password under that key). Ref is the ARN."""

    type = "AWS::SecretsManager::Secret"
    properties = frozenset({"Name", "Description", "SecretString", "GenerateSecretString", "KmsKeyId", "Tags"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        sm = ctx.client("secretsmanager")
        if ("SecretString" in props) == ("GenerateSecretString" in props):
            raise TemplateError(f"{logical}: give exactly one of SecretString and GenerateSecretString")
        value = props.get("SecretString")
        if value is None:
            generate = props["GenerateSecretString"]
            _only(generate, {*_PASSWORD_OPTIONS, "SecretStringTemplate", "GenerateStringKey"}, logical)
            options = {k: v for k, v in generate.items() if k in _PASSWORD_OPTIONS}
            options["PasswordLength"] = int(options.get("PasswordLength", 32))
            password = sm.get_random_password(**options)["RandomPassword"]
            if "SecretStringTemplate" in generate:
                document = json.loads(generate["SecretStringTemplate"])
                document[generate["GenerateStringKey"]] = password
                value = json.dumps(document)
            else:
                value = password
        kwargs: dict[str, Any] = {"Name": props.get("Name") or ctx.physical_name(logical, 512), "SecretString": value}
        for key in ("Description", "KmsKeyId", "Tags"):
            if key in props:
                kwargs[key] = props[key]
        arn = sm.create_secret(**kwargs)["ARN"]
        return Created(arn, {"Id": arn})

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("secretsmanager").delete_secret(SecretId=resource.physical_id, ForceDeleteWithoutRecovery=True)


@handler
class LogGroup(ResourceHandler):
    type = "AWS::Logs::LogGroup"
    properties = frozenset({"LogGroupName", "RetentionInDays", "KmsKeyId", "Tags"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        logs = ctx.client("logs")
        name = props.get("LogGroupName") or ctx.physical_name(logical, 512)
        kwargs: dict[str, Any] = {"logGroupName": name}
        if "KmsKeyId" in props:
            kwargs["kmsKeyId"] = props["KmsKeyId"]
        if props.get("Tags"):
            kwargs["tags"] = tags_list_to_dict(props["Tags"])
        # a function that already ran created its group, as on AWS
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(**kwargs)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        return Created(name, {"Arn": ctx.arn("logs", f"log-group:{name}:*")})

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("logs").delete_log_group(logGroupName=resource.physical_id)
