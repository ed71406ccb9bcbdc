"""Referring expressions of the synthetic scenes: unique, and position words where they hold."""
from mmrefvlm.datasets.synthetic.language import unique_expressions
from mmrefvlm.datasets.synthetic.scene import Scene, Shape


def scene_of(*placed):
    """A 100-px scene of ``(colour, kind, (x, y))`` shapes (centroids only)."""
    shapes = [Shape(colour, kind, 'small', int(x), int(y), 5, 1000, centroid=(x, y))
              for colour, kind, (x, y) in placed]
    return Scene(100, 'plain', None, None, None, shapes)


def test_extreme_shapes_get_one_position_word_per_axis():
    scene = scene_of(('red', 'circle', (10, 50)), ('red', 'circle', (50, 10)),
                     ('red', 'circle', (90, 90)))
    assert set(unique_expressions(scene, 0)) == {'the leftmost red circle', 'the leftmost shape'}
    assert set(unique_expressions(scene, 1)) == {'the topmost red circle', 'the topmost shape'}
    assert set(unique_expressions(scene, 2)) == {
        'the rightmost red circle', 'the rightmost shape', 'the bottommost red circle',
        'the bottommost shape'}


def test_positions_closer_than_the_margin_name_nobody():
    scene = scene_of(('red', 'circle', (10, 50)), ('red', 'circle', (13, 52)),
                     ('blue', 'star', (60, 50)))
    for target in (0, 1):
        assert unique_expressions(scene, target) == []
    assert set(unique_expressions(scene, 2)) == {
        'the blue star', 'the star', 'the blue shape', 'the blue object', 'the rightmost shape'}
