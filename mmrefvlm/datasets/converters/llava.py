"""LLaVA-Instruct conversations (``llava_instruct_150k.json``) → multi-turn ``vqa`` records.

Entries are ``{id, image, conversations: [{from: human|gpt, value}, ...]}`` with ``<image>``
somewhere in the first human turn. The conversation is kept as it is, except that every
``<image>`` is removed and one is put at the start of the first human turn (``'<image>\\n...'``,
LLaVA's own layout). The file has no image sizes: they come from COCO ``instances_*.json``
files (LLaVA-Instruct uses COCO train2017 images) or from the image headers under ``image_root``.
"""
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence

from ..renderers import ImageInfo, add_turns, build_record
from .coco_annotations import ImageSizes, load_json
from .output import ConversionSummary

_ROLES = ('human', 'gpt')


def normalized_turns(conversations: Sequence[Dict]) -> Optional[List[tuple]]:
    """``[(human, gpt), ...]`` with ``<image>`` moved to the start of the first human turn.

    Returns ``None`` when the turns do not alternate human/gpt starting with human and ending
    with gpt.
    """
    if not conversations or len(conversations) % 2:
        return None
    for i, turn in enumerate(conversations):
        if turn.get('from') != _ROLES[i % 2] or not isinstance(turn.get('value'), str):
            return None
    values = [turn['value'] for turn in conversations]
    humans = [value.replace('<image>', '').strip() for value in values[0::2]]
    humans[0] = '<image>\n' + humans[0]
    return list(zip(humans, values[1::2]))


def convert_llava(ann_file: str,
                  summary: ConversionSummary,
                  sizes: ImageSizes,
                  id_prefix: str = 'llava',
                  image_prefix: str = '',
                  progress: Callable[[Iterable], Iterable] = iter) -> Iterator[Dict]:
    """Yield one ``vqa`` record per LLaVA-Instruct conversation.

    Args:
        ann_file: the LLaVA-Instruct JSON (a list of entries).
        summary: counts skipped entries (per reason).
        sizes: image sizes, looked up by the entry's ``image``.
        id_prefix: record ids are ``'{id_prefix}_{entry id}'``.
        image_prefix: prepended to ``image`` for the record's ``image``.
        progress: wraps the entry loop (e.g. ``tqdm``).
    """
    for entry in progress(load_json(ann_file)):
        if not entry.get('image'):
            summary.skip('conversation without an image')
            continue
        size = sizes.get(entry['image'])
        if size is None:
            summary.skip('image of unknown size')
            continue
        turns = normalized_turns(entry.get('conversations', []))
        if turns is None:
            summary.skip('turns do not alternate human/gpt')
            continue
        info = ImageInfo(id=f'{id_prefix}_{entry["id"]}', path=image_prefix + entry['image'],
                         width=size[0], height=size[1])
        try:
            records = [build_record('vqa', info, [], human, answer, record_id=info.id)
                       for human, answer in turns]
        except ValueError:
            summary.skip('turn with TRP tags or <region>')
            continue
        yield add_turns(records[0], *records[1:])
