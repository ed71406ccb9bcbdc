"""Write the trained weights of a run as one plain file when training ends."""
import os.path as osp

from mmengine.dist import barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import MMLogger

from mmrefvlm.registry import HOOKS
from ..checkpoint import consolidate_checkpoint


@HOOKS.register_module()
class FinalWeightsHook(Hook):
    """After training, write the last checkpoint's model weights to ``<work_dir>/<filename>``.

    The next stage's config loads that file (``model.init_cfg=dict(type='Pretrained',
    checkpoint=...)``), so the stage chain names one file whatever the schedule length or the
    strategy: under DeepSpeed the last checkpoint is a directory of per-rank shards
    (consolidated to fp32 master weights here, on rank 0), under DDP a file with optimizer state
    (dropped here). Runs after ``CheckpointHook`` has saved the last iteration.

    Args:
        filename: name of the weights file inside the work dir.
    """

    priority = 'LOWEST'

    def __init__(self, filename: str = 'final_weights.pth') -> None:
        self.filename = filename

    def after_train(self, runner) -> None:
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        barrier()  # every rank has written its shard of the last checkpoint
        if is_main_process():
            if not osp.isfile(pointer):
                raise FileNotFoundError(
                    f'FinalWeightsHook: {pointer} does not exist; keep CheckpointHook with '
                    'save_last=True so that the last iteration is saved')
            with open(pointer) as f:
                last = f.read().strip()
            dst = osp.join(runner.work_dir, self.filename)
            count = consolidate_checkpoint(last, dst)
            MMLogger.get_current_instance().info(
                f'FinalWeightsHook: {count} tensors of {last} written to {dst}')
        barrier()
