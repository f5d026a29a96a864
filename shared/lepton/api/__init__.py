"""The registry's REST API: a powertools APIGatewayRestResolver with validation (lepton.api.app)."""
