"""The set-up (tools/setup_env.sh) and its constraints check (tools/misc/check_constraints.py)."""
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    'check_constraints', osp.join(REPO, 'tools', 'misc', 'check_constraints.py'))
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)
CONSTRAINTS = osp.join(REPO, 'requirements', 'constraints.txt')
SETUP = osp.join(REPO, 'tools', 'setup_env.sh')


def test_this_environment_holds_every_constraint():
    """What the set-up built is what the constraints say, and nothing pinned is missing."""
    assert check.main(['--constraints', CONSTRAINTS, '--require-installed']) == 0


def test_exact_torch_pin_rejects_the_local_cpu_build(tmp_path):
    path = tmp_path / 'c.txt'
    path.write_text('# comment\ntorch===2.13.0\nsetuptools>=77.0.3,<81\n')
    constraints = check.read_constraints(str(path))
    assert check.violations(constraints, {'torch': '2.13.0', 'setuptools': '80.9.0'},
                            'c.txt', True) == []
    problems = check.violations(constraints, {'torch': '2.13.0+cpu', 'setuptools': '84.2.1'},
                                'c.txt', True)
    assert problems == [
        'c.txt:3: setuptools 84.2.1 is installed, the constraint is setuptools<81,>=77.0.3',
        'c.txt:2: torch 2.13.0+cpu is installed, the constraint is torch===2.13.0']


def test_missing_package_is_reported_only_when_required(tmp_path):
    path = tmp_path / 'c.txt'
    path.write_text('numpy<2\n')
    constraints = check.read_constraints(str(path))
    assert check.violations(constraints, {}, 'c.txt', False) == []
    assert check.violations(constraints, {}, 'c.txt', True) == ['c.txt:1: numpy<2 is not installed']


def test_state_fails_when_a_later_step_moves_an_earlier_package(tmp_path, monkeypatch, capsys):
    """The set-up's per-step check: versions recorded after one step may not change later."""
    constraints = tmp_path / 'c.txt'
    constraints.write_text('setuptools>=77.0.3\n')
    state = tmp_path / 'state.json'
    installed = {'setuptools': '80.9.0', 'numpy': '1.26.4'}
    monkeypatch.setattr(check, 'installed_versions', lambda: dict(installed))
    args = ['--constraints', str(constraints), '--state', str(state)]
    assert check.main(args) == 0
    installed['torch'] = '2.13.0'  # a new package is fine
    assert check.main(args) == 0
    installed['setuptools'] = '84.2.1'  # the failure of issue 16: torch's install upgraded it
    assert check.main(args) == 1
    assert 'setuptools changed from 80.9.0 to 84.2.1' in capsys.readouterr().err


def test_every_pip_call_of_the_setup_passes_the_constraints():
    """No pip install/download/wheel in the set-up can resolve outside the constraints file."""
    text = open(SETUP, encoding='utf-8').read().replace('\\\n', ' ')
    calls = [line for line in text.splitlines()
             if re.search(r'(PIP\[@\]\}|pip)"? +(install|download|wheel)\b', line)
             and not line.lstrip().startswith('#')]
    assert len(calls) >= 5, calls
    for line in calls:
        assert '-c "$CONSTRAINTS"' in line, line
    for helper in ('pip_into_out()', 'wheel_into_out()'):
        assert re.search(re.escape(helper) + r' \{[^\n]*-c "\$CONSTRAINTS"', text), helper


def test_failed_step_is_named_with_its_rerun_command_and_leaves_no_stamp(tmp_path):
    venv = tmp_path / 'venv'
    env = dict(os.environ, MMREFVLM_VENV=str(venv), MMREFVLM_CACHE=str(tmp_path / 'cache'),
               PYTHON='false')
    result = subprocess.run(['bash', SETUP], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode != 0
    assert 'step 1/11 "virtual environment' in result.stderr
    assert 'FAILED' in result.stderr
    assert f'rerun with: bash {SETUP}' in result.stderr
    assert not (venv / '.mmrefvlm-stamp').exists()
    assert not (tmp_path / 'cache' / 'wheels').exists() or not any(
        p.name.endswith('.whl') for p in (tmp_path / 'cache').rglob('*'))


def test_missing_chromium_without_root_names_the_one_command(tmp_path):
    """The browser test's Chromium: a user without root is told what to run, before the long
    steps (a stand-in `id` says uid 1000; the venv is a wrapper of this one's python)."""
    venv_bin = tmp_path / 'venv' / 'bin'
    venv_bin.mkdir(parents=True)
    python = venv_bin / 'python'
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    fake_bin = tmp_path / 'fake_bin'
    fake_bin.mkdir()
    fake_id = fake_bin / 'id'
    fake_id.write_text('#!/bin/sh\necho 1000\n')
    for path in (python, fake_id):
        path.chmod(0o755)
    env = dict(os.environ, MMREFVLM_VENV=str(tmp_path / 'venv'),
               MMREFVLM_CACHE=str(tmp_path / 'cache'),
               MMREFVLM_CHROMIUM=str(tmp_path / 'no-chromium'),
               PATH=f'{fake_bin}:{os.environ["PATH"]}')
    result = subprocess.run(['bash', SETUP], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    assert "step 2/11 \"Debian's chromium" in result.stderr and 'FAILED' in result.stderr
    assert "run 'sudo apt-get install -y chromium', then this set-up again" in result.stderr
    assert 'step 1/11 virtual environment' in result.stdout
    assert 'step 3/11' not in result.stdout + result.stderr
