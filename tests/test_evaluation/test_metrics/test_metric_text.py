"""Caption/REG scores against a direct pycocoevalcap call, VQA normalisation and soft accuracy,
POPE counts."""
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from mmrefvlm.evaluation.metrics import CaptionMetric, POPEMetric, VQAMetric, caption_scorers
from mmrefvlm.evaluation.metrics.pope_metric import parse_yes_no
from mmrefvlm.evaluation.metrics.vqa_metric import normalize_vqa_answer, vqa_soft_accuracy

CAPTIONS = [
    ('A <Phrase>man</Phrase>(<Unit>box</Unit>[0]<REF>) rides a horse on the beach.',
     ['A man riding a horse on a beach.', 'A person on a horse near the sea.',
      'Someone rides a brown horse along the shore.']),
    ('Two dogs play with a red ball.',
     ['Two dogs playing with a ball.', 'A pair of dogs chase a red ball on grass.']),
    ('', ['A plate of food on a wooden table.', 'Food served on a plate.']),
    ('A cat sleeps on a sofa.', ['A cat sleeping on a couch.']),
]


def test_caption_scores_match_pycocoevalcap_with_all_references(make_sample, evaluate):
    # METEOR's java start-up dominates the runtime: the metric and the direct call share the
    # process's METEOR (the scores are computed independently on it)
    meteor = caption_scorers.shared_meteor()
    samples = [make_sample('caption', pred_text=pred, gt_answer=refs[0], references=refs)
               for pred, refs in CAPTIONS[:3]]
    # REG sample without 'references': falls back to the tag-free gt_answer
    samples.append(make_sample(
        'reg', pred_text=CAPTIONS[3][0],
        gt_answer='<Phrase>A cat sleeping on a couch.</Phrase>(<Unit>box</Unit>[0]<REF>)'))
    out = evaluate([CaptionMetric()], samples)

    tokenizer = PTBTokenizer()
    plain = ['A man rides a horse on the beach.', CAPTIONS[1][0], '']
    gts = tokenizer.tokenize({i: [dict(caption=r) for r in CAPTIONS[i][1]] for i in range(3)})
    res = tokenizer.tokenize({i: [dict(caption=plain[i])] for i in range(3)})
    expected = dict(CIDEr=Cider().compute_score(gts, res)[0],
                    METEOR=meteor.compute_score(gts, res)[0],
                    BLEU=Bleu(4).compute_score(gts, res, verbose=0)[0][3])
    assert out['caption/CIDEr'] == pytest.approx(expected['CIDEr'])
    assert out['caption/METEOR'] == pytest.approx(expected['METEOR'])
    assert out['caption/BLEU-4'] == pytest.approx(expected['BLEU'])
    # single-reference CIDEr (the reference code's fault) would differ
    first_only = {i: gts[i][:1] for i in gts}
    assert Cider().compute_score(first_only, res)[0] != pytest.approx(expected['CIDEr'])
    assert set(out) == {f'{task}/{name}' for task in ('caption', 'reg')
                        for name in ('BLEU-4', 'METEOR', 'CIDEr')}
    assert out['reg/METEOR'] > 0.3  # near-paraphrase of its single reference


def test_one_meteor_process_serves_every_call_and_a_dead_one_is_replaced():
    meteor = caption_scorers.shared_meteor()
    assert caption_scorers.shared_meteor() is meteor
    first = caption_scorers.score_captions(['a red circle'], [['a red circle', 'one circle']],
                                           ('METEOR', ))
    assert caption_scorers.shared_meteor() is meteor
    meteor.meteor_p.kill()
    meteor.meteor_p.wait()
    again = caption_scorers.score_captions(['a red circle'], [['a red circle', 'one circle']],
                                           ('METEOR', ))
    assert caption_scorers.shared_meteor() is not meteor
    assert again == first


@pytest.mark.parametrize('raw, normalised', [
    ('Ten', '10'), ('two', '2'), ('None', '0'), ('the dog', 'dog'), ('A man', 'man'),
    ('yes.', 'yes'), ('Yes!', 'yes'), ('dont', "don't"), ('isnt', "isn't"),
    ('3.5', '3.5'), ('1,000', '1000'), ('red, white', 'red white'), ('left/right', 'left right'),
    ('  an apple\n', 'apple'),
])
def test_official_vqa_normalisation(raw, normalised):
    assert normalize_vqa_answer(raw) == normalised


@pytest.mark.parametrize('humans, expected', [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9),
                                              (4, 1.0), (10, 1.0)])
def test_vqa_soft_accuracy_over_ten_answers(humans, expected):
    answers = ['2'] * humans + ['3'] * (10 - humans)
    assert vqa_soft_accuracy('Two.', answers) == pytest.approx(expected)


def test_vqa_metric_averages_samples(make_sample, evaluate):
    ten = ['yes'] * 2 + ['no'] * 8
    samples = [make_sample('vqa', pred_text='Yes', references=ten, gt_answer='no'),
               make_sample('vqa', pred_text='no', references=ten, gt_answer='no'),
               make_sample('vqa', pred_text='the Blue', gt_answer='blue')]
    out = evaluate([VQAMetric()], samples)
    assert out == {'vqa/accuracy': pytest.approx((0.6 + 1.0 + 1.0) / 3)}


def test_pope_counts(make_sample, evaluate):
    pairs = [('Yes, there is a dog.', 'yes'), ('yes', 'yes'), ('No.', 'yes'),
             ('I cannot tell', 'yes'), ('yes', 'no'), ('no', 'no'), ('No, there is not.', 'no')]
    samples = [make_sample('pope', pred_text=p, gt_answer=g) for p, g in pairs]
    out = evaluate([POPEMetric()], samples)
    tp, fp, fn, tn = 2, 1, 2, 2  # 'I cannot tell' is parsed as no
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert out['pope/accuracy'] == pytest.approx((tp + tn) / 7)
    assert out['pope/precision'] == pytest.approx(precision)
    assert out['pope/recall'] == pytest.approx(recall)
    assert out['pope/f1'] == pytest.approx(2 * precision * recall / (precision + recall))
    assert out['pope/yes_ratio'] == pytest.approx(3 / 7)
    assert out['pope/unparsed_ratio'] == pytest.approx(1 / 7)
    assert parse_yes_no('nope') == 'no' and parse_yes_no('YES') == 'yes'
