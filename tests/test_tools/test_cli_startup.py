"""The CLIs answer ``--help`` without importing torch or the package, and check their file
arguments before anything is built."""
import glob
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FAST_CLIS = ['tools/train.py', 'tools/test.py', 'tools/analysis_tools/browse_dataset.py',
             'tools/misc/build_tokenizer.py', 'tools/misc/check_constraints.py'] + sorted(
                 osp.relpath(path, REPO) for path in glob.glob(
                     osp.join(REPO, 'tools', 'dataset_converters', '*.py'))
                 if not path.endswith('converter_args.py'))
# Runs a tool's --help in a fresh interpreter and prints the heavy modules it imported.
HELP_PROBE = '''
import runpy, sys
sys.argv = [sys.argv[1], '--help']
try:
    runpy.run_path(sys.argv[0], run_name='__main__')
except SystemExit:
    pass
print('HEAVY:', sorted(m for m in ('torch', 'mmengine', 'mmrefvlm', 'deepspeed', 'transformers')
                       if m in sys.modules))
'''


def run_tool(*args, timeout=120):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, env={'PATH': '/usr/bin:/bin', 'PYTHONPATH': REPO})


@pytest.mark.parametrize('tool', FAST_CLIS)
def test_help_imports_nothing_heavy(tool):
    result = run_tool('-c', HELP_PROBE, tool)
    assert 'usage:' in result.stdout, result.stderr
    assert result.stdout.splitlines()[-1] == 'HEAVY: []'


@pytest.mark.parametrize('args, message', [
    (['tools/train.py', 'configs/no_such.py'], 'config: configs/no_such.py does not exist'),
    (['tools/train.py', 'configs/refvlm_stage2.py', '--resume', 'no_such.pth'],
     '--resume: no_such.pth does not exist'),
    (['tools/train.py', 'configs/refvlm_stage2.py', '--resume', 'configs'],
     '--resume: configs is not a file'),
    (['tools/test.py', 'configs/refvlm_stage2.py', 'no_such.pth'],
     'checkpoint: no_such.pth does not exist'),
])
def test_missing_files_stop_before_anything_is_built(args, message):
    result = run_tool(*args, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(f'error: {message}')
