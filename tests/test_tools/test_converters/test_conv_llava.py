"""``llava2vtinstruct.py``: LLaVA-Instruct conversations → multi-turn vqa."""
from PIL import Image


def test_llava_records_sizes_and_skips(convert, data_dir, tmp_path, assert_valid):
    images = tmp_path / 'images'
    images.mkdir()
    Image.new('RGB', (64, 48)).save(images / '000000000002.jpg')
    root = data_dir / 'llava'
    records, summary, out = convert('llava2vtinstruct', root / 'llava_instruct.json',
                                    '--sizes-from', root / 'images.json', '--image-root', images)
    assert [r['id'] for r in records] == ['llava_000000000001', 'llava_000000000002']
    first, second = records
    assert (first['width'], first['height']) == (100, 80)  # from the COCO images list
    assert (second['width'], second['height']) == (64, 48)  # from the image header
    # <image> moved to the front of the first human turn; the rest of the turns kept verbatim
    assert first['conversations'] == [
        {'from': 'human', 'value': '<image>\nWhat is this animal?'},
        {'from': 'gpt', 'value': 'It is a dog.'},
        {'from': 'human', 'value': 'What colour is it?'},
        {'from': 'gpt', 'value': 'Brown.'}]
    assert second['conversations'][0]['value'] == '<image>\nDescribe the scene.'
    assert all(r['task'] == 'vqa' and r['instances'] == [] for r in records)
    assert summary.written == {'vqa': 2}
    assert dict(summary.skipped) == {
        'turns do not alternate human/gpt': 1, 'image of unknown size': 1,
        'conversation without an image': 1, 'turn with TRP tags or <region>': 1}
    assert_valid(out, 2)
