"""Lepton Lifecycle's Lambda layer: domain logic, models and AWS adapters shared by the functions.

Nothing here imports torch, the sagemaker SDK, pandas, localcloud or cli: the layer is part of
every function's cold start.
"""

__version__ = "0.1.0"
