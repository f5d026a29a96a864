"""A template the local deployer cannot honour stops the deployment and leaves nothing behind."""

from __future__ import annotations

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
