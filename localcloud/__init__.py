"""Lepton's local AWS: deploys template.yaml into an emulator (moto 5.2.5) and runs the same
handlers, state machines, SageMaker jobs and alarms offline. Development and test only: nothing
under functions/ or shared/ may import it."""

from localcloud.cloud import LocalCloud

__all__ = ["LocalCloud"]
