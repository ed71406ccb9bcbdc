"""The test suite's guards and fixtures (``tests/conftest.py``: no network, offline hubs, one
thread, the generated tiny data set and config) for the tests of the projects."""
import importlib.util
import os

import pytest

_spec = importlib.util.spec_from_file_location(
    'mmrefvlm_suite_conftest',
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests',
                 'conftest.py'))
_suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_suite)

no_network = _suite.no_network
tiny_data = _suite.tiny_data
tiny_cfg = _suite.tiny_cfg


@pytest.fixture
def tiny_config_shrinker():
    """``tests/conftest.py``'s ``shrink_tiny_config(cfg, data_root)``: a config derived from the
    tiny one, at test size."""
    return _suite.shrink_tiny_config
