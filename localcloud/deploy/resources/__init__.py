"""Resource handlers, one class per CloudFormation type; importing this package registers them."""

from localcloud.deploy.resources import apigateway, compute, messaging, storage

__all__ = ["apigateway", "compute", "messaging", "storage"]
