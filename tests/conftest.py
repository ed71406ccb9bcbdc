"""Suite-wide guards: no network, offline hubs, deterministic threads."""
import logging
import os
import socket

import pytest
import torch

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

# the suite's tensors are tiny: one thread avoids oversubscription on a shared 2-core machine
torch.set_num_threads(1)

_connect = socket.socket.connect


def _loopback_only(sock, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith('127.') or host in ('localhost', '::1')
                                  or sock.family == socket.AF_UNIX):
        return _connect(sock, address)
    raise RuntimeError(f'tests must not touch the network (tried to connect to {address!r})')


@pytest.fixture(autouse=True, scope='session')
def no_network():
    socket.socket.connect = _loopback_only
    yield
    socket.socket.connect = _connect


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """A small generated VT-Instruct set (64-px scenes, every task) with its tokenizer."""
    from mmrefvlm.datasets.synthetic import generate
    from mmrefvlm.testing import build_generated_tokenizer
    root = str(tmp_path_factory.mktemp('synthetic'))
    generate(root, num_train=60, num_val=34, seed=0, image_size=64,
             progress=lambda items, desc=None: items)
    build_generated_tokenizer(root)
    return root


def shrink_tiny_config(cfg):
    """The tiny config at test size: 64-px canvas, 2-layer LM, 1-layer heads, data read in the
    main process. Pipelines are rewritten in place, as a user's ``--cfg-options`` would."""
    from mmrefvlm.testing import shrink_decoder
    cfg.model.backbone.update(channels=(8, 16, 32, 64), image_size=64, global_pool=None)
    cfg.model.neck.lm.config.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                    num_attention_heads=2, num_key_value_heads=2)
    cfg.model.neck.max_new_tokens = 24
    for head in cfg.model.heads.values():
        if 'decoder' in head:
            head.decoder = shrink_decoder(head.decoder)
        if 'embed_dims' in head:
            head.embed_dims = 32
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.num_workers = 0
        loader.persistent_workers = False
        for transform in loader.dataset.pipeline:
            if transform['type'] == 'ResizePadToCanvas':
                transform['size'] = 64
    return cfg


@pytest.fixture
def tiny_cfg(tiny_data):
    """A fresh copy of the tiny config shrunk to test size, reading ``tiny_data``."""
    from mmrefvlm.testing import tiny_config
    return shrink_tiny_config(tiny_config(tiny_data))


class _WarningCapture(logging.Handler):
    """Collects the messages of WARNING and above."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def mmengine_warnings():
    """The warnings logged to MMEngine's current logger during the test (a list, filled live)."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    capture = _WarningCapture()
    logger.addHandler(capture)
    yield capture.messages
    logger.removeHandler(capture)


def pytest_collection_modifyitems(items):
    """Files holding ``slow`` tests first, the rest in their usual order: ``make test`` hands
    whole files to its workers (``-n``, ``--dist loadfile``) in this order, so the long ones start
    at once and the short ones fill in behind them."""
    slow_files = {item.path for item in items if item.get_closest_marker('slow')}
    items.sort(key=lambda item: item.path not in slow_files)
