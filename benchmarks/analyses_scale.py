"""Time the analysis plugins on a full-size simulated subject (HCP grayordinates).

91,282 grayordinates with the Yeo 7-network labels, 64 atoms over 2 streams x 12
layers, default parameters (redundancy: no space, so the co-occurrence test is skipped and only the
descriptive parts run; polarity: 9,999 driver-sign and layer permutations; compare: no block sums, so
only the descriptive parts run).
Usage: python benchmarks/analyses_scale.py [n_voxels_subset]
"""

import sys
import time

import numpy as np

from nilearn_vlm import get_atlas
from nilearn_vlm.results import Results
from nilearn_vlm.units import layer_name, unit_name


def subject(model, n_vox, rng, n_atoms=64):
    units = [unit_name(s, l, "attn_out", i) for s in ("vision", "text") for l in range(12) for i in range(8)]
    load = np.zeros((n_atoms, len(units)))
    for k in range(n_atoms):
        load[k, rng.choice(len(units), 6, replace=False)] = rng.standard_normal(6)
    t = rng.standard_normal((n_atoms, n_vox))
    signs = (np.sign(t) * (np.abs(t) > 2)).astype(np.int8)
    layers = {layer_name(s, l): rng.random(n_vox) * 0.1 for s in ("vision", "text") for l in range(12)}
    labels = get_atlas("yeo7").load(91282)
    if n_vox < 91282:
        labels.labels = labels.labels[:n_vox]
    return Results(model, "sub-01", unit_names=units, atom_loadings=load, glm_sign_sets=signs,
                   encoder_scores=rng.random(n_vox) * 0.2, layer_scores=layers, network_labels={"yeo7": labels})


def main():
    n_vox = int(sys.argv[1]) if len(sys.argv) > 1 else 91282
    rng = np.random.default_rng(0)
    a, b = subject("clip", n_vox, rng), subject("meter", n_vox, rng)
    from nilearn_vlm import get_analysis

    for name, res in (("redundancy", a), ("polarity", a), ("compare", [a, b])):
        t0 = time.perf_counter()
        out = get_analysis(name)().run(res)
        print(f"{name:<11s} {time.perf_counter() - t0:7.1f} s  tables: {sorted(out.tables)}")


if __name__ == "__main__":
    main()
