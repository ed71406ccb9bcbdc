"""Say, before a run, whether a config fits its GPUs.

    python tools/analysis_tools/estimate_memory.py configs/refvlm_stage2.py --gpus 8 --gpu-mem 80
    python tools/analysis_tools/estimate_memory.py configs/refvlm_stage2.py --gpus 8 --gpu-mem 80 \
        --cfg-options strategy=None

The model's parts are built on PyTorch's ``meta`` device: shapes only, no weight file and no
tokenizer is read (the LM's architecture comes from ``<llm_path>/config.json`` when it exists,
else from the config's ``llm_arch``). Per GPU:

* model states under the config's strategy: DeepSpeed's own estimators for ZeRO-2/3
  (``estimate_zero2_model_states_mem_needs`` / ``estimate_zero3_model_states_mem_needs``, over
  the trainable parameters) plus the frozen parameters in bf16 (partitioned under ZeRO-3);
  without a strategy (DDP + ``AmpOptimWrapper``), 16 bytes a trainable parameter (fp32 weight,
  gradient and two AdamW moments) and 4 a frozen one;
* activations of the LM for one micro-batch (``train_dataloader.batch_size`` sequences of
  ``max_length`` tokens) in bf16: with activation checkpointing, every layer's input plus one
  layer's activations during its recomputation (34 values a token and hidden unit, Korthikanti
  et al. 2022, attention scores not stored with SDPA); without it, every layer's; plus the
  logits in bf16 and fp32 for the loss. Vision towers (frozen, no graph) and heads are small
  beside it and not counted.
"""
import argparse
import os.path as osp
from typing import Dict, List, NamedTuple, Optional

import torch
from mmengine.config import Config, DictAction
from torch import nn

GIB = 2**30


class Part(NamedTuple):
    name: str
    trainable: int
    frozen: int
    largest_layer: int  # parameters of the largest leaf module (ZeRO-3's gather unit)


def _without_weight_files(cfg):
    """A copy of a config dict whose ``pretrained`` keys are None (nothing is read)."""
    if isinstance(cfg, dict):
        return {k: None if k == 'pretrained' else _without_weight_files(v)
                for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_without_weight_files(v) for v in cfg)
    return cfg


def lm_config(cfg: Config):
    """The LM's HF config: ``<path>/config.json`` for a local model, the config dict for
    ``type='config'``, else the config's ``llm_arch``."""
    from transformers import AutoConfig
    lm = cfg.model.neck.lm
    if lm.get('type') == 'config':
        arch = dict(lm['config'])
    elif lm.get('path') and osp.isfile(osp.join(lm['path'], 'config.json')):
        return AutoConfig.from_pretrained(lm['path'], local_files_only=True)
    elif cfg.get('llm_arch') is not None:
        arch = dict(cfg.llm_arch)
    else:
        raise FileNotFoundError(
            f"estimate_memory: {lm.get('path')!r} has no config.json and the config sets no "
            '`llm_arch` (the LM architecture as a dict of its HF config.json)')
    arch.setdefault('vocab_size', 32000)
    return AutoConfig.for_model(arch.pop('model_type'), **arch)


def _count(name: str, module: nn.Module) -> Part:
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    largest = max((sum(p.numel() for p in m.parameters(recurse=False))
                   for m in module.modules()), default=0)
    return Part(name, trainable, frozen, largest)


def model_parts(cfg: Config) -> List[Part]:
    """Parameters of the detector's parts, built on the meta device as ``REFVLM`` wires them:
    towers, LM, projector, router and every head (``frozen_modules`` and ``freeze_lm``
    applied)."""
    from transformers import AutoModelForCausalLM

    from mmrefvlm.models.necks.llm_neck import build_projector
    from mmrefvlm.registry import MODELS
    model = cfg.model
    frozen_modules = set(model.get('frozen_modules') or ())
    with torch.device('meta'):
        backbone = MODELS.build(_without_weight_files(model.backbone))
        config = lm_config(cfg)
        lm = AutoModelForCausalLM.from_config(config)
        if model.neck.get('freeze_lm', False):
            lm.requires_grad_(False)
        parts = [_count('backbone', backbone), _count('neck.lm', lm)]
        parts.append(_count('neck.projector', build_projector(
            backbone.global_channels, config.hidden_size, model.neck.get('projector_depth', 2))))
        for unit, head_cfg in (model.get('heads') or {}).items():
            head_cfg = _without_weight_files(head_cfg)  # checkpoints load in init_weights only
            head_cfg.setdefault('in_channels', config.hidden_size)
            head_cfg.setdefault('pyramid_channels', tuple(backbone.pyramid_channels))
            head = MODELS.build(head_cfg)
            if f'heads.{unit}' in frozen_modules:
                head.requires_grad_(False)
            parts.append(_count(f'heads.{unit}', head))
    return parts


def model_state_bytes(parts: List[Part], strategy: Optional[dict], gpus: int,
                      gpus_per_node: int) -> int:
    """Per-GPU bytes of weights, gradients and optimizer states under ``strategy``."""
    trainable = sum(p.trainable for p in parts)
    frozen = sum(p.frozen for p in parts)
    nodes = max(1, gpus // gpus_per_node)
    per_node = min(gpus, gpus_per_node)
    stage = None if strategy is None else strategy.get('zero_optimization', {}).get('stage', 0)
    if stage is None:
        return 16 * trainable + 4 * frozen
    if stage == 3:
        from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
        largest = max(p.largest_layer for p in parts)
        _, gpu_mem, _ = estimate_zero3_model_states_mem_needs(
            trainable, largest, num_gpus_per_node=per_node, num_nodes=nodes, cpu_offload=False,
            cpu_offload_params=False, zero_init=True)
        return int(gpu_mem) + 2 * frozen // gpus
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs
    _, gpu_mem = estimate_zero2_model_states_mem_needs(
        trainable, num_gpus_per_node=per_node, num_nodes=nodes, cpu_offload=False)
    return int(gpu_mem) + 2 * frozen


def activation_bytes(hidden: int, layers: int, vocab: int, tokens: int,
                     checkpointing: bool) -> int:
    """Bytes of the LM's activations for ``tokens`` tokens (micro-batch x sequence length)."""
    per_layer = 34 * tokens * hidden  # bytes of one layer's 16-bit activations
    stored = 2 * tokens * hidden * layers + per_layer if checkpointing else per_layer * layers
    return stored + tokens * vocab * (2 + 4)


def estimate(cfg: Config, gpus: int, gpus_per_node: int = 8) -> Dict[str, object]:
    """Parts, model-state and activation bytes per GPU for ``cfg`` on ``gpus`` GPUs."""
    parts = model_parts(cfg)
    config = lm_config(cfg)
    tokens = cfg.train_dataloader.batch_size * cfg.get('max_length', 2048)
    states = model_state_bytes(parts, cfg.get('strategy'), gpus, gpus_per_node)
    activations = activation_bytes(config.hidden_size, config.num_hidden_layers,
                                   config.vocab_size, tokens,
                                   cfg.model.neck.get('gradient_checkpointing', False))
    return dict(parts=parts, model_states=states, activations=activations,
                total=states + activations)


def format_report(result: Dict[str, object], cfg: Config, gpus: int, gpu_mem_gb: float) -> str:
    parts: List[Part] = result['parts']
    lines = [f'{"module":<18} {"trainable":>14} {"frozen":>14}', '-' * 48]
    for part in parts:
        lines.append(f'{part.name:<18} {part.trainable:>14,} {part.frozen:>14,}')
    lines.append(f'{"total":<18} {sum(p.trainable for p in parts):>14,} '
                 f'{sum(p.frozen for p in parts):>14,}')
    strategy = cfg.get('strategy')
    name = 'DDP + AmpOptimWrapper (no strategy)' if strategy is None else \
        f'{strategy["type"]} ZeRO-{strategy.get("zero_optimization", {}).get("stage", 0)}'
    total = result['total'] / GIB
    fits = total <= gpu_mem_gb
    lines += [
        '',
        f'strategy: {name}, {gpus} GPUs',
        f'model states per GPU: {result["model_states"] / GIB:8.1f} GiB',
        f'activations per GPU:  {result["activations"] / GIB:8.1f} GiB '
        f'(batch {cfg.train_dataloader.batch_size} x {cfg.get("max_length", 2048)} tokens, '
        f'checkpointing {"on" if cfg.model.neck.get("gradient_checkpointing") else "off"})',
        f'total per GPU:        {total:8.1f} GiB of {gpu_mem_gb:g} GiB: '
        + ('fits' if fits else 'does NOT fit'),
    ]
    return '\n'.join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Estimate per-GPU training memory')
    parser.add_argument('config')
    parser.add_argument('--gpus', type=int, required=True, help='GPUs in total')
    parser.add_argument('--gpu-mem', type=float, required=True, help='memory of one GPU, GiB')
    parser.add_argument('--gpus-per-node', type=int, default=8)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. strategy=None')
    return parser.parse_args(argv)


def main(argv=None) -> bool:
    args = parse_args(argv)
    import mmrefvlm  # noqa: F401  (registers every module)
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmrefvlm'))
    result = estimate(cfg, args.gpus, args.gpus_per_node)
    print(format_report(result, cfg, args.gpus, args.gpu_mem))
    return result['total'] / GIB <= args.gpu_mem


if __name__ == '__main__':
    raise SystemExit(0 if main() else 1)
