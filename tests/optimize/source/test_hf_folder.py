"""Hugging Face model folders, as save_pretrained writes them: run from disk alone, their
text inputs inferred, the model for its task exported and matching transformers, the
tokenizer handed on, the folder untouched; a Hub id or a task with no head is one line."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from cli_runs import assert_refused
from typer.testing import CliRunner

from optimize.cli import app
from optimize.errors import UserError
from optimize.source.hf_files import folder_files
from optimize.source.load import load_source

transformers = pytest.importorskip("transformers")

SEQUENCE = 32


def _tiny_bert(folder, head: bool):
    """A two-layer BERT with a word-level tokenizer, saved as save_pretrained writes it."""
    config = transformers.BertConfig(
        vocab_size=120,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=SEQUENCE,
        num_labels=3,
    )
    torch.manual_seed(0)
    kind = transformers.BertForSequenceClassification if head else transformers.BertModel
    model = kind(config).eval()
    model.save_pretrained(folder)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(115)]
    (folder.parent / "vocab.txt").write_text("\n".join(words) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(folder.parent / "vocab.txt")).save_pretrained(
        folder
    )
    return folder, model


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return _tiny_bert(tmp_path_factory.mktemp("hf") / "tiny-bert", head=True)


def test_a_classifier_folder_runs_to_an_onnx_pick_that_matches_transformers(classifier, tmp_path):
    folder, model = classifier
    before = {p: p.read_bytes() for p in folder_files(folder)}
    recipe = tmp_path / "optimize.toml"
    recipe.write_text(
        f'model = "{folder}"\nout = "{tmp_path / "out"}"\nbuiltin = false\n'
        "[measure]\nseconds = 0.05\nonnx_runtimes = []\n"
        '[[chains]]\nwhy = "fusions"\npasses = [{ pass = "ort_graph", level = "all" }]\n'
    )
    result = CliRunner().invoke(app, ["run", "--recipe", str(recipe)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    assert report["source"]["form"] == "hf_folder"
    names = [i["name"] for i in report["source"]["inputs"]]
    assert names == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(i["dims"] == ["batch", "sequence"] for i in report["source"]["inputs"])
    assert (out / "tokenizer" / "tokenizer.json").is_file()
    assert {p: p.read_bytes() for p in folder_files(folder)} == before

    rng = np.random.default_rng(0)
    ids = rng.integers(5, 120, (3, SEQUENCE)).astype(np.int64)
    feeds = {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.zeros_like(ids),
    }
    session = ort.InferenceSession(str(out / "best.onnx"), providers=["CPUExecutionProvider"])
    # Batch and sequence are dynamic: the measured length and a shorter one both run.
    for length in (SEQUENCE, 9):
        part = {name: array[:, :length] for name, array in feeds.items()}
        (logits,) = session.run(None, part)
        with torch.inference_mode():
            expected = model(**{k: torch.from_numpy(v) for k, v in part.items()}).logits.numpy()
        np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_the_task_chooses_the_output_and_needs_a_head_the_checkpoint_has(classifier, tmp_path):
    folder, _ = classifier
    states = load_source(folder, task="feature-extraction")
    assert states.form == "hf_folder" and states.model_kind == "torch"
    ids = torch.zeros((2, SEQUENCE), dtype=torch.int64)
    assert tuple(states.model(ids, torch.ones_like(ids), ids).shape) == (2, SEQUENCE, 32)
    shorter = load_source(folder, ["input_ids:batch,8:int64"])
    assert shorter.inputs[0].dims == ("batch", 8)
    # Without data, the run's inputs are token ids over the whole vocabulary, padded.
    samples = states.sample_inputs
    tokens, mask = samples["input_ids"], samples["attention_mask"]
    assert tokens.shape == (64, SEQUENCE) and tokens.max() >= 100 and len(np.unique(tokens)) > 50
    assert (tokens[mask == 0] == 0).all() and 0 < mask.mean() < 1
    bare, _ = _tiny_bert(tmp_path / "bare", head=False)
    assert load_source(bare).model(ids, torch.ones_like(ids), ids).shape[-1] == 32
    with pytest.raises(UserError, match="with no text-classification head"):
        load_source(bare, task="text-classification")
    with pytest.raises(UserError, match="--task summarise: use one of feature-extraction"):
        load_source(folder, task="summarise")


@pytest.mark.parametrize(
    "given, expected",
    [
        ("some-org/some-model", "a Hugging Face Hub id is not fetched: this tool never downloads"),
        ("empty-folder", "is a directory with no config.json"),
    ],
    ids=["hub-id", "folder-without-config"],
)
def test_a_hub_id_or_a_folder_without_config_is_one_line(given, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty-folder").mkdir()
    out = tmp_path / "out"
    assert_refused(["run", given, "--out", str(out)], expected, [], out, within_s=30)


def test_a_folder_picked_as_a_pytorch_row_is_kept_whole_and_serves_again(
    classifier, digits_cnn_onnx, tmp_path
):
    from figures import measured_variant, results_of

    from optimize.build.variant import RuntimeRow
    from optimize.report.outputs import write_outputs
    from optimize.serve.load_sweep import open_instance, sample_of
    from optimize.serve.pick_json import ServedPick

    folder, model = classifier
    exported = tmp_path / "variants" / "v" / "model.onnx"
    exported.parent.mkdir(parents=True)
    feeds = {
        n: torch.zeros((2, SEQUENCE), dtype=torch.int64)
        for n in ("input_ids", "attention_mask", "token_type_ids")
    }
    torch.onnx.export(
        load_source(folder).model,
        tuple(feeds.values()),
        str(exported),
        input_names=list(feeds),
        dynamic_axes={n: {0: "batch"} for n in feeds},
        dynamo=False,
    )
    variant = measured_variant("v", 2.0, path=exported)
    eager = {"mode": "eager", "autocast": "float32", "threads": 1}
    row = RuntimeRow("row", "v", "torch eager", eager, runtime="torch")
    row.record(measured_variant("fast", 1.0).measurements, variant.fidelity, None)
    stale = tmp_path / "torch" / folder.name / "old-weights.bin"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from an earlier run")
    results = results_of(tmp_path, [variant, row], row, None)
    results.source_path, results.source_form = folder, "hf_folder"
    write_outputs(results)

    pick = ServedPick.read(tmp_path)
    assert pick.artifact == f"torch/{folder.name}" and not stale.exists()
    (logits,) = open_instance(pick, 1)(sample_of(pick))
    assert logits.shape == (1, 3)
    # No ONNX variant within the limits: Triton has nothing to run, so no serving files.
    assert not (tmp_path / "serving" / "kserve.yaml").exists()


def test_a_folder_with_no_text_inputs_or_a_wrong_input_shape_is_one_line(classifier, tmp_path):
    config = transformers.ViTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=8,
        patch_size=4,
    )
    transformers.ViTModel(config).save_pretrained(tmp_path / "vit")
    with pytest.raises(UserError, match="takes no text inputs"):
        load_source(tmp_path / "vit")
    folder, _ = classifier
    with pytest.raises(UserError, match="give \\(batch, sequence\\), the sequence a whole"):
        load_source(folder, ["input_ids:batch,4,8:int64"])
    # A named sequence stays dynamic under that name, made and measured at the default.
    named = load_source(folder, ["input_ids:batch,tokens:int64"])
    assert {spec.dims for spec in named.inputs} == {("batch", "tokens")}
    assert named.sample_inputs["input_ids"].shape == (64, SEQUENCE)


def test_the_dry_run_sizes_a_folder_by_its_files(classifier):
    from optimize.config.recipe import Recipe
    from optimize.measure.probe import probe_model
    from optimize.source.load import SourceSpec

    folder, _ = classifier
    probe = probe_model(SourceSpec(folder), Recipe(model=folder).data)
    files_mb = sum(p.stat().st_size for p in folder_files(folder)) / 2**20
    assert probe.exported and probe.size_mb == pytest.approx(files_mb)


def test_a_bert_folder_gets_an_fp16_variant_that_runs(classifier, tmp_path):
    folder, _ = classifier
    recipe = tmp_path / "optimize.toml"
    recipe.write_text(
        f'model = "{folder}"\nout = "{tmp_path / "out"}"\nbuiltin = false\n'
        # Judged however slow it screens: fp16 on a CPU often is.
        "[measure]\nseconds = 0.05\nonnx_runtimes = []\ntorch_runtimes = false\n"
        'time_in_full = "all"\n'
        '[[chains]]\nwhy = "half precision"\npasses = [{ pass = "fp16" }]\n'
    )
    result = CliRunner().invoke(app, ["run", "--recipe", str(recipe)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (half,) = [v for v in report["variants"] if v["label"] == "export → fp16"]
    assert half["status"] == "measured", half["reason"]
    assert half["fidelity"]["mean_cosine"] > 0.999
