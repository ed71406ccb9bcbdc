"""Fixtures of the API tests: questions about held-out images of the generated set."""
import json
import os.path as osp

import pytest


@pytest.fixture
def held_out(tiny_data):
    """``held_out(tasks=('rec',), count=4) -> [(image path, question)]``: the first held-out
    records of ``tasks`` in ``tiny_data``."""

    def find(tasks=('rec', ), count=4):
        found = []
        with open(osp.join(tiny_data, 'val.jsonl'), encoding='utf-8') as lines:
            for line in lines:
                record = json.loads(line)
                if record['task'] in tasks and len(found) < count:
                    found.append((osp.join(tiny_data, record['image']),
                                  record['conversations'][0]['value'].replace('<image>', '')))
        return found

    return find
