"""Records, the status graph, roles, cursors and settings (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lepton.errors import ConfigurationError, ValidationFailed
from lepton.registry import cursor
from lepton.registry.commands import RegisterVersion, VersionPatch
from lepton.registry.models import ALLOWED_TRANSITIONS, Role, VersionStatus, can_transition, normalise_principal
from lepton.settings import Settings

S = VersionStatus


def test_status_graph_is_the_architecture_one() -> None:
    edges = {(a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets}
    chain = {
        (S.REGISTERED, S.APPROVED),
        (S.REGISTERED, S.REJECTED),
        (S.APPROVED, S.DEPLOYING),
        (S.DEPLOYING, S.PRODUCTION),
        (S.PRODUCTION, S.ROLLED_BACK),
        (S.PRODUCTION, S.SUPERSEDED),
        (S.ROLLED_BACK, S.ARCHIVED),
        (S.SUPERSEDED, S.ARCHIVED),
    }
    failures = {(s, S.FAILED) for s in (S.REGISTERED, S.APPROVED, S.DEPLOYING)}
    documented_additions = {(S.SUPERSEDED, S.PRODUCTION), (S.REJECTED, S.ARCHIVED), (S.FAILED, S.ARCHIVED)}
    assert edges == chain | failures | documented_additions
    assert not can_transition(S.REGISTERED, S.PRODUCTION)
    assert not can_transition(S.PRODUCTION, S.FAILED)


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.allows(Role.APPROVER) and Role.APPROVER.allows(Role.TRAINER)
    assert not Role.TRAINER.allows(Role.APPROVER) and not Role.VIEWER.allows(Role.TRAINER)


def test_assumed_role_sessions_normalise_to_their_role() -> None:
    assert (
        normalise_principal("arn:aws:sts::123456789012:assumed-role/Trainers/session-1")
        == "arn:aws:iam::123456789012:role/Trainers"
    )
    assert normalise_principal("arn:aws:iam::123456789012:user/alice") == "arn:aws:iam::123456789012:user/alice"


def _register(**kw: object) -> RegisterVersion:
    fields: dict[str, object] = {
        "artifact_uri": "s3://bucket/model.tar.gz",
        "artifact_sha256": "a" * 64,
        "dataset_id": "ds-" + "0" * 20,
        "training_job": "job-1",
        "code_version": "abc",
    }
    fields.update(kw)
    return RegisterVersion.model_validate(fields)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("artifact_uri", "http://x/y"),
        ("artifact_sha256", "A" * 64),
        ("dataset_id", "ds-xyz"),
        ("training_job", "-bad"),
        ("metrics", {"acc": float("nan")}),
        ("metrics", {"acc": float("inf")}),
        ("hyperparameters", {"lr": [1, 2]}),
        ("parent_version", 0),
        ("branch", "Main/feature"),
        ("tags", {"k" * 65: "v"}),
        ("core_digest", "x"),
    ],
)
def test_bad_registration_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as bad:
        _register(**{field: value})
    assert field in str(bad.value)


def test_version_patch_needs_a_change() -> None:
    with pytest.raises(ValidationError):
        VersionPatch()


def test_cursor_round_trip_and_tampering() -> None:
    expect = {"pk": lambda v: v == "PROJECT#wine", "sk": lambda v: v.startswith("VERSION#")}
    token = cursor.encode({"pk": "PROJECT#wine", "sk": "VERSION#0000000003"})
    assert token is not None
    assert cursor.decode(token, expect=expect) == {"pk": "PROJECT#wine", "sk": "VERSION#0000000003"}
    assert cursor.decode(None, expect=expect) is None
    body, mac = token.split(".")
    # the same listing, a later start key: well-formed, but not issued by the API
    forged_body = cursor.encode({"pk": "PROJECT#wine", "sk": "VERSION#0000000001"})
    assert forged_body is not None
    flipped = body[:5] + ("A" if body[5] != "A" else "B") + body[6:] + "." + mac
    for bad in (flipped, forged_body.split(".")[0] + "." + mac, token + "!!", "e30", body, token[:10]):
        with pytest.raises(ValidationFailed) as err:
            cursor.decode(bad, expect=expect)
        assert err.value.details["field"] == "cursor"


def test_the_deployed_cursor_key_is_the_secret_the_template_generates(monkeypatch: pytest.MonkeyPatch) -> None:
    """REGISTRY_CURSOR_SECRET_ARN (the deployed API's setting): cursors are signed with the secret's
    value, so one signed with the code's fallback key, or under a rotated secret, is refused; an
    unreadable secret is a configuration error, not a cursor the caller got wrong."""
    import boto3
    from aws_lambda_powertools.utilities import parameters
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REGISTRY_CURSOR_KEY", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    expect = {"pk": lambda v: v == "PROJECT#wine", "sk": lambda v: v.startswith("VERSION#")}
    key = {"pk": "PROJECT#wine", "sk": "VERSION#0000000003"}
    fallback = cursor.encode(key)  # no key configured: the code's fixed key
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        arn = sm.create_secret(Name="cursor-key", SecretString="k" * 64)["ARN"]
        monkeypatch.setenv("REGISTRY_CURSOR_SECRET_ARN", arn)
        parameters.clear_caches()
        token = cursor.encode(key)
        assert token is not None and token != fallback
        assert cursor.decode(token, expect=expect) == key
        with pytest.raises(ValidationFailed, match="invalid cursor"):
            cursor.decode(fallback, expect=expect)
        sm.put_secret_value(SecretId=arn, SecretString="r" * 64)  # rotated
        parameters.clear_caches()
        with pytest.raises(ValidationFailed, match="invalid cursor"):
            cursor.decode(token, expect=expect)
        monkeypatch.setenv("REGISTRY_CURSOR_SECRET_ARN", arn.replace("cursor-key", "missing"))
        parameters.clear_caches()
        with pytest.raises(ConfigurationError, match="cannot be read"):
            cursor.encode(key)
    parameters.clear_caches()


def test_settings_read_the_environment_at_call_time() -> None:
    s = Settings.from_env(
        {"REGISTRY_TABLE": "t", "EVENT_BUS_NAME": "lepton-dev", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    )
    assert (s.registry_table, s.event_bus_name, s.dynamodb_endpoint, s.events_endpoint) == (
        "t",
        "lepton-dev",
        "http://127.0.0.1:5000",
        "http://127.0.0.1:5000",
    )
    s = Settings.from_env({"AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_DYNAMODB": "http://d"})
    assert (s.dynamodb_endpoint, s.s3_endpoint) == ("http://d", "http://a")
    with pytest.raises(ConfigurationError):
        s.require_registry_table()
    with pytest.raises(ConfigurationError, match="REGISTRY_MAX_ATTEMPTS"):
        Settings.from_env({"REGISTRY_MAX_ATTEMPTS": "0"})


def test_the_lifecycle_state_machine_setting_must_be_a_state_machine_arn() -> None:
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:lepton-dev-lifecycle"
    assert Settings.from_env({"LIFECYCLE_STATE_MACHINE_ARN": machine}).require_lifecycle_state_machine() == machine
    for value, problem in (("", "not set"), ("lepton-dev-lifecycle", "not a state machine ARN"),
                           (machine.replace(":stateMachine:", ":execution:"), "not a state machine ARN")):  # fmt: skip
        with pytest.raises(ConfigurationError, match=problem):
            Settings.from_env({"LIFECYCLE_STATE_MACHINE_ARN": value}).require_lifecycle_state_machine()


def test_an_items_attribute_map_is_what_its_pynamodb_model_would_save() -> None:
    """create_project writes its item from `serialized` (no model instance): the same map."""
    from lepton.registry.dynamo import ProjectItem, serialized

    values = {
        "kind": "project",
        "body": '{"name": "p"}',
        "audit_seq": 1,
        "has_contract": False,
        "genesis": '{"seq": 1}',
        "gsi2pk": "MEMBER#arn:aws:iam::123456789012:user/a",
        "gsi2sk": "PROJECT#p",
        "role": "admin",
    }
    saved = ProjectItem("PROJECT#p", "PROJECT", **values).serialize()
    assert serialized(ProjectItem, **values) == {k: v for k, v in saved.items() if k not in ("pk", "sk")}
    # a value left out (None) is not sent, as pynamodb does not send null attributes
    assert "genesis" not in serialized(ProjectItem, **{**values, "genesis": None})
    with pytest.raises(KeyError):
        serialized(ProjectItem, undeclared="x")
