"""Deploying template.yaml locally: package, transform with aws-sam-translator, provision through
the emulator's public AWS APIs."""
