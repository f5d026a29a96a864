"""Fidelity: deploy the whole template locally, then read every declared resource back through the
AWS APIs and compare it with what the template asked for. A property the local deployment lost
would show up here as a difference; a resource type without a check here fails the test."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lepton_stack import denied, role_documents

from localcloud.deploy.engine import Resource, Stack
from localcloud.deploy.resources.apigateway import routes_of

ROOT = Path(__file__).resolve().parents[2]
Checker = Callable[[Any, Resource, Stack], None]
CHECKS: dict[str, Checker] = {}


def check(kind: str) -> Callable[[Checker], Checker]:
    def register(fn: Checker) -> Checker:
        CHECKS[kind] = fn
        return fn

    return register


@pytest.fixture(scope="module")
def deployed(cloud):
    return cloud.deploy(ROOT / "template.yaml", "lepton-fidelity", {"Stage": "fidelity"})


def test_every_declared_resource_is_deployed(deployed, transformed):
    declared = set()
    for prefix, stack in deployed.walk():
        for logical, resource in stack.template["Resources"].items():
            if stack.conditions.get(resource.get("Condition"), True):
                declared.add(prefix + logical)
    assert declared == {path for path, _ in deployed.all_resources()}
    # the transform the deployment used is the one `make lint` checks: same resources, apart from the
    # names SAM derives from parameter values (layer versions) and resources behind false conditions
    rendered = {logical for template in transformed.values() for logical in template["Resources"]}
    assert {p.rsplit("/", 1)[-1] for p in declared if "SharedLayer" not in p} <= rendered


def test_every_resource_matches_its_template(cloud, deployed):
    missing_checks = sorted({r.type for _, r in deployed.all_resources()} - set(CHECKS))
    assert missing_checks == [], f"no fidelity check for {missing_checks}"
    checked = 0
    for path, resource in deployed.all_resources():
        stack = next(s for prefix, s in deployed.walk() if path == prefix + resource.logical_id)
        CHECKS[resource.type](cloud, resource, stack)
        checked += 1
    assert checked >= 40


def test_outputs_name_real_resources(cloud, deployed):
    outputs = deployed.outputs
    cloud.client("s3").head_bucket(Bucket=outputs["DataBucketName"])
    cloud.client("dynamodb").describe_table(TableName=outputs["RegistryTableName"])
    cloud.client("events").describe_event_bus(Name=outputs["EventBusName"])
    cloud.client("stepfunctions").describe_state_machine(stateMachineArn=outputs["LifecycleStateMachineArn"])
    cloud.client("sns").get_topic_attributes(TopicArn=outputs["AlertsTopicArn"])
    assert outputs["ApiUrl"].startswith(f"https://{outputs['ApiId']}.execute-api.us-east-1.amazonaws.com/")


ASYNC_INVOKERS = {"s3.amazonaws.com", "events.amazonaws.com", "sns.amazonaws.com"}


def test_every_function_invoked_asynchronously_keeps_the_events_it_fails(cloud, deployed):
    """S3 and EventBridge invoke a function asynchronously: after Lambda's retries an event that still
    fails is gone unless the function's event invoke configuration names an on-failure destination.
    Each such function has an encrypted SQS queue there that keeps records 14 days, its role may send
    to that queue, and an alarm on the queue's depth tells the alerts topic."""
    lam, sqs, cloudwatch = cloud.client("lambda"), cloud.client("sqs"), cloud.client("cloudwatch")
    functions = {
        r.properties["FunctionName"]
        for _, r in deployed.all_resources()
        if r.type == "AWS::Lambda::Permission" and r.properties["Principal"] in ASYNC_INVOKERS
    }
    names = sorted(lam.get_function_configuration(FunctionName=f)["FunctionName"] for f in functions)
    assert sorted(re.sub(r"-[0-9A-F]+$", "", n).rsplit("-", 1)[-1] for n in names) == [
        "AlertsFunction",
        "ExecutionEndedFunction",
        "IngestFunction",
    ]
    alarms = cloudwatch.describe_alarms()["MetricAlarms"]
    for name in names:
        config = lam.get_function_event_invoke_config(FunctionName=name)
        assert config["MaximumRetryAttempts"] == 2
        queue_arn = config["DestinationConfig"]["OnFailure"]["Destination"]
        queue = queue_arn.rsplit(":", 1)[-1]
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert (attributes["SqsManagedSseEnabled"], attributes["MessageRetentionPeriod"]) == ("true", "1209600")
        role = lam.get_function_configuration(FunctionName=name)["Role"]
        assert denied(role_documents(cloud, role), [("sqs:SendMessage", queue_arn)]) == []
        watching = [
            a
            for a in alarms
            if (a["Namespace"], a["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
            and a["Dimensions"] == [{"Name": "QueueName", "Value": queue}]
        ]
        assert len(watching) == 1, queue
        assert watching[0]["AlarmActions"] == [deployed.outputs["AlertsTopicArn"]]
        assert (watching[0]["ComparisonOperator"], watching[0]["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1.0)


# -- storage ----------------------------------------------------------------------------------------


@check("AWS::S3::Bucket")
def _bucket(cloud: Any, r: Resource, _: Stack) -> None:
    s3, p, name = cloud.client("s3"), r.properties, r.physical_id
    if "BucketEncryption" in p:
        rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
        wanted = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ApplyServerSideEncryptionByDefault"] == wanted["ServerSideEncryptionByDefault"]
        assert rule.get("BucketKeyEnabled", False) == wanted.get("BucketKeyEnabled", False)
    if "VersioningConfiguration" in p:
        assert s3.get_bucket_versioning(Bucket=name)["Status"] == p["VersioningConfiguration"]["Status"]
    if "PublicAccessBlockConfiguration" in p:
        live = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        assert live == p["PublicAccessBlockConfiguration"]
    if "OwnershipControls" in p:
        assert s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"] == p["OwnershipControls"]
    if "LifecycleConfiguration" in p:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        assert sorted(x["ID"] for x in rules) == sorted(x["Id"] for x in p["LifecycleConfiguration"]["Rules"])
    notifications = s3.get_bucket_notification_configuration(Bucket=name)
    wanted_lambdas = p.get("NotificationConfiguration", {}).get("LambdaConfigurations", [])
    live_lambdas = notifications.get("LambdaFunctionConfigurations", [])
    assert len(live_lambdas) == len(wanted_lambdas)
    for live, wanted in zip(live_lambdas, wanted_lambdas, strict=True):
        assert live["LambdaFunctionArn"] == wanted["Function"]
        assert live["Events"] == [wanted["Event"]]
        assert live["Filter"]["Key"]["FilterRules"] == wanted["Filter"]["S3Key"]["Rules"]


@check("AWS::S3::BucketPolicy")
def _bucket_policy(cloud: Any, r: Resource, _: Stack) -> None:
    live = json.loads(cloud.client("s3").get_bucket_policy(Bucket=r.properties["Bucket"])["Policy"])
    assert live == r.properties["PolicyDocument"]


@check("AWS::DynamoDB::Table")
def _table(cloud: Any, r: Resource, _: Stack) -> None:
    ddb, p = cloud.client("dynamodb"), r.properties
    table = ddb.describe_table(TableName=r.physical_id)["Table"]
    assert table["KeySchema"] == p["KeySchema"]
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        (a["AttributeName"], a["AttributeType"]) for a in p["AttributeDefinitions"]
    }
    assert table["BillingModeSummary"]["BillingMode"] == p.get("BillingMode", "PROVISIONED")
    live_gsis = {g["IndexName"]: g for g in table.get("GlobalSecondaryIndexes", [])}
    assert set(live_gsis) == {g["IndexName"] for g in p.get("GlobalSecondaryIndexes", [])}
    for gsi in p.get("GlobalSecondaryIndexes", []):
        assert live_gsis[gsi["IndexName"]]["KeySchema"] == gsi["KeySchema"]
        assert live_gsis[gsi["IndexName"]]["Projection"] == gsi["Projection"]
    if p.get("SSESpecification", {}).get("SSEEnabled"):
        assert table["SSEDescription"]["Status"] == "ENABLED"
    pitr = ddb.describe_continuous_backups(TableName=r.physical_id)["ContinuousBackupsDescription"]
    wanted = p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled", False)
    assert (pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED") == wanted
    if "TimeToLiveSpecification" in p:
        ttl = ddb.describe_time_to_live(TableName=r.physical_id)["TimeToLiveDescription"]
        assert ttl["AttributeName"] == p["TimeToLiveSpecification"]["AttributeName"]
        assert ttl["TimeToLiveStatus"] == "ENABLED"


@check("AWS::KMS::Key")
def _key(cloud: Any, r: Resource, _: Stack) -> None:
    kms = cloud.client("kms")
    assert kms.describe_key(KeyId=r.physical_id)["KeyMetadata"]["Enabled"] is True
    assert kms.get_key_rotation_status(KeyId=r.physical_id)["KeyRotationEnabled"] == bool(
        r.properties.get("EnableKeyRotation")
    )
    assert (
        json.loads(kms.get_key_policy(KeyId=r.physical_id, PolicyName="default")["Policy"]) == r.properties["KeyPolicy"]
    )


@check("AWS::SecretsManager::Secret")
def _secret(cloud: Any, r: Resource, _: Stack) -> None:
    sm, p = cloud.client("secretsmanager"), r.properties
    described = sm.describe_secret(SecretId=r.physical_id)
    assert described.get("Description", "") == p.get("Description", "")
    value = sm.get_secret_value(SecretId=r.physical_id)["SecretString"]
    generate = p.get("GenerateSecretString")
    if generate is None:
        assert value == p["SecretString"]
        return
    assert "SecretStringTemplate" not in generate  # checked as a plain generated string below
    assert len(value) == int(generate.get("PasswordLength", 32))
    if generate.get("ExcludePunctuation"):
        assert value.isalnum(), "punctuation in a secret generated without it"


@check("AWS::KMS::Alias")
def _alias(cloud: Any, r: Resource, _: Stack) -> None:
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in cloud.client("kms").list_aliases()["Aliases"]}
    assert aliases[r.properties["AliasName"]] == r.properties["TargetKeyId"]


@check("AWS::Logs::LogGroup")
def _log_group(cloud: Any, r: Resource, _: Stack) -> None:
    groups = cloud.client("logs").describe_log_groups(logGroupNamePrefix=r.physical_id)["logGroups"]
    group = next(g for g in groups if g["logGroupName"] == r.physical_id)
    assert group.get("retentionInDays") == r.properties.get("RetentionInDays")


# -- compute ----------------------------------------------------------------------------------------


@check("AWS::IAM::Role")
def _role(cloud: Any, r: Resource, _: Stack) -> None:
    iam, p = cloud.client("iam"), r.properties
    role = iam.get_role(RoleName=r.physical_id)["Role"]
    assert role["AssumeRolePolicyDocument"] == p["AssumeRolePolicyDocument"]
    inline = iam.list_role_policies(RoleName=r.physical_id)["PolicyNames"]
    assert sorted(inline) == sorted(x["PolicyName"] for x in p.get("Policies", []))
    for policy in p.get("Policies", []):
        live = iam.get_role_policy(RoleName=r.physical_id, PolicyName=policy["PolicyName"])["PolicyDocument"]
        assert live["Statement"] == policy["PolicyDocument"]["Statement"]
    attached = iam.list_attached_role_policies(RoleName=r.physical_id)["AttachedPolicies"]
    assert sorted(a["PolicyArn"] for a in attached) == sorted(p.get("ManagedPolicyArns", []))


@check("AWS::Lambda::LayerVersion")
def _layer(cloud: Any, r: Resource, _: Stack) -> None:
    name, version = r.physical_id.split(":")[-2:]
    layer = cloud.client("lambda").get_layer_version(LayerName=name, VersionNumber=int(version))
    assert layer["CompatibleRuntimes"] == r.properties["CompatibleRuntimes"]
    assert layer["Content"]["CodeSize"] > 0


@check("AWS::Lambda::Function")
def _function(cloud: Any, r: Resource, _: Stack) -> None:
    client, p = cloud.client("lambda"), r.properties
    config = client.get_function_configuration(FunctionName=r.physical_id)
    assert config["Handler"] == p["Handler"]
    assert config["Runtime"] == p["Runtime"]
    assert config["Role"] == p["Role"]
    assert config["Environment"]["Variables"] == {k: str(v) for k, v in p["Environment"]["Variables"].items()}
    assert [layer["Arn"] for layer in config["Layers"]] == p["Layers"]
    assert config["Architectures"] == p["Architectures"]
    assert config["MemorySize"] == int(p["MemorySize"])
    assert config["Timeout"] == int(p["Timeout"])
    assert config["TracingConfig"]["Mode"] == p["TracingConfig"]["Mode"]
    if "ReservedConcurrentExecutions" in p:
        concurrency = client.get_function_concurrency(FunctionName=r.physical_id)["ReservedConcurrentExecutions"]
        assert concurrency == int(p["ReservedConcurrentExecutions"])


@check("AWS::Lambda::EventInvokeConfig")
def _event_invoke_config(cloud: Any, r: Resource, _: Stack) -> None:
    p = r.properties
    config = cloud.client("lambda").get_function_event_invoke_config(FunctionName=p["FunctionName"])
    if "MaximumRetryAttempts" in p:
        assert config["MaximumRetryAttempts"] == int(p["MaximumRetryAttempts"])
    for outcome, destination in p.get("DestinationConfig", {}).items():
        assert config["DestinationConfig"][outcome]["Destination"] == destination["Destination"]


@check("AWS::Lambda::Permission")
def _permission(cloud: Any, r: Resource, _: Stack) -> None:
    policy = json.loads(cloud.client("lambda").get_policy(FunctionName=r.properties["FunctionName"])["Policy"])
    statement = next(s for s in policy["Statement"] if s["Sid"] == r.physical_id)
    assert statement["Action"] == r.properties["Action"]
    assert r.properties["Principal"] in json.dumps(statement["Principal"])


@check("AWS::StepFunctions::StateMachine")
def _state_machine(cloud: Any, r: Resource, stack: Stack) -> None:
    p = r.properties
    described = cloud.client("stepfunctions").describe_state_machine(stateMachineArn=r.physical_id)
    assert described["roleArn"] == p["RoleArn"]
    assert described["type"] == p.get("StateMachineType", "STANDARD")
    # recompute the definition from the file in the repository and the resolved substitutions
    sam = stack.sam_template["Resources"][r.logical_id]["Properties"]
    source = Path(_definition_source(sam))
    subs = p.get("DefinitionSubstitutions", {})
    expected = re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: str(subs[m.group(1)]), source.read_text())
    assert json.loads(described["definition"]) == json.loads(expected)
    assert "${" not in described["definition"]
    if "LoggingConfiguration" in p:
        assert described["loggingConfiguration"]["level"] == p["LoggingConfiguration"]["Level"]
    if "TracingConfiguration" in p:
        assert described["tracingConfiguration"]["enabled"] == p["TracingConfiguration"]["Enabled"]


def _definition_source(sam_props: dict[str, Any]) -> str:
    """The repository file whose content was packaged: artifacts are named by their sha256."""
    import hashlib

    key = sam_props["DefinitionUri"]["Key"]
    for path in (ROOT / "stacks" / "statemachines").glob("*.asl.json"):
        if hashlib.sha256(path.read_bytes()).hexdigest() in key:
            return str(path)
    raise AssertionError(f"no definition in the repository matches {key}")


# -- messaging --------------------------------------------------------------------------------------


@check("AWS::Events::EventBus")
def _bus(cloud: Any, r: Resource, _: Stack) -> None:
    assert cloud.client("events").describe_event_bus(Name=r.physical_id)["Name"] == r.properties["Name"]


@check("AWS::Events::Rule")
def _rule(cloud: Any, r: Resource, _: Stack) -> None:
    events, p = cloud.client("events"), r.properties
    bus, _, name = r.physical_id.rpartition("|")
    bus = bus or "default"
    rule = events.describe_rule(Name=name, EventBusName=bus)
    assert json.loads(rule["EventPattern"]) == p["EventPattern"]
    assert rule["State"] == p.get("State", "ENABLED")
    targets = events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]
    assert sorted(t["Arn"] for t in targets) == sorted(t["Arn"] for t in p["Targets"])


@check("AWS::SNS::Topic")
def _topic(cloud: Any, r: Resource, _: Stack) -> None:
    attributes = cloud.client("sns").get_topic_attributes(TopicArn=r.physical_id)["Attributes"]
    assert attributes.get("KmsMasterKeyId") == r.properties.get("KmsMasterKeyId")
    assert attributes.get("DisplayName") == r.properties.get("DisplayName")


@check("AWS::SQS::Queue")
def _queue(cloud: Any, r: Resource, _: Stack) -> None:
    p = r.properties
    attributes = cloud.client("sqs").get_queue_attributes(QueueUrl=r.physical_id, AttributeNames=["All"])["Attributes"]
    if "QueueName" in p:
        assert attributes["QueueArn"].rsplit(":", 1)[-1] == p["QueueName"]
    for key in ("SqsManagedSseEnabled", "MessageRetentionPeriod"):
        if key in p:
            assert attributes[key] == str(p[key]).lower(), key


@check("AWS::CloudWatch::Alarm")
def _alarm(cloud: Any, r: Resource, _: Stack) -> None:
    p = r.properties
    alarm = cloud.client("cloudwatch").describe_alarms(AlarmNames=[r.physical_id])["MetricAlarms"][0]
    for key in ("Namespace", "MetricName", "Statistic", "ComparisonOperator", "TreatMissingData"):
        assert alarm[key] == p[key], key
    assert alarm["Dimensions"] == p["Dimensions"]
    assert alarm["Threshold"] == float(p["Threshold"])
    assert alarm["Period"] == int(p["Period"])
    assert alarm["EvaluationPeriods"] == int(p["EvaluationPeriods"])
    assert alarm["AlarmActions"] == p.get("AlarmActions", [])


# -- API --------------------------------------------------------------------------------------------


@check("AWS::ApiGateway::RestApi")
def _rest_api(cloud: Any, r: Resource, _: Stack) -> None:
    live = cloud.client("apigateway").get_resources(restApiId=r.physical_id, embed=["methods"])["items"]
    by_path = {item["path"]: item for item in live}
    routes = routes_of(r.properties["Body"])
    assert routes
    for route in routes:
        method = by_path[route.path]["resourceMethods"][route.method]
        assert method["authorizationType"] == route.authorization
        assert method["methodIntegration"]["type"] == "AWS_PROXY"
        assert method["methodIntegration"]["uri"] == route.integration_uri


@check("AWS::ApiGateway::Deployment")
def _deployment(cloud: Any, r: Resource, _: Stack) -> None:
    cloud.client("apigateway").get_deployment(restApiId=r.properties["RestApiId"], deploymentId=r.physical_id)


@check("AWS::ApiGateway::Stage")
def _stage(cloud: Any, r: Resource, _: Stack) -> None:
    p = r.properties
    stage = cloud.client("apigateway").get_stage(restApiId=p["RestApiId"], stageName=p["StageName"])
    assert stage["deploymentId"] == p["DeploymentId"]
    assert stage.get("tracingEnabled", False) == bool(p.get("TracingEnabled", False))
    for setting in p.get("MethodSettings", []):
        live = stage["methodSettings"]["*/*"]
        assert live["throttlingRateLimit"] == float(setting["ThrottlingRateLimit"])
        assert live["throttlingBurstLimit"] == int(setting["ThrottlingBurstLimit"])
        assert live["metricsEnabled"] == bool(setting["MetricsEnabled"])


@check("AWS::CloudFormation::Stack")
def _nested(cloud: Any, r: Resource, stack: Stack) -> None:
    child = stack.nested[r.logical_id]
    assert child.stack_id == r.physical_id
    assert child.resources
