"""load_exact_state_dict: every key, no extra one, every shape, or an error naming them."""
import pytest
import torch
from torch import nn

from mmrefvlm.models.heads.pretrained import Renormalise, load_exact_state_dict


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


def test_renormalise_maps_one_normalisation_to_another():
    mean, std = [127.5, 120.0, 110.0], [127.5, 60.0, 50.0]
    target_mean, target_std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    pixels = torch.rand(2, 3, 4, 5) * 255
    as_input = (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    expected = (pixels - torch.tensor(target_mean).view(1, 3, 1, 1)) / torch.tensor(
        target_std).view(1, 3, 1, 1)
    renormalised = Renormalise(mean, std, target_mean, target_std)(as_input.half())
    assert renormalised.dtype == torch.float32
    torch.testing.assert_close(renormalised, expected, atol=2e-2, rtol=1e-3)
