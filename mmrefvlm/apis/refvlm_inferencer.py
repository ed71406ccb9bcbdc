"""``REFVLMInferencer``: ask REF-VLM about your own images from Python, in MMDetection's shape.

    from mmrefvlm.apis import REFVLMInferencer
    inferencer = REFVLMInferencer(CONFIG, weights=CHECKPOINT, device='cpu')
    result = inferencer('dog.jpg', texts='Please locate the dog in the image.')
    print(result['predictions'][0]['answer'], result['predictions'][0]['refs'][0]['bbox'])

Like :class:`mmdet.apis.DetInferencer`, ``__call__`` routes its keyword arguments to
``preprocess`` / ``forward`` / ``visualize`` / ``postprocess`` (the ``*_kwargs`` sets) and returns
``{'predictions': [...], 'visualization': [...]}``; ``out_dir`` receives ``preds/NAME.json``
(unless ``no_save_pred``) and ``vis/NAME.png`` (unless ``no_save_vis``).
"""
import os
import os.path as osp
import warnings
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import mmcv
import mmengine
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.infer.infer import BaseInferencer
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
from rich.progress import track
from torch import nn

from mmrefvlm.registry import MODELS
from mmrefvlm.utils.config_refs import read_config, resolve_refs
from .hf_export import is_exported_dir, load_exported, load_exported_config
from .inputs import ImageInput, Request, build_record
from .predictions import prediction_to_dict

InputsType = Union[ImageInput, dict, Sequence[Union[ImageInput, dict]]]


# the image-loading transforms of a test pipeline that the inferencer replaces
IMAGE_LOADERS = ('LoadVTInstructImage', 'LoadImageFromFile')


class REFVLMInferencer(BaseInferencer):
    """Answer questions about images with a REF-VLM model, batched.

    Args:
        model: a config file, a ``Config``, or a directory written by
            ``tools/model_converters/export_hf.py`` (then ``weights`` must be ``None``).
        weights: an MMEngine checkpoint of that config; ``None`` with a config gives a randomly
            initialised model (a warning says so).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``...; ``None`` picks the available one.
        show_progress: show a progress bar over the batches.
    """

    preprocess_kwargs: set = set()
    forward_kwargs: set = set()
    visualize_kwargs: set = {'return_vis', 'show', 'wait_time', 'show_task', 'no_save_vis',
                             'img_out_dir'}
    postprocess_kwargs: set = {'print_result', 'pred_out_dir', 'return_datasamples',
                               'no_save_pred'}

    def __init__(self, model: Union[str, Config], weights: Optional[str] = None,
                 device: Optional[str] = None, show_progress: bool = True) -> None:
        import mmrefvlm  # noqa: F401  (registers every module; deepspeed before transformers)
        init_default_scope('mmrefvlm')
        self._export_dir = model if is_exported_dir(model) else None
        if self._export_dir is not None:
            if weights is not None:
                raise ValueError(f'REFVLMInferencer: {model} is an exported directory and holds '
                                 f'its weights; do not pass weights={weights!r}')
            model = load_exported_config(self._export_dir)
        elif isinstance(model, str) and not osp.isfile(model):
            raise FileNotFoundError(f'REFVLMInferencer: {model} is neither a config file nor an '
                                    'exported directory (config.py + llm/)')
        elif isinstance(model, str):
            model = read_config(model)  # its '${key}' references resolved
        else:
            model = resolve_refs(model)
        self.num_images = 0
        super().__init__(model=model, weights=weights, device=device, scope='mmrefvlm',
                         show_progress=show_progress)

    # ------------------------------------------------------------------------------- set-up
    def _init_model(self, cfg: Config, weights: Optional[str], device: str = 'cpu') -> nn.Module:
        model = MODELS.build(cfg.model)
        if self._export_dir is not None:
            model.dataset_meta = load_exported(model, self._export_dir)
        elif weights is not None:
            checkpoint = _load_checkpoint(weights, map_location='cpu')
            _load_checkpoint_to_model(model, checkpoint)
            model.dataset_meta = checkpoint.get('meta', {}).get('dataset_meta', {})
        else:
            warnings.warn('REFVLMInferencer: no weights given; the model is randomly '
                          'initialised and its answers are noise')
            model.dataset_meta = {}
        model.cfg = cfg
        return model.to(device).eval()

    def _init_pipeline(self, cfg: Config) -> Compose:
        """The config's test pipeline, loading from a path or an array (MMDet's
        ``InferencerLoader``) instead of its image loader (``IMAGE_LOADERS``)."""
        pipeline = [dict(t) for t in cfg.test_dataloader.dataset.pipeline]
        loaders = [i for i, t in enumerate(pipeline) if t['type'] in IMAGE_LOADERS]
        if not loaders:
            raise ValueError('REFVLMInferencer: the test pipeline has no image loader (one of '
                             f'{", ".join(IMAGE_LOADERS)})')
        pipeline[loaders[0]] = dict(type='mmdet.InferencerLoader')
        return Compose(pipeline)

    def _init_collate(self, cfg: Config):
        """The test loader's collate function (``pseudo_collate``; the data preprocessor pads)."""
        return pseudo_collate

    def _init_visualizer(self, cfg: Config):
        """The config's visualiser without storage backends: the inferencer writes its
        pictures itself (``out_dir``)."""
        if 'visualizer' in cfg:
            cfg.visualizer.vis_backends = None
        visualizer = super()._init_visualizer(cfg)
        if visualizer is not None:
            visualizer.dataset_meta = self.model.dataset_meta
        return visualizer

    # ------------------------------------------------------------------------------ running
    def __call__(self, inputs: InputsType, texts: Union[str, Sequence[str], None] = None,
                 task: Optional[str] = None, visual_prompts: Optional[Sequence[dict]] = None,
                 batch_size: int = 1, return_vis: bool = False, show: bool = False,
                 wait_time: float = 0, show_task: bool = False, no_save_vis: bool = False,
                 return_datasamples: bool = False, print_result: bool = False,
                 no_save_pred: bool = True, out_dir: str = '', **kwargs) -> Dict[str, list]:
        """Answer one question per image.

        Args:
            inputs: an image (path, or BGR ``uint8 [H, W, 3]``), a directory of images, or a
                list of them; an item may also be a dict with the fields of
                :class:`mmrefvlm.apis.inputs.Request` (``img``, ``text``, ``task``,
                ``visual_prompts``, ``history``), which win over the arguments below.
            texts: the question, one for all images or one per image.
            task: a task or unit name for every image (see
                :func:`mmrefvlm.apis.inputs.resolve_task`).
            visual_prompts: visual prompts (original pixels) for every image.
            batch_size: images per forward pass (prompts are left padded).
            return_vis: return the pictures (RGB arrays) under ``'visualization'``.
            show: display each picture in a window.
            wait_time: seconds to display it.
            show_task: print the ``<Task>`` block in the pictures.
            no_save_vis: do not write pictures to ``out_dir/vis``.
            return_datasamples: return ``DetDataSample`` s instead of dicts.
            print_result: print the predictions.
            no_save_pred: do not write ``out_dir/preds/NAME.json``.
            out_dir: output directory (nothing is written when empty).

        Returns:
            ``{'predictions': [one dict per image, see mmrefvlm.apis.predictions],
            'visualization': [RGB uint8 [H', W', 3] per image] (empty unless return_vis)}``.
        """
        requests = self._requests(self._inputs_to_list(inputs), texts, task, visual_prompts)
        if no_save_vis and no_save_pred:
            out_dir = ''
        pre, fwd, vis, post = self._dispatch_kwargs(**kwargs)
        results: Dict[str, list] = dict(predictions=[], visualization=[])
        batches = self.preprocess(requests, batch_size=batch_size, **pre)
        for batch_requests, data in (track(batches, description='Inference')
                                     if self.show_progress else batches):
            preds = self.forward(data, **fwd)
            pictures = self.visualize(
                batch_requests, preds, return_vis=return_vis, show=show, wait_time=wait_time,
                show_task=show_task, no_save_vis=no_save_vis, img_out_dir=out_dir, **vis)
            batch = self.postprocess(
                preds, pictures, return_datasamples=return_datasamples,
                print_result=print_result, no_save_pred=no_save_pred, pred_out_dir=out_dir,
                **post)
            results['predictions'].extend(batch['predictions'])
            results['visualization'].extend(batch['visualization'] or [])
        return results

    @staticmethod
    def _requests(inputs: List[Any], texts, task: Optional[str],
                  visual_prompts: Optional[Sequence[dict]]) -> List[Request]:
        """One :class:`Request` per input; dict inputs keep their own fields."""
        if isinstance(texts, str) or texts is None:
            texts = [texts] * len(inputs)
        if len(texts) != len(inputs):
            raise ValueError(f'REFVLMInferencer: {len(texts)} texts for {len(inputs)} images')
        requests = []
        for item, text in zip(inputs, texts):
            fields = dict(item) if isinstance(item, dict) else dict(img=item)
            fields.setdefault('text', text)
            fields.setdefault('task', task)
            fields.setdefault('visual_prompts', list(visual_prompts or []))
            unknown = set(fields) - set(Request.__dataclass_fields__)
            if unknown:
                raise ValueError(f'REFVLMInferencer: unknown input fields {sorted(unknown)}; '
                                 f'known: {sorted(Request.__dataclass_fields__)}')
            if fields['text'] is None:
                raise ValueError('REFVLMInferencer: no question for an image; pass texts= or '
                                 "an input dict with 'text'")
            requests.append(Request(**fields))
        return requests

    def preprocess(self, inputs: List[Request], batch_size: int = 1,
                   **kwargs) -> Iterable[Tuple[List[Request], dict]]:
        """Yield ``(requests, collated pipeline outputs)`` of ``batch_size`` images."""
        for chunk in self._get_chunk_data(iter(inputs), batch_size):
            data = []
            for request in chunk:
                name = self._name(request)
                data.append(self.pipeline(build_record(request, name)))
            yield chunk, self.collate_fn(data)

    def _name(self, request: Request) -> str:
        """A picture/prediction file name: the image's base name, or a running number."""
        self.num_images += 1
        if isinstance(request.img, str):
            return osp.splitext(osp.basename(request.img))[0]
        return f'{self.num_images - 1:08d}'

    @torch.no_grad()
    def forward(self, inputs: dict, **kwargs) -> List[DetDataSample]:
        return self.model.test_step(inputs)

    def visualize(self, inputs: List[Request], preds: List[DetDataSample],
                  return_vis: bool = False, show: bool = False, wait_time: float = 0,
                  show_task: bool = False, no_save_vis: bool = False,
                  img_out_dir: str = '') -> Optional[List[np.ndarray]]:
        """Draw each prediction (``REFVLMVisualizer``) and show / save / return the pictures."""
        if not show and not return_vis and (no_save_vis or not img_out_dir):
            return None
        if self.visualizer is None:
            raise ValueError('REFVLMInferencer: the config has no visualizer; add '
                             "visualizer = dict(type='REFVLMVisualizer')")
        pictures = []
        for request, pred in zip(inputs, preds):
            if isinstance(request.img, str):
                image = mmcv.imread(request.img, channel_order='rgb')
            else:
                image = np.ascontiguousarray(request.img[..., ::-1])
            name = pred.metainfo['img_id']
            out_file = osp.join(img_out_dir, 'vis', f'{name}.png') \
                if img_out_dir and not no_save_vis else None
            self.visualizer.add_datasample(name, image, pred, show=show, wait_time=wait_time,
                                           out_file=out_file, show_task=show_task)
            pictures.append(self.visualizer.get_image())
        return pictures

    def postprocess(self, preds: List[DetDataSample],
                    visualization: Optional[List[np.ndarray]] = None,
                    return_datasamples: bool = False, print_result: bool = False,
                    no_save_pred: bool = True, pred_out_dir: str = '') -> Dict[str, Any]:
        """Predictions as dicts (or data samples); printed and saved as asked."""
        predictions = preds if return_datasamples else [prediction_to_dict(p) for p in preds]
        if print_result:
            print(predictions)
        if pred_out_dir and not no_save_pred:
            os.makedirs(osp.join(pred_out_dir, 'preds'), exist_ok=True)
            for pred in preds:
                mmengine.dump(prediction_to_dict(pred),
                              osp.join(pred_out_dir, 'preds', f'{pred.metainfo["img_id"]}.json'))
        return dict(predictions=predictions, visualization=visualization)
