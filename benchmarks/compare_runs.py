"""Are two demo run folders the same apart from timings? Compares every stage JSON and array file.

    python benchmarks/compare_runs.py OLD_RUN NEW_RUN

JSON values are compared recursively; keys that are cost measurements or run identities (seconds,
peak memory, run ids, dates, SHA-256 digests of files that embed them, versions, paths) are skipped.
Arrays (``.npz``) are compared exactly. Prints one line per difference and a summary; exits 1 when
anything but timings differs. Used for refactors that must not change results (issue 22).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: keys whose values are timings, identities or locations, not results
VOLATILE = {
    "seconds", "seconds_per_image", "train_seconds", "run_id", "started", "sha256", "files", "command",
    "platform", "versions", "peak_mb", "time", "wall_seconds", "ms_per_image", "checkpoint", "out",
    "cache", "reused from cache", "training seconds", "model_file", "figures",
}  # fmt: skip
TIMING_WORDS = ("second", "elapsed", "ms_per", "peak_mb", "peak_memory")  # cost measurements


def _volatile(key: str) -> bool:
    low = key.lower()
    return key in VOLATILE or any(w in low for w in TIMING_WORDS)


def compare(a: Any, b: Any, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if _volatile(str(key)):
                continue
            if key not in a or key not in b:
                out.append(f"{where}/{key}: only in {'new' if key not in a else 'old'}")
                continue
            compare(a[key], b[key], f"{where}/{key}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: length {len(a)} → {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            compare(x, y, f"{where}[{i}]", out)
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    elif a != b:
        out.append(f"{where}: {str(a)[:60]} → {str(b)[:60]}")


def main(old: Path, new: Path) -> int:
    diffs: list[str] = []
    checked = 0
    for path in sorted(old.rglob("*")):
        rel = path.relative_to(old)
        twin = new / rel
        if path.suffix not in (".json", ".npz") or rel.name == "stages.json":
            continue
        if not twin.is_file():
            diffs.append(f"{rel}: missing in the new run")
            continue
        checked += 1
        if path.suffix == ".json":
            compare(json.loads(path.read_text()), json.loads(twin.read_text()), str(rel), diffs)
        else:
            with np.load(path, allow_pickle=False) as x, np.load(twin, allow_pickle=False) as y:
                for key in sorted(set(x.files) | set(y.files)):
                    if _volatile(key):
                        continue
                    if key not in x.files or key not in y.files:
                        diffs.append(f"{rel}:{key}: only in one run")
                    elif x[key].shape != y[key].shape or not np.array_equal(x[key], y[key], equal_nan=True):
                        diffs.append(f"{rel}:{key}: arrays differ")
    for line in diffs:
        print(line)
    print(f"{checked} files compared (JSON and arrays); {len(diffs)} differences apart from timings")
    return 1 if diffs else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python benchmarks/compare_runs.py OLD_RUN NEW_RUN")
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
