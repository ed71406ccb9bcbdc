"""``${...}`` references in configs: resolved after every merge, errors name the path."""
import pytest
from mmengine.config import Config

from mmrefvlm.utils.config_refs import ConfigRefError, resolve_refs


def test_whole_string_references_keep_their_type_and_chain():
    cfg = resolve_refs(Config(dict(
        max_iters=1000, warmup='${int(0.03 * max_iters)}', head=dict(size='${max_iters}'),
        schedule=[dict(end='${warmup}'), dict(begin='${warmup}', end='${max_iters + 1}')],
        shape=('${max_iters // 10}', 2), tokenizer=dict(type='x', path='${root}/tok'),
        root='/data', plain='$ and {braces}')))
    assert cfg.warmup == 30 and cfg.head.size == 1000
    assert [dict(s) for s in cfg.schedule] == [dict(end=30), dict(begin=30, end=1001)]
    assert cfg.shape == (100, 2) and cfg.tokenizer.path == '/data/tok'
    assert cfg.plain == '$ and {braces}'


def test_a_reference_follows_the_key_after_the_config_was_parsed():
    cfg = Config(dict(root='/old', dataset=dict(data_root='${root}')))
    cfg.merge_from_dict({'root': '/new'})
    assert resolve_refs(cfg).dataset.data_root == '/new'


@pytest.mark.parametrize('settings, message', [
    (dict(model=dict(lm=dict(path='${llm_pth}')), llm_path='x'),
     r"model.lm.path = '\$\{llm_pth\}': no top-level key 'llm_pth'"),
    (dict(a='${b}', b='${a}'), 'circular reference a -> b -> a'),
    (dict(a=1, b='${__import__("os")}'), r"only top-level keys, numbers"),
    (dict(a=1, b='${a +}'), 'is not an expression'),
])
def test_bad_references_name_the_path(settings, message):
    with pytest.raises(ConfigRefError, match=message):
        resolve_refs(Config(settings))
