"""Cost of unit capture in the CLIP adapter against a bare forward pass.

ViT-B-32 (full size, random weights) on CPU, a batch of 32 images and 32
captions. Two timings are interleaved in the same process, alternating their
order each repeat:

* ``bare``: ``model.encode_image(pixels)`` and ``model.encode_text(tokens)``
  with no hooks;
* ``capture``: the same forward passes with hooks on every ``ffn`` site of both
  towers (24 sites, 12 x 3072 + 12 x 2048 units), pooled with ``mean`` inside
  the hooks (``ClipAdapter._capture``).

Both start from the same preprocessed tensors, so the difference is the cost of
the hooks and pooling. The medians of the repeats, their spread (min-max and
interquartile range), the overhead (ratio of medians and median of the
per-repeat paired ratios) are printed, with the time spent pooling inside
the hooks (measured directly, the least noisy estimate on a shared machine)
and the load average. Peak memory is measured in fresh
subprocesses: the peak resident set size (VmHWM) is reset once the model is
loaded, then read after one bare or capture pass (torch tensors live outside
``tracemalloc``'s view).

Usage::

    python benchmarks/extract_clip.py                 # 7 repeats
    python benchmarks/extract_clip.py --repeats 3 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

TEXTS = [
    "a photo of a cat",
    "Two astronauts float beside the space station at night while the earth turns below",
    "coffee",
    "A red double-decker bus drives through a rainy city street as people wait under umbrellas.",
]


def _setup(args):
    import torch

    torch.set_num_threads(args.threads)
    from nilearn_vlm.adapters import Batch
    from nilearn_vlm.testing import make_images
    from nilearn_vlm_clip import ClipAdapter

    adapter = ClipAdapter(arch=args.arch, pretrained=None, seed=0)
    adapter.ensure_loaded()
    images = make_images(args.batch, size=256, seed=0)
    texts = [TEXTS[i % len(TEXTS)] + f" number {i}" for i in range(args.batch)]
    batch = Batch(images=images, texts=texts)
    backend = adapter._backend
    with torch.inference_mode():
        prepared = {s: backend.prepare(s, batch, "cpu") for s in ("vision", "text")}
    sites = adapter.resolve_sites("*.ffn")
    return adapter, prepared, sites


def _bare(adapter, prepared):
    import torch

    with torch.inference_mode():
        for stream in ("vision", "text"):
            inputs, mask = prepared[stream]
            adapter._backend.forward(stream, inputs, mask)


_HOOK_TIME = [0.0]


def _timed_pool():
    """Wrap the adapter's ``pool`` to add up the time spent pooling inside the hooks."""
    import nilearn_vlm_clip.adapter as module

    inner = module.pool

    def timed(x, mask, rule):
        t0 = time.perf_counter()
        y = inner(x, mask, rule)
        _HOOK_TIME[0] += time.perf_counter() - t0
        return y

    module.pool = timed


def _capture(adapter, prepared, sites):
    out = {}
    for stream in ("vision", "text"):
        inputs, mask = prepared[stream]
        wanted = [s for s in sites if s.stream == stream]
        out.update(adapter._capture(stream, inputs, mask, wanted, "mean"))
    return out


def _peak_rss_mib():
    """Peak resident set size (VmHWM on Linux, else ru_maxrss), MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def _reset_peak_rss():
    """Reset the peak RSS to the current RSS (Linux >= 4.0); False when unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _probe(args):
    """Subprocess: peak RSS after loading, then after one pass of ``args.probe``."""
    import gc

    adapter, prepared, sites = _setup(args)
    gc.collect()
    reset = _reset_peak_rss()
    loaded = _peak_rss_mib()
    if args.probe == "bare":
        _bare(adapter, prepared)
        kept = 0
    else:
        out = _capture(adapter, prepared, sites)
        kept = sum(v.nbytes for v in out.values())
    print(json.dumps({"loaded_mib": loaded, "peak_mib": _peak_rss_mib(), "kept_bytes": kept, "reset": reset}))


def _stats(x):
    x = np.asarray(x)
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return med, x.min(), x.max(), q3 - q1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--probe", choices=["bare", "capture"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    if args.threads is None:
        args.threads = torch.get_num_threads()
    if args.probe:
        _probe(args)
        return

    adapter, prepared, sites = _setup(args)
    _timed_pool()
    print(f"load average at start (1, 5, 15 min): {os.getloadavg()} on {os.cpu_count()} CPUs")
    print(f"{args.arch}, random weights, batch {args.batch}, CPU, {args.threads} torch threads, "
          f"torch {torch.__version__}")
    n_units = sum(s.width for s in sites)
    print(f"capture: {len(sites)} ffn sites, {n_units} units, mean pooling; text tokens "
          f"{prepared['text'][0].shape[1]}, vision tokens {1 + adapter.model.visual.grid_size[0] ** 2}")
    # warm-up, and a check that capture does not change the model output path
    _bare(adapter, prepared)
    out = _capture(adapter, prepared, sites)
    assert len(out) == len(sites) and all(v.shape == (args.batch, s.width) for s, v in zip(sites, out.values()))
    times = {"bare": [], "capture": []}
    pooled = []
    for r in range(args.repeats):
        order = ("bare", "capture") if r % 2 == 0 else ("capture", "bare")
        for which in order:
            t0 = time.perf_counter()
            if which == "bare":
                _bare(adapter, prepared)
            else:
                _HOOK_TIME[0] = 0.0
                _capture(adapter, prepared, sites)
                pooled.append(_HOOK_TIME[0])
            times[which].append(time.perf_counter() - t0)
    for which in ("bare", "capture"):
        med, lo, hi, iqr = _stats(times[which])
        print(f"{which:8s} median {med:7.3f} s   min {lo:7.3f}  max {hi:7.3f}  IQR {iqr:6.3f}   "
              f"({args.repeats} repeats)")
    ratio = np.median(times["capture"]) / np.median(times["bare"]) - 1
    paired = np.asarray(times["capture"]) / np.asarray(times["bare"]) - 1
    print(f"overhead: {100 * ratio:+.1f}% (ratio of medians); paired per-repeat median "
          f"{100 * np.median(paired):+.1f}% [min {100 * paired.min():+.1f}%, max {100 * paired.max():+.1f}%]; "
          f"target <= +5%")
    print(f"time pooling inside the hooks: median {np.median(pooled):.3f} s per capture pass = "
          f"{100 * np.median(pooled) / np.median(times['bare']):.1f}% of the bare median "
          "(the work capture adds, measured directly)")
    print(f"hooks left on the model: {adapter.active_hooks()}")
    print(f"load average at end: {os.getloadavg()}")
    if not args.no_memory:
        base = [sys.executable, __file__, "--arch", args.arch, "--batch", str(args.batch),
                "--threads", str(args.threads), "--probe"]
        for which in ("bare", "capture"):
            res = json.loads(subprocess.run(base + [which], check=True, capture_output=True, text=True)
                             .stdout.strip().splitlines()[-1])
            since = "model loaded and inputs prepared" if res["reset"] else "process start (peak reset unsupported)"
            print(f"memory {which:8s}: peak RSS {res['peak_mib']:.0f} MiB, {res['peak_mib'] - res['loaded_mib']:+.0f} MiB "
                  f"above the RSS once the {since} ({res['loaded_mib']:.0f} MiB); units kept "
                  f"{res['kept_bytes'] / 2**10:.0f} KiB")
        text_tokens = prepared["text"][0].shape[1]
        vis_tokens = 1 + adapter.model.visual.grid_size[0] ** 2
        unpooled = sum(args.batch * (vis_tokens if s.stream == "vision" else text_tokens) * s.width * 4 for s in sites)
        print(f"(unpooled tokens of these sites would take {unpooled / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
