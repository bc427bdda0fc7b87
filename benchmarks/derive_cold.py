"""Cold time to derive every escape-time formula (issue 2's figure).

Run: .venv/bin/python benchmarks/derive_cold.py
Each measurement is a fresh interpreter, so SymPy's caches and flatminima's are empty; the
disk cache is switched off (FLATMINIMA_CACHE_DIR=off) for the cold figure and then measured
warm, in a temporary folder filled by a first run. The derivations shipped precomputed in the
package (theory/_derivations.txt, 27 of the 48) are hidden for the cold and warm figures, so
they measure the derivation; a third figure uses them (disk cache off).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

CODE = r"""
import time, sys
t0 = time.perf_counter()
from flatminima.theory import derive_escape_time
if sys.argv[1] == "hide":  # as a stale shipped file is treated: not used
    from pathlib import Path
    from flatminima.theory import _shipped
    _shipped.DATA = Path("/nonexistent")
t1 = time.perf_counter()
n = 0
for noise in ("white", "sgd", "loss-dependent"):
    for dim in (1, 2, 3, "n"):
        for interpretation in ("ito", "stratonovich", "anti-ito", "alpha"):
            derive_escape_time(noise, dim, interpretation)
            n += 1
t2 = time.perf_counter()
print(f"{t1 - t0} {t2 - t1} {n}")
"""


def _run(cache: str, shipped: str = "hide") -> tuple[float, float, int]:
    env = {**os.environ, "FLATMINIMA_CACHE_DIR": cache}
    out = subprocess.run(
        [sys.executable, "-c", CODE, shipped], capture_output=True, text=True, check=True, env=env
    )
    a, b, count_text = out.stdout.split()
    return float(a), float(b), int(count_text)


def main(repeats: int = 5) -> None:
    imports, derives, warm, shipped = [], [], [], []
    count = 0
    for _ in range(repeats):
        a, b, count = _run("off")
        imports.append(a)
        derives.append(b)
        shipped.append(_run("off", "use")[1])
    with tempfile.TemporaryDirectory() as folder:
        _run(folder)
        for _ in range(repeats):
            warm.append(_run(folder)[1])
    result = {
        "formulas": count,
        "import_s_median": statistics.median(imports),
        "derive_all_s_median": statistics.median(derives),
        "derive_all_s_min": min(derives),
        "derive_all_s_max": max(derives),
        "derive_all_warm_disk_cache_s_median": statistics.median(warm),
        "derive_all_shipped_27_of_48_s_median": statistics.median(shipped),
        "repeats": repeats,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
