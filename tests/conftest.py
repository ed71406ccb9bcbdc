"""Suite-wide guards: no network, offline hubs, deterministic threads."""
import os
import socket

import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

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
