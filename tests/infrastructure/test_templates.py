"""Checks on the templates and state machine definitions that no deploy would show: least
privilege, encryption, complete substitutions, valid ASL, handlers that exist."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASL_FILES = sorted((ROOT / "stacks" / "statemachines").glob("*.asl.json"))

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"


def resources(templates: dict[str, dict[str, Any]], kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (name, logical, resource.get("Properties", {}))
        for name, template in templates.items()
        for logical, resource in template.get("Resources", {}).items()
        if resource["Type"] == kind
    ]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document.get("Statement", [])
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_identity_policy_allows_every_action_on_every_resource(transformed):
    offenders = []
    for name, logical, props in resources(transformed, "AWS::IAM::Role"):
        for policy in props.get("Policies", []):
            for statement in statements(policy["PolicyDocument"]):
                actions = as_list(statement.get("Action", []))
                wide_action = any(a == "*" or a.endswith(":*") for a in actions)
                if statement.get("Effect") == "Allow" and wide_action and "*" in as_list(statement.get("Resource")):
                    offenders.append(f"{name}:{logical}:{policy['PolicyName']}")
        for arn in props.get("ManagedPolicyArns", []):
            if isinstance(arn, str) and re.search(r"(AdministratorAccess|FullAccess|PowerUserAccess)$", arn):
                offenders.append(f"{name}:{logical}:{arn}")
    assert offenders == []


def test_every_function_role_is_its_own(transformed):
    roles = [(n, p.get("Role")) for n, _, p in resources(transformed, "AWS::Lambda::Function")]
    referenced = [json.dumps(r) for _, r in roles]
    assert len(referenced) == len(set(referenced)), "two functions share a role: privileges would add up"


def test_buckets_are_encrypted_versioned_private_and_tls_only(sam_templates):
    buckets = resources(sam_templates, "AWS::S3::Bucket")
    assert buckets, "the data bucket is declared"
    for name, logical, props in buckets:
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert rule["SSEAlgorithm"] == "aws:kms", (name, logical)
        assert props["VersioningConfiguration"]["Status"] == "Enabled"
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
        policies = [
            p for _, _, p in resources(sam_templates, "AWS::S3::BucketPolicy") if p["Bucket"] == {"Ref": logical}
        ]
        tls = [
            s
            for p in policies
            for s in statements(p["PolicyDocument"])
            if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        assert tls, f"{logical} has no TLS-only policy"


def test_tables_are_encrypted_with_point_in_time_recovery(sam_templates):
    tables = resources(sam_templates, "AWS::DynamoDB::Table")
    assert len(tables) >= 2
    for name, logical, props in tables:
        assert props["SSESpecification"]["SSEEnabled"] is True, (name, logical)
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, (name, logical)


def test_api_requires_iam_auth_on_every_route(transformed):
    apis = resources(transformed, "AWS::ApiGateway::RestApi")
    assert apis
    for _, _, props in apis:
        body = props["Body"]
        for path, operations in body["paths"].items():
            for method, operation in operations.items():
                schemes = [next(iter(s)) for s in operation.get("security", [])]
                assert schemes == ["AWS_IAM"], (path, method, schemes)
                assert "credentials" not in operation["x-amazon-apigateway-integration"], (
                    "caller credentials not passed"
                )


def handler_exists(code_dir: Path, handler: str) -> bool:
    module, _, function = handler.rpartition(".")
    source = code_dir / (module.replace(".", "/") + ".py")
    if not source.exists():
        return False
    tree = ast.parse(source.read_text())
    return any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == function for n in tree.body)


def test_every_function_points_at_code_that_defines_its_handler(sam_templates):
    functions = resources(sam_templates, "AWS::Serverless::Function")
    assert len(functions) >= 6
    for name, logical, props in functions:
        code_dir = (ROOT / name).parent / props["CodeUri"]
        assert code_dir.is_dir(), f"{name}:{logical}: {code_dir} missing"
        assert handler_exists(code_dir, props["Handler"]), f"{name}:{logical}: {props['Handler']} not defined"


HEAVY = {"torch", "sagemaker", "localcloud", "cli", "lepton_cli"}


@pytest.mark.parametrize("folder", ["functions", "shared"])
def test_lambda_code_imports_nothing_heavy(folder):
    offenders = []
    for path in (ROOT / folder).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in HEAVY]
    assert offenders == []


def test_shared_layer_does_not_import_pandas():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "shared").rglob("*.py")
        if re.search(r"^\s*(import|from)\s+(pandas|pyarrow|numpy)\b", p.read_text(), re.M)
    ]
    assert offenders == []


# -- state machines ---------------------------------------------------------------------------------


def substitutions_for(sam_templates: dict[str, dict[str, Any]], asl: Path) -> dict[str, Any]:
    for name, _, props in resources(sam_templates, "AWS::Serverless::StateMachine"):
        if (ROOT / name).parent / props.get("DefinitionUri", "") == asl:
            return dict(props.get("DefinitionSubstitutions", {}))
    raise AssertionError(f"no state machine uses {asl}")


@pytest.mark.parametrize("asl", ASL_FILES, ids=lambda p: p.name)
def test_asl_placeholders_and_substitutions_match(sam_templates, asl):
    used = set(PLACEHOLDER.findall(asl.read_text()))
    given = set(substitutions_for(sam_templates, asl))
    assert used - given == set(), "placeholders without a substitution"
    assert given - used == set(), "substitutions the definition never uses"


def filled(asl: Path) -> str:
    """The definition with each placeholder replaced by a value of the right shape."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.endswith("FunctionArn"):
            return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        if name.endswith("RoleArn"):
            return f"arn:aws:iam::123456789012:role/{name}"
        if name.endswith("KeyArn"):
            return "arn:aws:kms:us-east-1:123456789012:key/0000"
        return name.lower()

    return PLACEHOLDER.sub(value, asl.read_text())


@pytest.mark.parametrize("asl", ASL_FILES, ids=lambda p: p.name)
def test_asl_is_valid_for_the_amazon_states_language_validator(asl, tmp_path):
    assert ASL_VALIDATOR.exists(), "npm ci installs asl-validator"
    concrete = tmp_path / asl.name
    concrete.write_text(filled(asl))
    for path in (asl, concrete):
        result = subprocess.run(
            [str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("asl", ASL_FILES, ids=lambda p: p.name)
def test_asl_parses_in_the_step_functions_interpreter(asl):
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    program, _ = AmazonStateLanguageParser.parse(filled(asl))
    assert program is not None


@pytest.mark.parametrize("asl", ASL_FILES, ids=lambda p: p.name)
def test_every_task_has_retry_or_catch_and_every_path_ends(asl):
    definition = json.loads(filled(asl))
    states = definition["States"]
    for name, state in states.items():
        if state["Type"] == "Task":
            assert state.get("Catch"), f"{name} has no Catch"
        for target in [
            state.get("Next"),
            state.get("Default"),
            *[c["Next"] for c in state.get("Choices", [])],
            *[c["Next"] for c in state.get("Catch", [])],
        ]:
            assert target is None or target in states, f"{name} -> {target} does not exist"
    reachable, frontier = set(), [definition["StartAt"]]
    while frontier:
        name = frontier.pop()
        if name in reachable:
            continue
        reachable.add(name)
        state = states[name]
        frontier += [t for t in [state.get("Next"), state.get("Default")] if t]
        frontier += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    assert reachable == set(states), f"unreachable states: {set(states) - reachable}"


def test_training_states_use_the_jobs_metric_definitions():
    """SageMaker records (and tuning optimises) only the metrics its MetricDefinitions name: the
    state machine must declare exactly what train.py prints."""
    declared = json.loads((ROOT / "jobs" / "metric_definitions.json").read_text())
    states = json.loads(filled(ROOT / "stacks" / "statemachines" / "lifecycle.asl.json"))["States"]
    train = states["Train"]["Parameters"]["AlgorithmSpecification"]["MetricDefinitions"]
    tune = states["Tune"]["Parameters"]["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]
    assert train == declared
    assert tune == declared
