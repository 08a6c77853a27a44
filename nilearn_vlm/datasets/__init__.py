"""Embedded material: real captioned images and the simulated default study."""

from nilearn_vlm.datasets._default_study import (
    DEFAULT_MODEL,
    STUDY_NETWORKS,
    make_default_study,
    make_movie_events,
    network_of_voxels,
)
from nilearn_vlm.datasets._fusion import (
    DEFAULT_FUSION_MODEL,
    fusion_drivers,
    fusion_model_params,
    fusion_voxels,
    pair_events,
)
from nilearn_vlm.datasets._images import load_captioned_images
from nilearn_vlm.datasets._simulate import (
    DEFAULT_DRIVERS,
    Driver,
    ar1_noise,
    choose_driver_units,
    choose_key_neuron_drivers,
    plant_bold,
    truth_table,
)

__all__ = [
    "DEFAULT_DRIVERS",
    "DEFAULT_FUSION_MODEL",
    "DEFAULT_MODEL",
    "Driver",
    "STUDY_NETWORKS",
    "ar1_noise",
    "choose_driver_units",
    "choose_key_neuron_drivers",
    "fusion_drivers",
    "fusion_model_params",
    "fusion_voxels",
    "load_captioned_images",
    "make_default_study",
    "make_movie_events",
    "network_of_voxels",
    "pair_events",
    "plant_bold",
    "truth_table",
]
