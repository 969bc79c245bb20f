"""A model file seen before in this output folder: its form and inputs are on record, so a
re-run knows them without loading the model (nor importing PyTorch) until a stage that has
no stored result needs it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from hardware.detect import distribution_versions
from optimize.source.files import file_digest
from optimize.source.load import Source, SourceSpec
from optimize.store import write_json_atomic
from passes.base import TensorSpec


def load_known_source(spec: SourceSpec, cache_dir: Path) -> Source:
    """The source `spec` names, or the Source on record for the same file content and
    loading options, whose model loads on first use. PyTorch sources are put on record;
    ONNX ones load fast."""
    path, model_code = Path(spec.path), spec.model_code
    input_flags = list(spec.input_flags) or None
    files = [path] if path.is_file() else []
    files += [model_code] if model_code is not None and model_code.is_file() else []
    # A newer tool may read (or refuse) the same file differently.
    tool = distribution_versions(("optimize",))
    options = json.dumps([input_flags, spec.trust_pickle, str(model_code), tool, spec.task])
    key = hashlib.sha256((file_digest(files) + options).encode()).hexdigest()[:16] if files else ""
    record = cache_dir / "sources" / f"{key}.json"

    try:
        known = json.loads(record.read_text()) if key else None
    except (OSError, ValueError):
        known = None
    if known is not None:
        inputs = [TensorSpec(i["name"], tuple(i["dims"]), i["dtype"]) for i in known["inputs"]]
        return Source(
            path,
            known["form"],
            inputs,
            None,
            {},
            known["source_id"],
            reload=spec.load,
            max_batch=known.get("max_batch"),
            index_limits=known.get("index_limits", {}),
            spec=spec,
        )
    source = spec.load()
    if key and source.model_kind == "torch":
        record.parent.mkdir(parents=True, exist_ok=True)
        plain = [asdict(spec) for spec in source.inputs]
        write_json_atomic(
            record,
            {
                "form": source.form,
                "inputs": plain,
                "source_id": source.source_id,
                "max_batch": source.max_batch,
                "index_limits": source.index_limits,
            },
        )
    return source
