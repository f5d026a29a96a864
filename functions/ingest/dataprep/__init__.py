"""Data preparation for the ingest function: from an uploaded CSV to a curated dataset (docs/ingest.md).

pyarrow allocates from glibc's malloc here rather than its default mimalloc pool: measured on the
benchmark (bench/ingest_bench.py, fresh process per run), mimalloc returned and re-faulted memory so
often that the kernel time of an ingest was about twice glibc's, and the wall time 40 % longer.
"""

import pyarrow as _pa

_pa.set_memory_pool(_pa.system_memory_pool())
