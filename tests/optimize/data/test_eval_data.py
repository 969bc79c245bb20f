"""Evaluation data in its three forms, streamed in batches, on scikit-learn's wine data."""

import numpy as np
import pytest

from optimize.data.eval_data import open_eval_data
from optimize.data.eval_store import write_eval_store
from optimize.errors import UserError
from passes.base import TensorSpec

SPEC = [TensorSpec("x", ("batch", 13))]


@pytest.fixture(scope="module")
def wine():
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    return x.astype(np.float32), y.astype(np.int64)


def _joined(data):
    parts = list(data.batches)
    return np.concatenate([p[0]["x"] for p in parts]), np.concatenate([p[1] for p in parts])


def test_npz_streams_every_row_in_batches_and_notes_extra_arrays(tmp_path, wine):
    x, y = wine
    path = tmp_path / "wine.npz"
    np.savez(path, x=x, labels=y, ids=np.arange(len(x)))
    data = open_eval_data(path, SPEC, batch=50)
    sizes = []
    got_x, got_y = [], []
    for feeds, labels in data.batches:
        sizes.append(len(labels))
        got_x.append(feeds["x"])
        got_y.append(labels)
    assert sizes == [50, 50, 50, 28]
    np.testing.assert_array_equal(np.concatenate(got_x), x)
    np.testing.assert_array_equal(np.concatenate(got_y), y)
    assert any("ids" in note and "ignored" in note for note in data.notes)


def test_npy_folder_is_memory_mapped_and_cast_to_the_input_dtype(tmp_path, wine):
    x, y = wine
    np.save(tmp_path / "x.npy", x.astype(np.float64))
    np.save(tmp_path / "labels.npy", y)
    data = open_eval_data(tmp_path, SPEC, batch=64)
    assert "memory-mapped" in data.description
    got_x, got_y = _joined(data)
    assert got_x.dtype == np.float32
    np.testing.assert_allclose(got_x, x)
    np.testing.assert_array_equal(got_y, y)


def test_callable_yields_batches_of_any_size(tmp_path, wine, monkeypatch):
    x, y = wine
    np.save(tmp_path / "wine_x.npy", x)
    np.save(tmp_path / "wine_y.npy", y)
    module = tmp_path / "wine_data.py"
    module.write_text(
        "import numpy as np\n"
        f"X = np.load(r'{tmp_path / 'wine_x.npy'}')\n"
        f"Y = np.load(r'{tmp_path / 'wine_y.npy'}')\n"
        "def batches(batch_size):\n"
        "    for start in range(0, len(X), 7):\n"
        "        yield {'x': X[start:start + 7]}, Y[start:start + 7]\n"
    )
    data = open_eval_data(f"{module}:batches", SPEC, batch=32)
    store = write_eval_store(tmp_path / "store", data.batches, 32, lambda f: [f["x"] * 2])
    assert store.samples == len(x) and store.labelled
    stored = list(store.batches())
    # Re-cut to the run's batch size whatever size the user's function yields.
    assert [len(b.labels) for b in stored] == [32] * 5 + [18]
    np.testing.assert_allclose(np.concatenate([b.reference[0] for b in stored]), x * 2)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in stored]), y)


def test_bad_data_fails_with_one_clear_line(tmp_path, wine):
    x, _ = wine
    np.savez(tmp_path / "bad.npz", features=x)
    with pytest.raises(UserError, match="lacks arrays for model input"):
        open_eval_data(tmp_path / "bad.npz", SPEC, 16)
    np.savez(tmp_path / "short.npz", x=x, labels=np.zeros(3, np.int64))
    with pytest.raises(UserError, match="differ in their first"):
        open_eval_data(tmp_path / "short.npz", SPEC, 16)
    with pytest.raises(UserError, match="not found"):
        open_eval_data(tmp_path / "missing.npz", SPEC, 16)
    with pytest.raises(ValueError, match="cannot import"):
        open_eval_data("no_such_module_here:batches", SPEC, 16)
