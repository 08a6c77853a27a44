from nilearn_vlm.testing import check_adapter
from nilearn_vlm_colorstats import ColorStatsAdapter


def test_conforms_to_the_adapter_contract():
    check_adapter(ColorStatsAdapter())
