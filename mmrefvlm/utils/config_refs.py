"""Config values derived from top-level keys, resolved after every override.

MMEngine fixes a config's values while it parses the file: a Python variable and
``{{_base_.llm_path}}`` are both copied into every place that uses them, and ``--cfg-options``
sets the one path it names. A user key such as ``data_root`` or ``llm_path`` would then move only
itself, while the datasets, tokenizer, LM and towers kept the old value: a wrong run that exits 0.
(MMEngine's lazy ``{{ }}`` references are substituted at parse time too, so they do not survive a
child config or ``--cfg-options`` either.)

Hence references that survive parsing and merging, resolved once the config is final:

- ``'${key}'`` is the value of the top-level ``key`` (any type: a path, a number, a dict);
- ``'${data_root}/tokenizer'`` formats the value into the string;
- ``'${int(0.03 * max_iters)}'``: arithmetic (``+ - * / // %``, ``int``, ``round``, ``min``,
  ``max``) over top-level keys, for values derived from a key (warm-up, intervals).

A top-level key may itself be a reference (``warmup_iters = '${int(0.03 * max_iters)}'``).
:func:`read_config` reads a config file, merges ``--cfg-options`` and resolves: every tool reads
configs through it, so ``--cfg-options data_root=...`` and a child config that sets ``data_root``
move the same consumers.
"""
import ast
import operator
import re
from typing import Any, Callable, Dict, Optional, Tuple

from mmengine.config import Config

_REF = re.compile(r'\$\{([^{}]+)\}')
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_FUNCTIONS = {'int': int, 'round': round, 'min': min, 'max': max}


class ConfigRefError(ValueError):
    """A reference names no top-level key, is not an expression we evaluate, or is circular."""


def read_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile(path)``, then ``cfg_options`` merged, then every reference resolved.

    Args:
        path: the config file.
        cfg_options: ``--cfg-options`` as ``{dotted.key: value}``.
    """
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return resolve_refs(cfg)


def resolve_refs(cfg: Config) -> Config:
    """Replace every ``${...}`` reference of ``cfg`` (in place) by its value; returns ``cfg``.

    Raises:
        ConfigRefError: naming the config path of the bad reference.
    """
    top = cfg.to_dict()
    resolved: Dict[str, Any] = {}

    def lookup(name: str, chain: Tuple[str, ...]) -> Any:
        if name in resolved:
            return resolved[name]
        if name not in top:
            raise ConfigRefError(f'no top-level key {name!r}')
        if name in chain:
            raise ConfigRefError(f'circular reference {" -> ".join(chain + (name, ))}')
        resolved[name] = _resolve(top[name], name, lambda n: lookup(n, chain + (name, )))
        return resolved[name]

    for key in top:
        value = lookup(key, ())
        if value is not top[key]:
            cfg[key] = value
    return cfg


def _resolve(value: Any, where: str, lookup: Callable[[str], Any]) -> Any:
    """``value`` with its references replaced (new containers only where something changed)."""
    if isinstance(value, str):
        return _resolve_string(value, where, lookup)
    if isinstance(value, dict):
        items = {k: _resolve(v, f'{where}.{k}', lookup) for k, v in value.items()}
        return value if all(items[k] is value[k] for k in value) else type(value)(items)
    if isinstance(value, (list, tuple)):
        items = [_resolve(v, f'{where}[{i}]', lookup) for i, v in enumerate(value)]
        return value if all(a is b for a, b in zip(items, value)) else type(value)(items)
    return value


def _resolve_string(text: str, where: str, lookup: Callable[[str], Any]) -> Any:
    try:
        whole = _REF.fullmatch(text)
        if whole:
            return _evaluate(whole.group(1), lookup)
        if '${' not in text:
            return text
        return _REF.sub(lambda m: str(_evaluate(m.group(1), lookup)), text)
    except ConfigRefError as error:
        raise ConfigRefError(f'config: {where} = {text!r}: {error}') from None


def _evaluate(expression: str, lookup: Callable[[str], Any]) -> Any:
    try:
        tree = ast.parse(expression.strip(), mode='eval')
    except SyntaxError:
        raise ConfigRefError(f'{expression!r} is not an expression') from None
    return _evaluate_node(tree.body, lookup)


def _evaluate_node(node: ast.AST, lookup: Callable[[str], Any]) -> Any:
    if isinstance(node, ast.Name):
        return lookup(node.id)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_evaluate_node(node.left, lookup),
                                      _evaluate_node(node.right, lookup))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate_node(node.operand, lookup)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS and not node.keywords):
        return _FUNCTIONS[node.func.id](*(_evaluate_node(a, lookup) for a in node.args))
    raise ConfigRefError(f'{ast.unparse(node)!r}: only top-level keys, numbers, + - * / // %, '
                         f'and {", ".join(_FUNCTIONS)} are allowed')
