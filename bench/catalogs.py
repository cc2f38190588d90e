"""What the SAT catalogs cost a server process: `python -m bench.catalogs`.

In a fresh interpreter that has already imported the application (so only the catalogs are
counted), loads every catalog and reports the added resident memory (peak and after a
collection) and the load time, then the cost of a zip-code lookup. Figures go in the README
("CFDI data and catalogs").
"""

from __future__ import annotations

import gc
import os
import resource
import subprocess
import sys
import time

_PROBE = r"""
import gc, os, resource, time
import app.main  # noqa: F401  the server's imports, so they are not counted below

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

from app.catalogs.store import catalogs
gc.collect()
before = rss_mb()
peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
c = catalogs()
c.tax_systems, c.cfdi_uses, c.states, c.municipalities, c.localities
postal = c.postal_codes
elapsed = time.perf_counter() - start
gc.collect()
after = rss_mb()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
codes = [p.code for p in postal.page(0, len(postal))]
start = time.perf_counter()
for code in codes:
    postal.get(code)
per_lookup = (time.perf_counter() - start) / len(codes)
print(f"{after - before:.1f} {max(peak - peak_before, 0):.1f} {elapsed * 1000:.0f} "
      f"{per_lookup * 1e6:.2f} {len(postal)} {postal.neighborhood_count}")
"""


def main() -> int:
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE], check=True, capture_output=True, text=True
        ).stdout.split()
        runs.append(out)
    print(
        "| run | added RSS (MB) | added peak RSS (MB) | load (ms) | lookup (µs) | zips | colonias |"
    )
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        print(f"| {i} | {' | '.join(r)} |")
    return 0


if __name__ == "__main__":
    del gc, os, resource, time  # used by the probe, in its own process
    raise SystemExit(main())
