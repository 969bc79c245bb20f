"""The Pareto front and the pick on known numbers."""

from pathlib import Path

from figures import measured_variant

from optimize.build.variant import Variant
from optimize.choose.select import pareto_front, pick


def _variant(name, p50, cosine, verdict=None, size=1.0, accuracy=None):
    path = Path(f"{name}.onnx")
    return measured_variant(
        name, p50, cosine, verdict=verdict, size=size, path=path, accuracy=accuracy
    )


def test_pick_is_fastest_within_tolerance():
    fast_bad = _variant("fast", 1.0, 0.9, verdict="mean cosine 0.9 < 0.999")
    mid = _variant("mid", 2.0, 0.9995)
    slow = _variant("slow", 3.0, 1.0)
    failed = Variant("failed", None, [], None, "failed", "boom")
    assert pick([slow, failed, fast_bad, mid]) is mid
    assert pick([fast_bad, failed]) is None


def test_pareto_front_drops_dominated_variants():
    a = _variant("a", 1.0, 0.95)
    b = _variant("b", 2.0, 0.99)
    dominated = _variant("c", 2.5, 0.98)
    tie_slower = _variant("d", 3.0, 0.99)
    best = _variant("e", 4.0, 1.0)
    front = pareto_front([best, dominated, b, a, tie_slower])
    assert [v.id for v in front] == ["a", "b", "e"]


def test_accuracy_outranks_cosine_when_labels_exist():
    a = _variant("a", 1.0, 0.999, accuracy=0.90)
    b = _variant("b", 2.0, 0.990, accuracy=0.95)
    assert [v.id for v in pareto_front([a, b])] == ["a", "b"]


def test_a_smaller_variant_stays_on_the_front_though_slower():
    fast = _variant("fast", 1.0, 0.999, size=4.0)
    small = _variant("small", 2.0, 0.999, size=1.0)
    worse = _variant("worse", 2.5, 0.999, size=1.0)
    assert [v.id for v in pareto_front([worse, small, fast])] == ["fast", "small"]


def test_the_pick_of_a_head_to_head_tie_stays_on_the_front():
    from optimize.choose.contest import Contest

    # Measured apart, "a" looks faster than the smaller, equally good "b"; head to head
    # they tie, and the tie goes to the smaller file.
    a = _variant("a", 1.00, 1.0, size=2.0)
    b = _variant("b", 1.02, 1.0, size=1.0)
    assert [v.id for v in pareto_front([a, b])] == ["a", "b"]
    entries = [{"id": "a", "tie": True}, {"id": "b", "tie": True}]
    contest = Contest(9, entries, fastest="a", winner="b")
    assert pick([a, b], contest) is b
    assert [v.id for v in pareto_front([a, b], contest)] == ["b"]
