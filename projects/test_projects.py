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


@pytest.mark.parametrize('name', PROJECTS)
def test_a_stage3_config_keeps_the_papers_schedule_over_its_own_data(name):
    """lr 2e-5, 5 epochs at 16 x 8 of the config's ``num_train_samples`` (the loop, warm-up and
    cosine follow), the Table 15 shares drawn by the stage's sampler, the head swapped."""
    from mmrefvlm.utils.config_refs import read_config
    configs = os.path.join(HERE, name, 'configs')
    config, = [c for c in os.listdir(configs) if 'stage3' in c]
    cfg = read_config(os.path.join(configs, config))
    max_iters = -(-5 * cfg.num_train_samples // 128)
    assert cfg.train_cfg.max_iters == max_iters == cfg.param_scheduler[1].end
    assert cfg.param_scheduler[0].end == int(0.03 * max_iters)
    assert cfg.optim_wrapper.optimizer.lr == 2e-5
    assert cfg.train_dataloader.sampler.type == 'MixtureInfiniteSampler'
    assert sum(cfg.train_dataloader.sampler.ratios.values()) == pytest.approx(100, abs=0.05)
    assert any(head.type.startswith(('SAM', 'GroundingDINO', 'UniPose'))
               for head in cfg.model.heads.values())
