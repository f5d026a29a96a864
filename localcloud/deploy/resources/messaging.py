"""EventBridge, SNS, SQS and CloudWatch alarm resources."""

from __future__ import annotations

import json
from typing import Any

from localcloud.deploy.engine import Created, Resource, ResourceContext, ResourceHandler, handler
from localcloud.deploy.resources.storage import _only

TARGET_KEYS = {
    "Id",
    "Arn",
    "Input",
    "InputPath",
    "InputTransformer",
    "RoleArn",
    "RetryPolicy",
    "DeadLetterConfig",
    "SqsParameters",
}


@handler
class EventBus(ResourceHandler):
    type = "AWS::Events::EventBus"
    properties = frozenset({"Name", "Description", "Tags"})
    required = frozenset({"Name"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        kwargs: dict[str, Any] = {"Name": props["Name"]}
        if props.get("Description"):
            kwargs["Description"] = props["Description"]
        if props.get("Tags"):
            kwargs["Tags"] = props["Tags"]
        arn = ctx.client("events").create_event_bus(**kwargs)["EventBusArn"]
        return Created(props["Name"], {"Arn": arn, "Name": props["Name"]})

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("events").delete_event_bus(Name=resource.physical_id)


@handler
class Rule(ResourceHandler):
    type = "AWS::Events::Rule"
    properties = frozenset(
        {"Name", "Description", "EventBusName", "EventPattern", "ScheduleExpression", "State", "Targets", "RoleArn"}
    )

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        events = ctx.client("events")
        name = props.get("Name") or ctx.physical_name(logical, 64)
        bus = props.get("EventBusName", "default")
        if bus.startswith("arn:"):
            bus = bus.split("/", 1)[1]
        kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            pattern = props["EventPattern"]
            kwargs["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        for key in ("ScheduleExpression", "Description", "RoleArn"):
            if key in props:
                kwargs[key] = props[key]
        arn = events.put_rule(**kwargs)["RuleArn"]
        targets = []
        for target in props.get("Targets", []):
            _only(target, TARGET_KEYS, f"{logical}.Targets")
            targets.append(target)
        if targets:
            response = events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"targets refused: {response['FailedEntries']}")
        physical = name if bus == "default" else f"{bus}|{name}"
        return Created(physical, {"Arn": arn})

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        events = ctx.client("events")
        bus, _, name = resource.physical_id.rpartition("|")
        bus = bus or "default"
        ids = [t["Id"] for t in resource.properties.get("Targets", [])]
        if ids:
            events.remove_targets(Rule=name, EventBusName=bus, Ids=ids)
        events.delete_rule(Name=name, EventBusName=bus)


@handler
class Topic(ResourceHandler):
    type = "AWS::SNS::Topic"
    properties = frozenset({"TopicName", "DisplayName", "KmsMasterKeyId", "Subscription", "FifoTopic", "Tags"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        sns = ctx.client("sns")
        name = props.get("TopicName") or ctx.physical_name(logical, 256)
        attributes = {}
        if "DisplayName" in props:
            attributes["DisplayName"] = props["DisplayName"]
        if "KmsMasterKeyId" in props:
            attributes["KmsMasterKeyId"] = props["KmsMasterKeyId"]
        if props.get("FifoTopic"):
            attributes["FifoTopic"] = "true"
        kwargs: dict[str, Any] = {"Name": name, "Attributes": attributes}
        if props.get("Tags"):
            kwargs["Tags"] = props["Tags"]
        arn = sns.create_topic(**kwargs)["TopicArn"]
        for sub in props.get("Subscription", []):
            sns.subscribe(TopicArn=arn, Protocol=sub["Protocol"], Endpoint=sub["Endpoint"])
        return Created(arn, {"TopicArn": arn, "TopicName": name})

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("sns").delete_topic(TopicArn=resource.physical_id)


@handler
class Subscription(ResourceHandler):
    type = "AWS::SNS::Subscription"
    properties = frozenset({"TopicArn", "Protocol", "Endpoint", "FilterPolicy", "RawMessageDelivery"})
    required = frozenset({"TopicArn", "Protocol"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        attributes = {}
        if "FilterPolicy" in props:
            attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
        if "RawMessageDelivery" in props:
            attributes["RawMessageDelivery"] = str(props["RawMessageDelivery"]).lower()
        arn = ctx.client("sns").subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props.get("Endpoint", ""),
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return Created(arn)


@handler
class TopicPolicy(ResourceHandler):
    type = "AWS::SNS::TopicPolicy"
    properties = frozenset({"Topics", "PolicyDocument"})
    required = properties

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        for topic in props["Topics"]:
            ctx.client("sns").set_topic_attributes(
                TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
            )
        return Created(ctx.physical_name(logical))


@handler
class Queue(ResourceHandler):
    type = "AWS::SQS::Queue"
    properties = frozenset(
        {
            "QueueName",
            "KmsMasterKeyId",
            "SqsManagedSseEnabled",
            "MessageRetentionPeriod",
            "VisibilityTimeout",
            "RedrivePolicy",
            "FifoQueue",
            "ContentBasedDeduplication",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
            "Tags",
        }
    )

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        sqs = ctx.client("sqs")
        name = props.get("QueueName") or ctx.physical_name(logical, 80)
        attributes: dict[str, str] = {}
        for key, value in props.items():
            if key in ("QueueName", "Tags"):
                continue
            attributes[key] = (
                json.dumps(value)
                if isinstance(value, dict)
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
        kwargs: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if props.get("Tags"):
            kwargs["tags"] = {t["Key"]: t["Value"] for t in props["Tags"]}
        url = sqs.create_queue(**kwargs)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Created(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("sqs").delete_queue(QueueUrl=resource.physical_id)


@handler
class QueuePolicy(ResourceHandler):
    type = "AWS::SQS::QueuePolicy"
    properties = frozenset({"Queues", "PolicyDocument"})
    required = properties

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        for url in props["Queues"]:
            ctx.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )
        return Created(ctx.physical_name(logical))


ALARM_INT = {"Period", "EvaluationPeriods", "DatapointsToAlarm"}


@handler
class Alarm(ResourceHandler):
    type = "AWS::CloudWatch::Alarm"
    properties = frozenset(
        {
            "AlarmName",
            "AlarmDescription",
            "ActionsEnabled",
            "AlarmActions",
            "OKActions",
            "InsufficientDataActions",
            "MetricName",
            "Namespace",
            "Statistic",
            "ExtendedStatistic",
            "Dimensions",
            "Period",
            "EvaluationPeriods",
            "DatapointsToAlarm",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "Unit",
            "Metrics",
            "ThresholdMetricId",
            "EvaluateLowSampleCountPercentile",
            "Tags",
        }
    )
    required = frozenset({"EvaluationPeriods", "ComparisonOperator"})

    def create(self, ctx: ResourceContext, logical: str, props: dict[str, Any]) -> Created:
        name = props.get("AlarmName") or ctx.physical_name(logical, 255)
        kwargs: dict[str, Any] = {"AlarmName": name}
        for key, value in props.items():
            if key == "AlarmName":
                continue
            if key in ALARM_INT:
                kwargs[key] = int(value)
            elif key == "Threshold":
                kwargs[key] = float(value)
            elif key == "ActionsEnabled":
                kwargs[key] = bool(value)
            else:
                kwargs[key] = value
        ctx.client("cloudwatch").put_metric_alarm(**kwargs)
        return Created(name, {"Arn": ctx.arn("cloudwatch", f"alarm:{name}")})

    def delete(self, ctx: ResourceContext, resource: Resource) -> None:
        ctx.client("cloudwatch").delete_alarms(AlarmNames=[resource.physical_id])
