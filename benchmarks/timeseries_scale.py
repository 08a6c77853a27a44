"""Scale of the time-series path: TRAligner at CLIP ViT-B/32 size, extraction throughput.

TRAligner: 61,440 units (every ``ffn`` unit of both CLIP ViT-B/32 towers:
12 x 3072 + 12 x 2048) x 3,600 TRs (4 runs of 900 scans, one event per
second as in the HCP 7T movie runs), float32, glover HRF, z-scored. Each
measurement runs in a fresh subprocess and reports wall time and peak
resident memory (ru_maxrss), next to the size of the input and output arrays.
A per-unit loop over nilearn's ``compute_regressor`` on a subset of units is
timed in the same run as the baseline.

Extraction: stimuli/s of ``NeuronActivations`` with the NumPy ToyAdapter
(default size), batch 32, all sites, without and with the on-disk cache
(cold), median of repeats.

Run: /work/venv/bin/python benchmarks/timeseries_scale.py [--units 61440] [--runs 4] [--scans 900]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time


def _child_aligner(units, runs, scans, chunk, n_jobs):
    import resource

    import numpy as np
    import pandas as pd

    from nilearn_vlm import TRAligner

    t0 = time.perf_counter()
    import nilearn.glm.first_level  # noqa: F401 (import time is not alignment time)

    t_import = time.perf_counter() - t0
    events = pd.DataFrame({
        "onset": np.tile(np.arange(scans, dtype=float), runs),
        "duration": 1.0,
        "run": np.repeat(np.arange(runs), scans),
    })
    rng = np.random.default_rng(0)
    X = rng.standard_normal((runs * scans, units), dtype=np.float32)
    t0 = time.perf_counter()
    aligner = TRAligner(events=events, n_scans=[scans] * runs, t_r=1.0, chunk_size=chunk,
                        n_jobs=n_jobs).fit(X)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    Y = aligner.transform(X)
    t_transform = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
    nnz = sum(m.nnz for mats in aligner.regressors_.values() for m in mats)
    return {"import_s": t_import, "fit_s": t_fit, "transform_s": t_transform, "peak_rss_mib": peak,
            "input_mib": X.nbytes / 2**20, "output_mib": Y.nbytes / 2**20,
            "output_shape": list(Y.shape), "regressor_nnz": int(nnz)}


def _child_baseline(units, runs, scans):
    import numpy as np
    from nilearn.glm.first_level import compute_regressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((scans, units))
    ft = np.arange(scans, dtype=float)
    onsets = np.arange(scans, dtype=float)
    t0 = time.perf_counter()
    for u in range(units):
        compute_regressor(np.vstack([onsets, np.ones(scans), X[:, u]]), "glover", ft)
    per_unit_run = (time.perf_counter() - t0) / units
    return {"per_unit_run_s": per_unit_run}


def _child_extract(n, repeats, memory):
    import numpy as np
    import pandas as pd

    from nilearn_vlm import NeuronActivations
    from nilearn_vlm.testing import ToyAdapter

    rng = np.random.default_rng(0)
    stimuli = pd.DataFrame({
        "image": [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(n)],
        "text": [f"a photo of thing {i} on a table near the window" for i in range(n)],
    })
    rates = []
    for _ in range(repeats):
        folder = tempfile.mkdtemp() if memory else None
        acts = NeuronActivations(model=ToyAdapter(), sites="all", batch_size=32, memory=folder)
        t0 = time.perf_counter()
        X = acts.fit_transform(stimuli)
        rates.append(n / (time.perf_counter() - t0))
    return {"stimuli_per_s_median": statistics.median(rates), "stimuli_per_s_all": rates,
            "n_units": int(X.shape[1])}


def _run_child(func, *args):
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks'); import timeseries_scale as b; "
        f"print(json.dumps(b.{func}(*{args!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=61440)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--scans", type=int, default=900)
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--n-jobs", default="1,2", help="comma-separated TRAligner n_jobs to time")
    parser.add_argument("--baseline-units", type=int, default=20)
    parser.add_argument("--stimuli", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    print(f"TRAligner {args.units} units x {args.runs * args.scans} TRs ({args.runs} runs), float32:")
    for n_jobs in [int(j) for j in args.n_jobs.split(",")]:
        res = _run_child("_child_aligner", args.units, args.runs, args.scans, args.chunk, n_jobs)
        print(f"  n_jobs={n_jobs}: import nilearn.glm {res['import_s']:.2f} s, fit {res['fit_s']:.2f} s, "
              f"transform {res['transform_s']:.2f} s, peak RSS {res['peak_rss_mib']:.0f} MiB (input "
              f"{res['input_mib']:.0f} MiB + output {res['output_mib']:.0f} MiB), regressor nnz "
              f"{res['regressor_nnz']}")
    base = _run_child("_child_baseline", args.baseline_units, args.runs, args.scans)
    loop_estimate = base["per_unit_run_s"] * args.units * args.runs
    print(f"  baseline: nilearn compute_regressor per unit and run {base['per_unit_run_s'] * 1e3:.2f} ms "
          f"-> about {loop_estimate:.0f} s for all units (x{loop_estimate / res['transform_s']:.0f} the last run above)")
    for memory in (False, True):
        ext = _run_child("_child_extract", args.stimuli, args.repeats, memory)
        print(f"NeuronActivations + ToyAdapter ({ext['n_units']} units, all sites, batch 32, "
              f"{'cold cache' if memory else 'no cache'}): median {ext['stimuli_per_s_median']:.0f} "
              f"stimuli/s over {args.repeats} repeats {['%.0f' % r for r in ext['stimuli_per_s_all']]}")


if __name__ == "__main__":
    main()
