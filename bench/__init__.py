"""Benchmarks. Each prints its figures and a ratio against a baseline measured in the same run;
`python -m bench` (make bench) runs them all and writes bench/results.json."""
