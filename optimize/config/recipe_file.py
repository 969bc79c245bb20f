"""The recipe file (optimize.toml): everything a run needs, read, written back and summarised."""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from hardware.profile import TimingBudget
from hardware.targets import parse_target
from optimize.config.chains import Chain
from optimize.errors import UserError
from optimize.measure.fidelity import Tolerance
from optimize.source.input_spec import parse_input_flag
from passes.base import DTYPES, Pass
from passes.export import ExportToOnnx
from passes.fp16 import Float16
from passes.onnxscript_optimize import OnnxscriptOptimize
from passes.ort_graph import OrtGraphOptimize
from passes.preprocess_spec import PreprocessSpec, parse_preprocessing
from passes.prune_magnitude import PruneMagnitude
from passes.prune_structured import PruneStructured
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_int4 import QuantizeInt4
from passes.quantize_static import QuantizeStatic

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 has no tomllib; tomli is the same parser
    import tomli as tomllib

DEFAULT_NAME = "optimize.toml"

# The passes a [[chains]] table may name, by their `name`. Export is not among them: the
# run puts it in front of every chain for PyTorch sources by itself.
PASSES: dict[str, type[Pass]] = {
    cls.name: cls
    for cls in (
        OrtGraphOptimize,
        OnnxscriptOptimize,
        QuantizeDynamic,
        QuantizeStatic,
        QuantizeInt4,
        Float16,
        PruneStructured,
        PruneMagnitude,
    )
}

TOP_KEYS = (
    "model",
    "target",
    "out",
    "model_code",
    "trust_pickle",
    "builtin",
    "inputs",
    "data",
    "limits",
    "measure",
    "prune",
    "preprocess",
    "chains",
)
INPUT_KEYS = ("name", "dims", "dtype")
DATA_KEYS = ("eval", "calibration", "metric")
LIMIT_KEYS = (
    "max_accuracy_drop",
    "max_relative_accuracy_drop",
    "min_cosine",
    "max_latency_ms",
    "max_size_mb",
    "max_memory_mb",
)
MEASURE_KEYS = ("seconds", "torch_runtimes")
PRUNE_KEYS = ("ratios", "finetune")
CHAIN_KEYS = ("why", "passes")


@dataclass(frozen=True)
class Limits:
    """What a variant must meet to be picked: accuracy drop in points (with labels) or mean
    output cosine (without), and optional latency and size ceilings."""

    max_accuracy_drop: float = Tolerance().max_accuracy_drop
    min_cosine: float = Tolerance().min_cosine
    max_latency_ms: float | None = None
    max_size_mb: float | None = None
    max_relative_accuracy_drop: float | None = None
    max_memory_mb: float | None = None

    def tolerance(self) -> Tolerance:
        """The limits as the run's Tolerance."""
        return Tolerance(
            min_cosine=self.min_cosine,
            max_accuracy_drop=self.max_accuracy_drop,
            max_latency_ms=self.max_latency_ms,
            max_size_mb=self.max_size_mb,
            max_relative_accuracy_drop=self.max_relative_accuracy_drop,
            max_memory_mb=self.max_memory_mb,
        )


@dataclass(frozen=True)
class Recipe:
    """A run as a recipe file states it; paths are absolute, resolved against the file's
    folder, and `inputs` are `NAME:DIMS[:DTYPE]` texts as `--input` takes them."""

    model: Path
    target: str = "cpu"
    out: Path | None = None
    inputs: list[str] = field(default_factory=list)
    eval_data: Path | str | None = None  # a path, or module:function yielding batches
    calibration_data: Path | str | None = None
    metric: str | None = None
    limits: Limits = Limits()
    measure_seconds: float = TimingBudget().measure_s
    torch_runtimes: bool = True
    trust_pickle: bool = False
    model_code: Path | None = None
    builtin: bool = True
    chains: list[Chain] = field(default_factory=list)
    # The structured-pruning sweep's ratios (none: no sweep) and its fine-tuning function.
    prune_ratios: tuple[float, ...] = ()
    finetune: str = ""
    # Preprocessing compiled in front of the model, and raw data to fit its statistics on.
    preprocess: PreprocessSpec | None = None
    preprocess_fit: Path | None = None


def load_recipe(path: Path) -> Recipe:
    """Read and check a recipe file; any problem is an UserError naming the file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{path}: no recipe file here; write one (see examples/optimize.toml)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the recipe file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from exc
    return _Reader(path).recipe(data)


class _Reader:
    """Turns parsed TOML into a Recipe, failing with the file and key path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.absolute().parent

    def fail(self, where: str, problem: str) -> NoReturn:
        raise UserError(f"{self.path}: {where}: {problem}")

    def recipe(self, data: dict[str, Any]) -> Recipe:
        self.check_keys(data, TOP_KEYS, "")
        if "model" not in data:
            self.fail("model", "required key is missing (the model file, relative to the recipe)")
        target = self.get(data, "target", str, "", "cpu")
        try:
            target = str(parse_target(target))
        except ValueError as exc:
            self.fail("target", str(exc))
        sections = {
            key: self.get(data, key, dict, "", {}) for key in ("data", "limits", "measure", "prune")
        }
        self.check_keys(sections["data"], DATA_KEYS, "data")
        self.check_keys(sections["measure"], MEASURE_KEYS, "measure")
        self.check_keys(sections["prune"], PRUNE_KEYS, "prune")
        builtin = self.get(data, "builtin", bool, "", True)
        chains = [
            self.chain(table, f"chains[{i}]") for i, table in enumerate(self.tables(data, "chains"))
        ]
        if not builtin and not chains:
            self.fail("builtin", "false leaves nothing to try; add [[chains]] or set it true")
        return Recipe(
            model=self.path_at(data, "model", ""),
            target=target,
            out=self.path_at(data, "out", ""),
            inputs=self.inputs(self.tables(data, "inputs")),
            eval_data=self.data_at(sections["data"], "eval"),
            calibration_data=self.data_at(sections["data"], "calibration"),
            metric=self.get(sections["data"], "metric", str, "data", None),
            limits=self.limits(sections["limits"]),
            measure_seconds=self.positive(
                sections["measure"], "seconds", "measure", TimingBudget().measure_s
            ),
            torch_runtimes=self.get(sections["measure"], "torch_runtimes", bool, "measure", True),
            trust_pickle=self.get(data, "trust_pickle", bool, "", False),
            model_code=self.path_at(data, "model_code", ""),
            builtin=builtin,
            chains=chains,
            prune_ratios=self.ratios(sections["prune"]),
            preprocess=self.preprocess(self.get(data, "preprocess", dict, "", {})),
            preprocess_fit=self.path_at(
                self.get(data, "preprocess", dict, "", {}), "fit", "preprocess"
            ),
            finetune=self.get(sections["prune"], "finetune", str, "prune", ""),
        )

    def preprocess(self, table: dict[str, Any]) -> PreprocessSpec | None:
        steps = {k: v for k, v in table.items() if k != "fit"}
        if not steps:
            return None
        try:
            return parse_preprocessing(steps)
        except ValueError as exc:
            self.fail("preprocess", str(exc))

    def ratios(self, table: dict[str, Any]) -> tuple[float, ...]:
        ratios = self.get(table, "ratios", tuple[float, ...], "prune", ())
        if not all(0 < r < 1 for r in ratios):
            self.fail("prune.ratios", "expected fractions between 0 and 1, e.g. [0.1, 0.3, 0.5]")
        return tuple(sorted(set(ratios)))

    def check_keys(self, table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in known:
                self.fail(
                    _join(where, key),
                    f"unknown key{_did_you_mean(key, known)}; known: {', '.join(known)}",
                )

    def get(self, table: dict[str, Any], key: str, kind: Any, where: str, default: Any) -> Any:
        if key not in table:
            return default
        return self.coerce(table[key], kind, _join(where, key))

    def coerce(self, value: Any, kind: Any, where: str) -> Any:
        """`value` as `kind` (a type hint of a recipe or pass field); ints pass as floats and
        arrays as tuples, nothing else is converted."""
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            if not isinstance(value, list):
                self.fail(where, f"expected an array, got {_show(value)}")
            return tuple(
                self.coerce(item, args[0], f"{where}[{i}]") for i, item in enumerate(value)
            )
        if origin in (typing.Union, types.UnionType):
            # TOML has no null, so an optional field's value is its other member's.
            members = [a for a in args if a is not type(None)]
            return self.coerce(value, members[0], where) if len(members) == 1 else value
        checks = {
            bool: ("true or false", isinstance(value, bool)),
            int: ("an integer", isinstance(value, int) and not isinstance(value, bool)),
            float: ("a number", isinstance(value, (int, float)) and not isinstance(value, bool)),
            str: ("a string", isinstance(value, str)),
            dict: ("a table", isinstance(value, dict)),
        }
        if kind in checks:
            expected, ok = checks[kind]
            if not ok:
                self.fail(where, f"expected {expected}, got {_show(value)}")
            return float(value) if kind is float else value
        return value  # a hint this file does not know: the pass's own checks have the word

    def positive(self, table: dict[str, Any], key: str, where: str, default: float) -> float:
        value = self.get(table, key, float, where, default)
        if not (math.isfinite(value) and value > 0):
            self.fail(_join(where, key), f"expected a number above 0, got {_show(value)}")
        return value

    def path_at(self, table: dict[str, Any], key: str, where: str) -> Path | None:
        text = self.get(table, key, str, where, None)
        if text is None:
            return None
        if not text.strip():
            self.fail(_join(where, key), "expected a path, got an empty string")
        return (self.base / Path(text).expanduser()).resolve()

    def data_at(self, table: dict[str, Any], key: str) -> Path | str | None:
        """A data path, or `module:function` (a .py module path resolved like any path)."""
        text = self.get(table, key, str, "data", None)
        module, sep, function = (text or "").rpartition(":")
        if not sep or not function.isidentifier() or len(module) < 2:
            return self.path_at(table, key, "data")
        if module.endswith(".py"):
            module = str((self.base / Path(module).expanduser()).resolve())
        return f"{module}:{function}"

    def tables(self, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list):
            self.fail(key, f"expected an array of tables ([[{key}]]), got {_show(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                self.fail(f"{key}[{i}]", f"expected a table, got {_show(item)}")
        return value

    def limits(self, table: dict[str, Any]) -> Limits:
        self.check_keys(table, LIMIT_KEYS, "limits")
        default = Limits()
        drop = self.get(table, "max_accuracy_drop", float, "limits", default.max_accuracy_drop)
        if not 0 <= drop <= 100:
            self.fail(
                "limits.max_accuracy_drop", f"expected points from 0 to 100, got {_show(drop)}"
            )
        cosine = self.get(table, "min_cosine", float, "limits", default.min_cosine)
        if not -1 <= cosine <= 1:
            self.fail("limits.min_cosine", f"expected a cosine from -1 to 1, got {_show(cosine)}")
        ceilings = {
            key: self.positive(table, key, "limits", 1.0) if key in table else None
            for key in (
                "max_latency_ms",
                "max_size_mb",
                "max_relative_accuracy_drop",
                "max_memory_mb",
            )
        }
        return Limits(drop, cosine, **ceilings)

    def inputs(self, tables: list[dict[str, Any]]) -> list[str]:
        texts: list[str] = []
        names: list[str] = []
        for i, table in enumerate(tables):
            where = f"inputs[{i}]"
            self.check_keys(table, INPUT_KEYS, where)
            for key in ("name", "dims"):
                if key not in table:
                    self.fail(f"{where}.{key}", "required key is missing")
            name = self.coerce(table["name"], str, f"{where}.name")
            if not name or ":" in name or name != name.strip():
                self.fail(
                    f"{where}.name",
                    f"expected a name without ':' or spaces around it, got {_show(name)}",
                )
            if name in names:
                self.fail(f"{where}.name", f"{_show(name)} is given twice; give each input once")
            dims = self.coerce(table["dims"], tuple[Any, ...], f"{where}.dims")
            if not dims:
                self.fail(f"{where}.dims", "expected at least one dim")
            for d, dim in enumerate(dims):
                size = isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0
                if not (size or (isinstance(dim, str) and dim.isidentifier())):
                    self.fail(
                        f"{where}.dims[{d}]",
                        f"expected a size (0 or more) or a name like 'batch', got {_show(dim)}",
                    )
            text = f"{name}:{','.join(str(d) for d in dims)}"
            if "dtype" in table:
                # Only a dtype the file states is passed on: the loader treats an unstated one
                # as an assumption, not a claim to check against an ONNX graph.
                dtype = self.coerce(table["dtype"], str, f"{where}.dtype")
                if dtype not in DTYPES:
                    self.fail(
                        f"{where}.dtype",
                        f"unknown dtype {_show(dtype)}; known: {', '.join(DTYPES)}",
                    )
                text += f":{dtype}"
            try:
                parse_input_flag(text)
            except UserError as exc:
                self.fail(where, str(exc))
            texts.append(text)
            names.append(name)
        return texts

    def chain(self, table: dict[str, Any], where: str) -> Chain:
        self.check_keys(table, CHAIN_KEYS, where)
        if "why" not in table:
            self.fail(f"{where}.why", "required key is missing (say why the chain is worth trying)")
        if "passes" not in table:
            self.fail(
                f"{where}.passes", 'required key is missing (e.g. passes = [{pass = "ort_graph"}])'
            )
        why = self.coerce(table["why"], str, f"{where}.why")
        entries = self.coerce(table["passes"], tuple[Any, ...], f"{where}.passes")
        passes = tuple(self.pass_(entry, f"{where}.passes[{i}]") for i, entry in enumerate(entries))
        return Chain(passes, why)

    def pass_(self, entry: Any, where: str) -> Pass:
        if isinstance(entry, str):
            entry = {"pass": entry}  # a bare name is the pass with its default options
        if not isinstance(entry, dict):
            self.fail(where, f'expected a table like {{pass = "ort_graph"}}, got {_show(entry)}')
        if "pass" not in entry:
            self.fail(f"{where}.pass", "required key is missing (the pass name)")
        name = self.coerce(entry["pass"], str, f"{where}.pass")
        if name == ExportToOnnx.name:
            self.fail(where, "export runs before every chain by itself; leave it out")
        if name not in PASSES:
            self.fail(
                where,
                f"unknown pass {_show(name)}{_did_you_mean(name, PASSES)}; known: {', '.join(sorted(PASSES))}",
            )
        cls = PASSES[name]
        hints = typing.get_type_hints(cls)
        fields = tuple(f.name for f in dataclasses.fields(cls))
        options = {k: v for k, v in entry.items() if k != "pass"}
        for key in options:
            if key not in fields:
                known = ", ".join(fields) or "none"
                self.fail(
                    f"{where}.{key}",
                    f"unknown option of {name}{_did_you_mean(key, fields)}; known: {known}",
                )
        options = {k: self.coerce(v, hints[k], f"{where}.{k}") for k, v in options.items()}
        try:
            return cls(**options)
        except ValueError as exc:  # the pass's own __post_init__ checks
            self.fail(where, str(exc))


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _did_you_mean(word: str, known: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: Any) -> str:
    """A value as the message shows it: strings quoted, containers by their kind."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value) if isinstance(value, str) else str(value)


def with_overrides(recipe: Recipe, limits: dict[str, float | None], **fields) -> Recipe:
    """The recipe with the fields and limits a user gave on the command line; None means
    not given, so the recipe's value stands."""
    given = {k: v for k, v in fields.items() if v is not None}
    given_limits = {k: v for k, v in limits.items() if v is not None}
    return dataclasses.replace(
        recipe, limits=dataclasses.replace(recipe.limits, **given_limits), **given
    )
