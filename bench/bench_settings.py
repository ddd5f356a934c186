"""crmsms's settings plus one URL for the benchmarks: a no-op view behind the same
middleware as the webhooks (the limit of bench/dlr_ingest.py)."""

from crmsms.settings import *  # noqa: F403

ROOT_URLCONF = "bench_urls"
