"""The run's preprocessing spec, with the statistics it leaves unset fitted on raw data."""

from __future__ import annotations

from pathlib import Path

from optimize.errors import UserError
from passes.preprocess_spec import PreprocessSpec, fit, read_fit_data


def fitted_preprocessing(
    spec: PreprocessSpec | None, fit_data: str | Path | None
) -> PreprocessSpec | None:
    """`spec` with every statistic set: those it states, the rest fitted on `fit_data` (an
    .npz of raw training inputs, one array per input name)."""
    if spec is None or not spec.unfitted():
        return spec
    if fit_data is None:
        missing = ", ".join(spec.unfitted())
        raise UserError(
            f"preprocessing steps {missing} need statistics: state them in the recipe, or "
            'give raw training data to fit them on ([preprocess] fit = "train.npz")'
        )
    path = Path(fit_data)
    if not path.is_file():
        raise UserError(f"preprocessing fit data not found: {path}")
    try:
        return fit(spec, read_fit_data(path))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot fit the preprocessing on {path}: {exc}") from exc
