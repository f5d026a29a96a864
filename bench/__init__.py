"""Benchmarks. Each prints its figures and a ratio against a baseline measured in the same run;
`python -m bench` (make bench) runs them all and writes bench/results.json."""

import os

# What is measured runs as it runs in Lambda. The Lambda Python runtime's botocore has no awscrt
# (aws/aws-lambda-base-images#147), so botocore signs with its own SigV4 there; this venv has awscrt
# only because the SAM CLI requires boto3[crt]. botocore reads this when it is first imported.
os.environ.setdefault("BOTO_DISABLE_CRT", "true")
