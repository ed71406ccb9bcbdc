"""mmrefvlm.trp is pure Python: its modules import only the standard library and themselves."""
import ast
import sys
from pathlib import Path

import mmrefvlm.trp

TRP_DIR = Path(mmrefvlm.trp.__file__).parent


def test_trp_imports_only_the_standard_library():
    sources = sorted(TRP_DIR.glob('*.py'))
    assert {p.name for p in sources} >= {'__init__.py', 'tokens.py', 'compose.py', 'parse.py',
                                         'token_parse.py'}
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                assert module.split('.')[0] in sys.stdlib_module_names, \
                    f'{path.name}:{node.lineno} imports {module}'


def test_public_api():
    expected = {'SPECIAL_TOKENS', 'add_special_tokens', 'special_token_ids', 'compose_triplet',
                'compose_answer', 'compose_cot', 'compose_task_command', 'Triplet',
                'TRPParseError', 'parse_answer', 'cot_items', 'strip_tags', 'TokenTriplet',
                'parse_ref_tokens'}
    assert expected <= set(mmrefvlm.trp.__all__)
    assert all(hasattr(mmrefvlm.trp, name) for name in mmrefvlm.trp.__all__)
