"""Wall time and per-step timings of ``nilearn-vlm demo``, cold cache, medians of repeats.

Each repeat runs ``nilearn-vlm demo --quiet`` in a fresh subprocess with a
fresh output folder (so its activation cache and surrogate banks are cold)
and reads the per-step timings from its ``summary.json``. Printed and
written to ``OUT/demo.json``: the median wall time (seconds, the whole
subprocess) and CPU time (user + system seconds of the subprocess: a loaded
machine inflates it less than the wall time), the median of every step, each repeat's numbers, the machine's
load average before and after each repeat (a target is judged on a quiet
machine: load < 1.5 on 2 cores), and whether each repeat's planted findings
were recovered with their null controls not.

Target (issue 18): median wall time <= 300 s on a quiet 2-core machine.

Usage::

    python benchmarks/demo.py [--repeats 3] [--out DIR] [--keep]

``--keep`` keeps the demos' output folders (under ``OUT``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 300.0


def one_run(folder):
    """Run the demo once into ``folder``: (wall seconds, CPU seconds, summary dict, load before, load after).

    CPU seconds: user + system time of the demo's process (``resource``'s
    children usage), a measure that a loaded machine inflates less than the
    wall time.
    """
    load_before = os.getloadavg()[0]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", "import sys; from nilearn_vlm.cli import main; sys.exit(main())",
         "demo", "--out", str(folder), "--quiet"],
        capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    if res.returncode != 0:
        raise RuntimeError(f"the demo failed (exit {res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    summary = json.loads((Path(folder) / "summary.json").read_text())
    return wall, cpu, summary, load_before, os.getloadavg()[0]


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def findings_ok(summary):
    """Whether every finding's plant was recovered and its null control not."""
    return {name: bool(f.get("recovered")) for name, f in summary.get("findings", {}).items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="cold-cache runs (default: %(default)s)")
    parser.add_argument("--out", default="demo_benchmark", help="folder of demo.json (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the demos' output folders")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for i in range(args.repeats):
        folder = out / f"run{i}" if args.keep else Path(tempfile.mkdtemp(prefix="nilearn_vlm_demo_"))
        if folder.exists():
            shutil.rmtree(folder)
        try:
            wall, cpu, summary, before, after = one_run(folder)
        finally:
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
        runs.append({"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "timings_s": summary["timings_s"],
                     "load_before": before, "load_after": after, "findings_recovered": findings_ok(summary)})
        print(f"run {i + 1}/{args.repeats}: {wall:.1f} s wall, {cpu:.1f} s CPU (load {before:.2f} -> {after:.2f}); "
              f"findings {runs[-1]['findings_recovered']}", flush=True)
    steps = list(dict.fromkeys(k for r in runs for k in r["timings_s"]))
    payload = {
        "repeats": args.repeats, "cpu_count": os.cpu_count(),
        "median_wall_s": round(median([r["wall_s"] for r in runs]), 1),
        "median_cpu_s": round(median([r["cpu_s"] for r in runs]), 1),
        "median_step_s": {k: round(median([r["timings_s"].get(k, 0.0) for r in runs]), 2) for k in steps},
        "max_load": max(max(r["load_before"], r["load_after"]) for r in runs),
        "target_s": TARGET_S, "runs": runs,
    }
    payload["quiet_machine"] = payload["max_load"] < 1.5
    payload["meets_target"] = payload["median_wall_s"] <= TARGET_S
    (out / "demo.json").write_text(json.dumps(payload, indent=1))
    print(f"\nmedian wall time: {payload['median_wall_s']:.1f} s (CPU {payload['median_cpu_s']:.1f} s) over "
          f"{args.repeats} cold run(s) (target {TARGET_S:.0f} s on a quiet machine; max load {payload['max_load']:.2f})")
    for k, v in sorted(payload["median_step_s"].items(), key=lambda kv: -kv[1]):
        print(f"  {v:8.1f} s  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
