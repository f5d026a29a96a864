"""A template the local deployer cannot honour stops the deployment and leaves nothing behind."""

from __future__ import annotations

import json
import textwrap

import pytest

from localcloud.deploy.errors import TemplateError, UnsupportedError


def write(tmp_path, body: str):
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_unapplied_property_fails_and_rolls_back(cloud, tmp_path):
    template = write(
        tmp_path,
        """
        Resources:
          First:
            Type: AWS::S3::Bucket
            Properties: {BucketName: rollback-first-bucket}
          Second:
            Type: AWS::S3::Bucket
            DependsOn: First
            Properties:
              BucketName: rollback-second-bucket
              AccelerateConfiguration: {AccelerationStatus: Enabled}
        """,
    )
    with pytest.raises(UnsupportedError, match=r"Second \(AWS::S3::Bucket\) sets \['AccelerateConfiguration'\]"):
        cloud.deploy(template, "rollback-test")
    names = [b["Name"] for b in cloud.client("s3").list_buckets()["Buckets"]]
    assert "rollback-first-bucket" not in names  # created, then rolled back
    assert "rollback-second-bucket" not in names


def test_rollback_keeps_a_table_that_was_there_before(cloud, tmp_path):
    """A persistent DynamoDB (DynamoDB Local under `lepton local up`) keeps tables between runs; the
    deployer adopts such a table, and a failed deploy must not delete it with its items."""
    ddb = cloud.client("dynamodb")
    keys = {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]}  # fmt: skip
    ddb.create_table(TableName="kept-table", BillingMode="PAY_PER_REQUEST", **keys)
    ddb.put_item(TableName="kept-table", Item={"pk": {"S": "precious"}})
    template = write(
        tmp_path,
        f"""
        Resources:
          Table:
            Type: AWS::DynamoDB::Table
            Properties:
              TableName: kept-table
              BillingMode: PAY_PER_REQUEST
              KeySchema: {keys["KeySchema"]}
              AttributeDefinitions: {keys["AttributeDefinitions"]}
              TimeToLiveSpecification: {{AttributeName: expires, Enabled: true}}
          Fresh:
            Type: AWS::S3::Bucket
            Properties: {{BucketName: adopt-fresh-bucket}}
          Broken:
            Type: AWS::S3::Bucket
            DependsOn: [Table, Fresh]
            Properties:
              BucketName: adopt-broken-bucket
              AccelerateConfiguration: {{AccelerationStatus: Enabled}}
        """,
    )
    with pytest.raises(UnsupportedError):
        cloud.deploy(template, "adopt-then-fail")
    assert ddb.get_item(TableName="kept-table", Key={"pk": {"S": "precious"}}).get("Item") == {"pk": {"S": "precious"}}
    assert "adopt-fresh-bucket" not in [b["Name"] for b in cloud.client("s3").list_buckets()["Buckets"]]
    # and a second deploy of the adopted table (time to live already on) is not an error
    template.write_text(template.read_text().split("  Fresh:")[0])
    cloud.deploy(template, "adopt-twice")
    cloud.deploy(template, "adopt-thrice")
    ttl = ddb.describe_time_to_live(TableName="kept-table")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}


def test_unknown_resource_type_is_refused(cloud, tmp_path):
    template = write(tmp_path, "Resources:\n  Db: {Type: 'AWS::RDS::DBInstance', Properties: {}}\n")
    with pytest.raises(UnsupportedError, match="AWS::RDS::DBInstance, which the local runtime does not deploy"):
        cloud.deploy(template, "unknown-type")


def test_state_machine_placeholder_without_substitution_is_refused(cloud, tmp_path):
    template = write(
        tmp_path,
        """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Machine:
            Type: AWS::Serverless::StateMachine
            Properties:
              Definition: {StartAt: A, States: {A: {Type: Pass, Result: "${Missing}", End: true}}}
        """,
    )
    with pytest.raises(TemplateError, match=r"uses \$\{Missing\} but DefinitionSubstitutions lacks it"):
        cloud.deploy(template, "placeholder")


def test_circular_template_is_refused(cloud, tmp_path):
    template = write(
        tmp_path,
        """
        Resources:
          A: {Type: AWS::SNS::Topic, Properties: {DisplayName: !GetAtt B.TopicName}}
          B: {Type: AWS::SNS::Topic, Properties: {DisplayName: !GetAtt A.TopicName}}
        """,
    )
    with pytest.raises(TemplateError, match="circular dependency"):
        cloud.deploy(template, "circular")


def test_a_secret_is_generated_as_cloudformation_does_and_a_bad_one_rolls_back(cloud, tmp_path):
    """AWS::SecretsManager::Secret: GenerateSecretString with a SecretStringTemplate puts the password
    under GenerateStringKey; a generator option the deployer does not apply stops the deployment and
    the secret created before it is deleted."""
    template = write(
        tmp_path,
        """
        Resources:
          Login:
            Type: AWS::SecretsManager::Secret
            Properties:
              Name: generated-login
              GenerateSecretString:
                SecretStringTemplate: '{"username": "lepton"}'
                GenerateStringKey: password
                PasswordLength: 20
                ExcludeCharacters: '"@/\\'
          Bad:
            Type: AWS::SecretsManager::Secret
            DependsOn: Login
            Properties:
              GenerateSecretString: {PasswordLength: 20, Entropy: high}
        """,
    )
    sm = cloud.client("secretsmanager")
    with pytest.raises(UnsupportedError, match=r"Bad: \['Entropy'\] are not applied"):
        cloud.deploy(template, "secret-test")
    assert "generated-login" not in [s["Name"] for s in sm.list_secrets()["SecretList"]]  # rolled back
    template.write_text(template.read_text().split("  Bad:")[0])
    cloud.deploy(template, "secret-test")
    value = json.loads(sm.get_secret_value(SecretId="generated-login")["SecretString"])
    assert value["username"] == "lepton" and len(value["password"]) == 20
    assert not set(value["password"]) & set('"@/\\')
