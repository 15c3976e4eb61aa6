"""`python -m bench`: run every benchmark, one after the other (each prints its table and
writes bench/results/<name>.json)."""

import runpy
import sys

for name in ("bench.producer", "bench.sink", "bench.processor"):
    print(f"== {name}", flush=True)
    sys.argv = [name]
    runpy.run_module(name, run_name="__main__")
