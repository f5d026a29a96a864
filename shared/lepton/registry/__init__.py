"""The model registry: projects, datasets, model versions, aliases with history, runs and the
audit log. `lepton.registry.service` is the domain logic (no AWS imports); the DynamoDB adapter
is `lepton.registry.dynamo` and the ingest function's port adapter `lepton.registry.datasets`."""
