"""Every public entry works whatever the user imports first (fresh processes).

With deepspeed installed, importing transformers' model code before deepspeed dies in an import
cycle; mmrefvlm imports deepspeed first, so any order that reaches mmrefvlm first works."""
import subprocess
import sys

import pytest

SNIPPETS = {
    'plain transformers first':
    'import transformers; import mmrefvlm; from transformers import LlamaForCausalLM',
    'mmdet.models first': 'import mmdet.models; import mmrefvlm; import mmrefvlm.models',
    'trp first, then the LM loader':
    'from mmrefvlm.trp import parse_answer; from mmrefvlm.models.language import '
    'build_causal_lm; from transformers import LlamaForCausalLM',
    'the whole stack (issue acceptance)':
    'import mmrefvlm, mmdet.models, mmcv.ops, mmpretrain, open_clip, transformers, deepspeed; '
    'from mmrefvlm.trp import SPECIAL_TOKENS, compose_answer, parse_answer, TRPParseError',
}


@pytest.mark.slow
@pytest.mark.parametrize('snippet', list(SNIPPETS.values()), ids=list(SNIPPETS))
def test_fresh_process_import(snippet):
    result = subprocess.run([sys.executable, '-c', snippet], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == '', 'importing must not print to stdout'
