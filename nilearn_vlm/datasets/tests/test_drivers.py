"""Key-neuron-shaped drivers of the default study (choose_key_neuron_drivers), on units with planted key units."""

import numpy as np
import pytest

from nilearn_vlm.datasets import Driver, choose_driver_units, choose_key_neuron_drivers, truth_table
from nilearn_vlm.testing import simulate_subject


def _subject(pure_noise=False):
    return simulate_subject(0, n_layers=4, units_per_layer=32, n_sources=3, key_units=(6, 8), unit_snr=2.0,
                            n_scans_per_run=150, voxels_per_network=2, n_null_voxels=2, pure_noise=pure_noise)


def _site(sub, cols):
    return sub.units["site"].to_numpy()[cols]


def test_drivers_are_planted_key_units_of_one_source_in_their_site():
    sub = _subject()
    drivers = [Driver(_site(sub, cols[:1])[0], net, sign)
               for cols, net, sign in zip(sub.key_units, ("vision", "language", "attention"), (1, 1, -1))]
    chosen, signals = choose_key_neuron_drivers(sub.X, sub.units, drivers, n_units=3, groups=sub.runs, n_atoms=6)
    assert signals.shape == (sub.X.shape[0], 3)
    for s, (cols, driver) in enumerate(zip(chosen, drivers)):
        assert 1 <= cols.size <= 3
        assert set(_site(sub, cols)) == {driver.site}
        assert set(cols) <= set(sub.key_units[s])  # planted key units of that source, no other unit
        assert len(set(sub.unit_sign[cols])) == 1  # one sign: the driver follows its units
        # the driver's time course is its units' mean, and it carries the planted source
        mean = sub.X[:, cols].mean(axis=1)
        assert np.corrcoef(signals[:, s], mean)[0, 1] == pytest.approx(1.0)
        assert abs(np.corrcoef(signals[:, s], sub.sources[:, s])[0, 1]) > 0.8
    table = truth_table(drivers, chosen, sub.units, np.array(["vision", "language", "attention", ""]))
    assert table["site"].tolist() == [d.site for d in drivers]
    assert table["n_units"].tolist() == [c.size for c in chosen]


def test_a_site_without_key_neurons_falls_back_to_the_nearest_layer_and_says_so():
    sub = _subject()
    site = _site(sub, sub.key_units[0][:1])[0]
    stream, layer, kind = site.split(".")
    # a layer of the same stream with no planted source
    planted = {_site(sub, c[:1])[0] for c in sub.key_units}
    empty = next(f"{stream}.{k}.{kind}" for k in range(4) if f"{stream}.{k}.{kind}" not in planted)
    chosen, _ = choose_key_neuron_drivers(sub.X, sub.units, [Driver(empty, "vision", 1)], groups=sub.runs,
                                          n_atoms=6)
    used = set(_site(sub, chosen[0]))
    assert len(used) == 1 and used != {empty} and used <= planted
    assert used.pop().split(".")[0] == stream
    table = truth_table([Driver(empty, "vision", 1)], chosen, sub.units, np.array(["vision"]))
    assert table["site"].iloc[0] != empty  # the truth records the site actually planted


def test_units_without_key_neurons_give_a_clear_error():
    sub = _subject(pure_noise=True)
    with pytest.raises(ValueError, match="no atom of the units has a key neuron in stream 'vision'"):
        choose_key_neuron_drivers(sub.X, sub.units, [Driver("vision.0.attn_out", "vision", 1)], groups=sub.runs,
                                  n_atoms=6)
    with pytest.raises(ValueError, match="driver site 'vision.7.attn_out' has no unit"):
        choose_key_neuron_drivers(sub.X, sub.units, [Driver("vision.7.attn_out", "vision", 1)], groups=sub.runs,
                                  n_atoms=6)


def test_no_driver_plants_nothing():
    sub = _subject()
    for choose in (choose_key_neuron_drivers, choose_driver_units):
        chosen, signals = choose(sub.X, sub.units, [])
        assert chosen == [] and signals.shape == (sub.X.shape[0], 0)
