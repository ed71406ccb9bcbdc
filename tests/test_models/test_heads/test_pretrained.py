"""load_exact_state_dict: every key, no extra one, every shape, or an error naming them."""
import pytest
import torch
from torch import nn

from mmrefvlm.models.heads.pretrained import load_exact_state_dict


def _module():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))


def test_an_exact_state_loads_and_its_keys_are_returned():
    source, target = _module(), nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    keys = load_exact_state_dict(target, source.state_dict(), 'src.pth', 'Owner')
    assert keys == ['0.bias', '0.weight', '1.bias', '1.weight']
    assert torch.equal(target[0].weight, source[0].weight)


def test_missing_unexpected_and_misshaped_keys_are_named_and_nothing_loads():
    target = _module()
    before = target[1].weight.clone()
    state = dict(_module().state_dict())
    del state['0.bias']
    state['2.weight'] = torch.zeros(1)
    state['1.weight'] = torch.zeros(1, 4)
    state['1.bias'] = torch.ones(1)
    with pytest.raises(ValueError) as error:
        load_exact_state_dict(target, state, 'other.pth', 'Owner: part', hint='check the size')
    message = str(error.value)
    assert message.startswith('Owner: part: other.pth does not match')
    assert "1 missing keys ['0.bias']" in message and "1 unexpected keys ['2.weight']" in message
    assert "('1.weight', (1, 4), (1, 3))" in message and message.endswith('(check the size)')
    assert torch.equal(target[1].weight, before) and target[1].bias.item() != 1.0
