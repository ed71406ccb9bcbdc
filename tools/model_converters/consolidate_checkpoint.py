"""Write the model weights of a checkpoint as one plain MMEngine file.

    python tools/model_converters/consolidate_checkpoint.py \
        work_dirs/refvlm_stage2/iter_60000.pth work_dirs/refvlm_stage2/iter_60000_weights.pth

The source is a file (DDP) or a DeepSpeed checkpoint directory (ZeRO-2/3: fp32 master weights
gathered from the ranks' shards, on CPU, no GPU needed). The output loads into ``tools/test.py``
and into the next stage (``model.init_cfg=dict(type='Pretrained', checkpoint=...)``). Training
writes ``<work_dir>/final_weights.pth`` itself at the end (``FinalWeightsHook``); this command
is for the checkpoints in between.
"""
import argparse

from mmrefvlm.engine.checkpoint import consolidate_checkpoint


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='checkpoint file or DeepSpeed checkpoint directory')
    parser.add_argument('dst', help='output .pth file')
    args = parser.parse_args(argv)
    count = consolidate_checkpoint(args.src, args.dst)
    print(f'{count} tensors of {args.src} written to {args.dst}')


if __name__ == '__main__':
    main()
