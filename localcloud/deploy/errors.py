"""Why a local deployment stops. Each message names the stack, the resource and the property."""


class DeployError(Exception):
    """The template cannot be deployed locally as written; nothing is left half-created."""


class TemplateError(DeployError):
    """The template itself is invalid (unknown reference, bad intrinsic, cycle)."""


class UnsupportedError(DeployError):
    """The template uses a resource type or property the local deployer does not implement.

    Raised instead of skipping it: a property the emulator would drop silently must stop the
    deployment."""
