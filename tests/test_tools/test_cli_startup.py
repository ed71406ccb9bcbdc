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


@pytest.mark.parametrize('script, args', [('tools/dist_train.sh', ['configs/refvlm_stage2.py']),
                                          ('tools/dist_test.sh', ['a.py', 'b.pth'])])
def test_dist_scripts_print_usage(script, args):
    for flag in ('--help', '-h'):
        result = subprocess.run(['bash', script, flag], capture_output=True, text=True, cwd=REPO,
                                timeout=30)
        assert result.returncode == 0 and result.stdout.startswith(f'usage: {script} CONFIG')
    # too few arguments: usage on stderr, exit status 2, torchrun never starts
    for given in ([], args):
        result = subprocess.run(['bash', script, *given], capture_output=True, text=True,
                                cwd=REPO, timeout=30)
        assert result.returncode == 2 and result.stderr.startswith(f'usage: {script} CONFIG')
        assert 'Traceback' not in result.stderr


def test_deepspeed_checkpoint_directories_resume_and_are_refused_by_test(tmp_path):
    """``train.py --resume`` takes the directory DeepSpeed saves (``iter_<N>.pth/``);
    ``test.py`` names the command that writes its weights to one file."""
    checkpoint = tmp_path / 'iter_10.pth'
    checkpoint.mkdir()
    (checkpoint / 'mp_rank_00_model_states.pt').touch()
    train = run_tool('-c', 'import sys; sys.path.insert(0, "tools"); import train; '
                     f'print(train.parse_args(["configs/refvlm_stage2.py", "--resume", '
                     f'"{checkpoint}"]).resume, '
                     'train.parse_args(["configs/refvlm_stage2.py"]).resume)')
    assert train.stdout.split() == [str(checkpoint), 'None'], train.stderr
    test = run_tool('tools/test.py', 'configs/refvlm_stage2.py', str(checkpoint))
    assert test.returncode == 2
    assert test.stderr.splitlines()[-1].endswith(
        f'is a DeepSpeed checkpoint directory; write its weights to one file first: python '
        f'tools/model_converters/consolidate_checkpoint.py {checkpoint} '
        f'{tmp_path / "iter_10"}_weights.pth')
