"""``nilearn-vlm calibrate``: false-positive rates of the pipeline's inference on your rest data."""

from __future__ import annotations

import json
import sys


def configure(parser):
    """Arguments of ``nilearn-vlm calibrate``."""
    parser.add_argument("bold", nargs="+", help="resting-state BOLD: one 4D image per run (NIfTI, "
                        "CIFTI dtseries, GIfTI) or a .npy array (n_scans, n_voxels)")
    parser.add_argument("--t-r", type=float, required=True, help="repetition time (s)")
    parser.add_argument("--mask", help="brain mask (computed from the first run when not given)")
    parser.add_argument("--study", help="a study file (TOML) whose [pipeline] settings to use "
                        "(default: the default settings)")
    parser.add_argument("--inference", choices=("calibrated", "ar1"),
                        help="override the settings' inference")
    parser.add_argument("--n-maps", type=int, default=200,
                        help="random-design GLM maps, 4 per design (default: %(default)s)")
    parser.add_argument("--unit-sets", type=int, default=0,
                        help="random 64-unit sets through the unit x voxel maps (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random designs")
    parser.add_argument("--json", help="also write the rates to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _settings(args):
    import dataclasses
    import tomllib
    from pathlib import Path

    from nilearn_vlm.settings import PipelineSettings, parse_section

    settings = PipelineSettings()
    if args.study:
        path = Path(args.study)
        raw = tomllib.loads(path.read_text())
        settings = parse_section(PipelineSettings, raw.get("pipeline", {}), "pipeline", path.parent)
    if args.inference:
        settings = dataclasses.replace(settings, inference=args.inference)
    return settings


def _bold(paths):
    import numpy as np

    if len(paths) == 1 and paths[0].endswith(".npy"):
        return np.load(paths[0])
    return paths if len(paths) > 1 else paths[0]


def run(args):
    """Run ``nilearn-vlm calibrate`` (:func:`nilearn_vlm.calibration.calibrate`)."""
    from nilearn_vlm.calibration import calibrate
    from nilearn_vlm.settings import SettingsError

    try:
        settings = _settings(args)
        res = calibrate(_bold(args.bold), args.t_r, mask=args.mask, settings=settings,
                        n_maps=args.n_maps, n_unit_sets=args.unit_sets, seed=args.seed,
                        verbose=0 if args.quiet else 1)
    except (SettingsError, ValueError, FileNotFoundError) as exc:
        print(f"nilearn-vlm calibrate: {exc}", file=sys.stderr)
        return 2
    print(res.format())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rates": res.rates, "n_scans": res.n_scans, "n_voxels": res.n_voxels,
                       "t_r": res.t_r, "settings": res.settings}, f, indent=1)
    return 0
