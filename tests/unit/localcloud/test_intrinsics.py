"""CloudFormation intrinsic functions, resolved the way CloudFormation resolves them."""

from __future__ import annotations

import pytest

from localcloud.deploy.engine import order_resources, resolve_parameters
from localcloud.deploy.errors import TemplateError, UnsupportedError
from localcloud.deploy.intrinsics import NO_VALUE, Resolver, references


@pytest.fixture
def resolver():
    physical = {"Bucket": "my-bucket", "Fn": "my-fn"}
    attributes = {("Bucket", "Arn"): "arn:aws:s3:::my-bucket", ("Stack", "Outputs.Name"): "inner"}
    return Resolver(
        parameters={"Stage": "dev", "Sizes": ["a", "b"]},
        pseudo={"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::StackName": "s"},
        ref=lambda name: physical[name] if name in physical else (_ for _ in ()).throw(TemplateError(name)),
        get_att=lambda logical, attr: attributes[(logical, attr)],
        mappings={"Sizes": {"dev": {"Memory": 512}}},
        conditions={"IsDev": True},
    )


def test_ref_parameter_pseudo_and_resource(resolver):
    assert resolver.resolve({"Ref": "Stage"}) == "dev"
    assert resolver.resolve({"Ref": "AWS::Region"}) == "us-east-1"
    assert resolver.resolve({"Ref": "Bucket"}) == "my-bucket"


def test_sub_forms(resolver):
    assert resolver.resolve({"Fn::Sub": "${AWS::StackName}-${Stage}-${Bucket}"}) == "s-dev-my-bucket"
    assert resolver.resolve({"Fn::Sub": "${Bucket.Arn}/*"}) == "arn:aws:s3:::my-bucket/*"
    assert resolver.resolve({"Fn::Sub": ["${x}-${Stage}", {"x": {"Ref": "Fn"}}]}) == "my-fn-dev"
    assert resolver.resolve({"Fn::Sub": "literal ${!NotAVar}"}) == "literal ${NotAVar}"


def test_join_select_split_if_findinmap(resolver):
    assert resolver.resolve({"Fn::Join": [":", ["a", {"Ref": "Stage"}]]}) == "a:dev"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]}) == "b"
    assert resolver.resolve({"Fn::If": ["IsDev", "yes", "no"]}) == "yes"
    assert resolver.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}) == 512
    assert resolver.resolve({"Fn::GetAtt": "Stack.Outputs.Name"}) == "inner"


def test_no_value_removes_the_key(resolver):
    resolved = resolver.resolve({"A": {"Fn::If": ["IsDev", {"Ref": "AWS::NoValue"}, 1]}, "B": 2})
    assert resolved == {"B": 2}
    assert resolver.resolve({"Ref": "AWS::NoValue"}) is NO_VALUE


def test_conditions(resolver):
    assert resolver.condition({"Fn::Equals": [{"Ref": "Stage"}, "dev"]}) is True
    assert resolver.condition({"Fn::Not": [{"Fn::Equals": ["a", "b"]}]}) is True
    assert resolver.condition({"Fn::And": [{"Condition": "IsDev"}, {"Fn::Equals": ["a", "a"]}]}) is True
    assert resolver.condition({"Fn::Or": [{"Fn::Equals": ["a", "b"]}, {"Fn::Equals": ["c", "d"]}]}) is False


def test_unsupported_intrinsic_is_refused(resolver):
    with pytest.raises(TemplateError, match="Fn::Cidr is not supported"):
        resolver.resolve({"Fn::Cidr": ["10.0.0.0/16", 2, 8]})


def test_references_finds_sub_and_getatt_targets():
    value = {"A": {"Fn::Sub": "${Bucket.Arn}-${Stage}-${!Skip}"}, "B": [{"Fn::GetAtt": ["Fn", "Arn"]}]}
    assert set(references(value)) == {"Bucket", "Stage", "Fn"}


def test_order_resources_follows_references_and_depends_on():
    resources = {
        "C": {"Type": "X", "Properties": {"P": {"Ref": "B"}}},
        "B": {"Type": "X", "DependsOn": "A"},
        "A": {"Type": "X"},
    }
    assert order_resources(resources) == ["A", "B", "C"]


def test_order_resources_reports_a_cycle():
    resources = {"A": {"Type": "X", "Properties": {"P": {"Ref": "B"}}}, "B": {"Type": "X", "DependsOn": "A"}}
    with pytest.raises(TemplateError, match="circular dependency between resources: A -> B -> A"):
        order_resources(resources)


def test_unknown_resource_attribute_is_refused():
    with pytest.raises(UnsupportedError, match="CreationPolicy"):
        order_resources({"A": {"Type": "X", "CreationPolicy": {}}})


def test_parameters_are_validated():
    template = {
        "Parameters": {"Stage": {"Type": "String", "AllowedPattern": "^[a-z]+$"}, "N": {"Type": "Number", "Default": 3}}
    }
    assert resolve_parameters(template, {"Stage": "dev"}, "s") == {"Stage": "dev", "N": "3"}
    with pytest.raises(TemplateError, match="does not match"):
        resolve_parameters(template, {"Stage": "Dev1"}, "s")
    with pytest.raises(TemplateError, match="needs a value"):
        resolve_parameters(template, {}, "s")
    with pytest.raises(TemplateError, match="not declared"):
        resolve_parameters(template, {"Stage": "dev", "Other": "x"}, "s")
