"""Export a REF-VLM checkpoint to HF formats (layout: ``mmrefvlm/apis/hf_export.py``).

    python tools/model_converters/export_hf.py CONFIG CHECKPOINT OUT_DIR [--cfg-options k=v ...]

``OUT_DIR/llm`` loads with ``transformers.AutoModelForCausalLM.from_pretrained``, the tokenizer
with ``AutoTokenizer.from_pretrained(OUT_DIR/tokenizer)``, and the whole model with
``REFVLMInferencer(OUT_DIR)`` or ``demo/image_demo.py IMG PROMPT OUT_DIR``.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from mmengine.config import DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a REF-VLM checkpoint to HF formats')
    parser.add_argument('config', help='config file the checkpoint was trained with')
    parser.add_argument('checkpoint', help='MMEngine checkpoint (.pth)')
    parser.add_argument('out_dir', help='directory to write')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, as in tools/train.py')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    import mmrefvlm  # noqa: F401  (registers every module; deepspeed before transformers)
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

    from mmrefvlm.apis import export_hf
    from mmrefvlm.registry import MODELS
    from mmrefvlm.utils.config_refs import read_config

    cfg = read_config(args.config, args.cfg_options)
    init_default_scope('mmrefvlm')
    model = MODELS.build(cfg.model)
    checkpoint = _load_checkpoint(args.checkpoint, map_location='cpu')
    _load_checkpoint_to_model(model, checkpoint)
    files = export_hf(model.eval(), cfg, args.out_dir,
                      checkpoint.get('meta', {}).get('dataset_meta', {}))
    print(f'exported to {osp.abspath(args.out_dir)}: llm/ and tokenizer/ (save_pretrained), '
          + ', '.join(f'{name} ({n} tensors)' for name, n in sorted(files.items())))
    return args.out_dir


if __name__ == '__main__':
    main()
