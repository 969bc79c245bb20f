"""Task metrics accumulated over batches agree with scikit-learn's on real predictions."""

import numpy as np
import pytest
from sklearn import metrics as sk

from optimize.records.metrics import choose_metric, make_metric


def _streamed(name, outputs, labels, batch=37):
    metric = make_metric(name)
    for start in range(0, len(labels), batch):
        metric.update([outputs[start : start + batch]], labels[start : start + batch])
    return metric.result()


@pytest.fixture(scope="module")
def wine_scores():
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression

    x, y = load_wine(return_X_y=True)
    model = LogisticRegression(max_iter=5000).fit(x[::2], y[::2])
    return model.predict_proba(x[1::2]).astype(np.float32), y[1::2].astype(np.int64)


@pytest.fixture(scope="module")
def diabetes_predictions():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    model = Ridge(alpha=0.1).fit(x[::2], y[::2])
    return model.predict(x[1::2]).astype(np.float32)[:, None], y[1::2].astype(np.float32)


def test_classification_metrics_match_sklearn(wine_scores):
    scores, labels = wine_scores
    predicted = scores.argmax(axis=1)
    assert _streamed("top1", scores, labels) == pytest.approx(sk.accuracy_score(labels, predicted))
    assert _streamed("top2", scores, labels) == pytest.approx(
        sk.top_k_accuracy_score(labels, scores, k=2)
    )
    assert _streamed("f1", scores, labels) == pytest.approx(
        sk.f1_score(labels, predicted, average="macro")
    )


def test_regression_metrics_match_sklearn(diabetes_predictions):
    predicted, target = diabetes_predictions
    flat = predicted[:, 0]
    assert _streamed("mse", predicted, target) == pytest.approx(
        sk.mean_squared_error(target, flat), rel=1e-5
    )
    assert _streamed("mae", predicted, target) == pytest.approx(
        sk.mean_absolute_error(target, flat), rel=1e-5
    )
    assert _streamed("r2", predicted, target) == pytest.approx(sk.r2_score(target, flat), rel=1e-4)
    assert not make_metric("mse").higher_is_better and make_metric("r2").higher_is_better


def test_cosine_metric_on_embedding_targets(wine_scores):
    scores, _ = wine_scores
    assert _streamed("cosine", scores, scores) == pytest.approx(1.0)
    assert _streamed("cosine", scores, -scores) == pytest.approx(-1.0)


def test_metric_is_chosen_from_outputs_and_labels(wine_scores, diabetes_predictions):
    scores, labels = wine_scores
    assert choose_metric([scores], labels) == "top1"
    assert choose_metric([diabetes_predictions[0]], diabetes_predictions[1]) == "r2"
    assert choose_metric([scores], scores.copy()) == "cosine"


def test_user_metric_and_bad_names(tmp_path, wine_scores):
    scores, labels = wine_scores
    module = tmp_path / "my_metric.py"
    module.write_text(
        "def balanced(outputs, labels):\n"
        "    from sklearn.metrics import balanced_accuracy_score\n"
        "    return balanced_accuracy_score(labels, outputs[0].argmax(axis=1))\n"
    )
    got = _streamed(f"{module}:balanced", scores, labels)
    assert got == pytest.approx(sk.balanced_accuracy_score(labels, scores.argmax(axis=1)))
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        make_metric("accuracy")
    with pytest.raises(ValueError, match="has no function"):
        make_metric(f"{module}:nothing")
