"""The `lepton` command line: the local AWS runtime, the demo, and the platform's API."""
