"""Policy evaluation: conditions that do not hold, the Bool operator, and the request's transport.

Three moto 5.2.5 behaviours differ from IAM's:
- A statement whose Condition does not hold is reported DENIED whatever its Effect; IAM ignores
  such a statement (it does not apply to the request).
- Only the StringEquals operator is evaluated; any other (Bool among them) counts as satisfied.
- Bucket policies are evaluated without `aws:SecureTransport`, which AWS sets on every request.

Together they make the standard TLS-only bucket statement (Deny when aws:SecureTransport is
"false") deny every request. Here a non-holding condition makes its statement not apply, Bool is
compared as IAM compares it (case-insensitive true/false), and requests to the local endpoint,
which stands in for AWS's HTTPS endpoint on loopback, carry aws:SecureTransport=true. The TLS-only
statement stays in the policy (the fidelity test reads it back) and, as on AWS, denies nothing
sent through the endpoint."""

from __future__ import annotations

from typing import Any

from moto.iam import access_control, policy_conditions
from moto.s3 import models as s3_models

REQUEST_CONDITIONS = {"aws:SecureTransport": "true"}
_statement_permitted = access_control.IAMPolicyStatement.is_action_permitted


def bool_operation(expected_value: list[str] | str, actual_value: str) -> bool:
    expected = [expected_value] if isinstance(expected_value, str) else expected_value
    return str(actual_value).lower() in {str(v).lower() for v in expected}


def statement_permitted(
    self: Any, action: str, resource: str = "*", principal: str | None = None,
    incoming_condition_values: dict[str, str] | None = None,
) -> Any:  # fmt: skip
    if self._statement.get("Condition") and not self._check_conditions(incoming_condition_values):
        return access_control.PermissionResult.NEUTRAL  # a statement whose condition fails does not apply
    return _statement_permitted(self, action, resource, principal, incoming_condition_values)


def bucket_permission(self: Any, action: str, resource: str) -> Any:
    if self.policy is None:
        return access_control.PermissionResult.NEUTRAL
    policy = access_control.IAMPolicy(self.policy.decode())
    return policy.is_action_permitted(action, resource, incoming_condition_values=REQUEST_CONDITIONS)


def install() -> None:
    policy_conditions.CONDITION_OPERATIONS["Bool"] = bool_operation
    access_control.IAMPolicyStatement.is_action_permitted = statement_permitted  # type: ignore[method-assign]
    s3_models.FakeBucket.get_permission = bucket_permission  # type: ignore[method-assign]
