"""Stored results: reused under the key they were taken with, measured again otherwise."""

from optimize.measure.cache import load_result, store_result


def test_a_result_is_reused_only_under_its_key(tmp_path):
    path = tmp_path / "rows" / "a.json"
    assert load_result(path, "k") is None
    store_result(path, "k", {"p50_ms": 1.5})
    assert load_result(path, "k") == {"p50_ms": 1.5}
    assert load_result(path, "other machine") is None


def test_a_damaged_store_is_measured_again_not_an_error(tmp_path):
    path = tmp_path / "a.json"
    for text in ("{not json", "[1, 2]", ""):
        path.write_text(text)
        assert load_result(path, "k") is None
