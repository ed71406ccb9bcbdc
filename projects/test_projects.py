"""The projects' shape (MMDetection's projects/ layout) and the package's independence from them."""
import os
import re

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.join(os.path.dirname(HERE), 'mmrefvlm')
PROJECTS = ['sam_mask', 'grounding_dino_box', 'unipose_keypoint']
EXTERNAL = re.compile(r'segment_anything|\bSAM\b|grounding.?dino|gdino|unipose', re.IGNORECASE)


@pytest.mark.parametrize('name', PROJECTS)
def test_a_project_has_readme_configs_package_and_tests(name):
    root = os.path.join(HERE, name)
    assert os.path.isfile(os.path.join(root, 'README.md'))
    assert os.path.isfile(os.path.join(root, name, '__init__.py'))
    configs = os.listdir(os.path.join(root, 'configs'))
    assert any('stage3' in c for c in configs) and any('tiny' in c for c in configs)
    for config in configs:
        with open(os.path.join(root, 'configs', config)) as f:
            assert f'projects.{name}.{name}' in f.read()  # custom_imports
    assert any(f.startswith('test_') for f in os.listdir(os.path.join(root, 'tests')))


def test_no_file_of_the_package_names_an_external_decoder():
    named = []
    for folder, _, files in os.walk(PACKAGE):
        for file in files:
            if file.endswith('.py'):
                with open(os.path.join(folder, file)) as f:
                    if EXTERNAL.search(f.read()):
                        named.append(os.path.relpath(os.path.join(folder, file), PACKAGE))
    assert named == []
