"""GLUE loading: the real files' quirks, seeded subsets, the tokenise cache, and bad input."""

from __future__ import annotations

import pytest
from conftest import REAL_GLUE

from bertviz_landscape.training.data import GlueDataError, get_task, load_glue_split
from bertviz_landscape.training.data.tokenize import tokenize
from bertviz_landscape.training.models import load_tokenizer

real = pytest.mark.skipif(not REAL_GLUE.is_dir(), reason="real GLUE TSVs not found (set GLUE_DIR)")


@real
@pytest.mark.parametrize(
    "task,split,rows,labels",
    [
        ("mrpc", "train", 3667, {0, 1}),
        ("mrpc", "dev", 408, {0, 1}),
        ("rte", "train", 2490, {0, 1}),
        ("rte", "dev", 277, {0, 1}),
        ("sst2", "dev", 872, {0, 1}),
        ("stsb", "dev", 1500, None),
    ],
)
def test_real_glue_files_read_completely(task, split, rows, labels):
    ds = load_glue_split(get_task(task), split, REAL_GLUE)
    assert len(ds) == rows  # a quote character eating lines would shorten this
    if labels is None:
        scores = ds["label"]
        assert min(scores) >= 0.0 and max(scores) <= 5.0 and len(set(scores)) > 10
    else:
        assert set(ds["label"]) == labels
    assert all(isinstance(t, str) and t for t in ds["text_a"])


@real
def test_real_mrpc_quirks_bom_and_literal_quotes():
    ds = load_glue_split(get_task("mrpc"), "train", REAL_GLUE)
    first = ds[0]
    assert first["label"] == 1  # the BOM-prefixed header's first column is still `Quality`
    assert first["text_a"].startswith('Amrozi accused his brother , whom he called " the witness "')
    assert first["text_b"].startswith('Referring to him as only " the witness "')


@real
def test_real_rte_string_labels_and_sst2_single_sentence():
    rte = load_glue_split(get_task("rte"), "dev", REAL_GLUE)
    assert rte[0]["label"] == 1  # not_entailment
    assert rte[1]["label"] == 0  # entailment
    sst = load_glue_split(get_task("sst2"), "dev", REAL_GLUE)
    assert sst[0]["text_b"] is None and sst[0]["label"] == 1


@real
def test_real_stsb_float_scores():
    ds = load_glue_split(get_task("stsb"), "dev", REAL_GLUE)
    assert ds[0]["label"] == pytest.approx(5.0) and ds[1]["label"] == pytest.approx(4.75)


def test_seeded_subsets_are_deterministic(glue_dir):
    task = get_task("rte")
    a = load_glue_split(task, "train", glue_dir, max_samples=10, seed=3)
    b = load_glue_split(task, "train", glue_dir, max_samples=10, seed=3)
    c = load_glue_split(task, "train", glue_dir, max_samples=10, seed=4)
    assert len(a) == 10 and a["text_a"] == b["text_a"]
    assert a["text_a"] != c["text_a"]
    assert len(load_glue_split(task, "train", glue_dir, max_samples=None)) == 24


def test_a_split_is_parsed_once_per_content(glue_dir):
    """The demo's ~40 stages share one parse of a TSV; a file edited in place is read again."""
    task, path = get_task("rte"), glue_dir / "RTE" / "train.tsv"
    first = load_glue_split(task, "train", glue_dir)
    assert load_glue_split(task, "train", glue_dir) is first  # unchanged file: the same parse
    old = first["text_a"][0]
    path.write_text(path.read_text().replace(old, "An edited sentence.", 1))
    edited = load_glue_split(task, "train", glue_dir)
    assert edited["text_a"][0] == "An edited sentence." and first["text_a"][0] == old


def test_tokenise_once_then_cached(glue_dir, tmp_path):
    ds = load_glue_split(get_task("mrpc"), "dev", glue_dir)
    tok = load_tokenizer("all-minilm-l6-v2")
    first = tokenize(ds, tok, max_length=16, cache_dir=tmp_path / "c")
    cached = list((tmp_path / "c" / "tokenized").iterdir())
    assert len(cached) == 1
    second = tokenize(ds, tok, max_length=16, cache_dir=tmp_path / "c")
    assert second["input_ids"] == first["input_ids"] and max(len(x) for x in first["input_ids"]) <= 16
    assert second.cache_files and str(cached[0]) in second.cache_files[0]["filename"]
    assert first[0]["token_type_ids"].count(1) > 0  # sentence pairs are encoded as pairs


# -- bad input: one clear error naming the file, row or key ---------------------------------


def test_missing_directory(tmp_path):
    with pytest.raises(GlueDataError, match="GLUE directory .*nope.* does not exist"):
        load_glue_split(get_task("mrpc"), "train", tmp_path / "nope")


def test_missing_file(glue_dir):
    (glue_dir / "RTE" / "dev.tsv").unlink()
    with pytest.raises(GlueDataError, match=r"RTE/dev.tsv.* does not exist"):
        load_glue_split(get_task("rte"), "dev", glue_dir)


def test_missing_column(glue_dir):
    path = glue_dir / "STS-B" / "train.tsv"
    path.write_text(path.read_text().replace("\tscore", "\tsimilarity", 1))
    with pytest.raises(GlueDataError, match=r"STS-B/train.tsv: missing column\(s\) \['score'\]"):
        load_glue_split(get_task("stsb"), "train", glue_dir)


@pytest.mark.parametrize(
    "task,folder,split,row,value,message",
    [
        ("rte", "RTE", "train", 5, "maybe", r"line 6, column 'label': label 'maybe' is not one of"),
        ("stsb", "STS-B", "dev", 3, "five", r"line 4, column 'score': score 'five' is not a number"),
        ("stsb", "STS-B", "train", 2, "7.5", r"line 3, column 'score': score '7.5' is outside \(0.0, 5.0\)"),
        ("sst2", "SST-2", "train", 2, "7", r"line 3, column 'label': label '7' is outside 0..1"),
    ],
)
def test_unparseable_label_names_file_line_and_column(glue_dir, task, folder, split, row, value, message):
    path = glue_dir / folder / f"{split}.tsv"
    lines = path.read_text().splitlines()
    lines[row] = lines[row].rsplit("\t", 1)[0] + f"\t{value}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(GlueDataError, match=rf"{folder}/{split}.tsv: {message}"):
        load_glue_split(get_task(task), split, glue_dir)


@pytest.mark.parametrize(
    "content,message", [("", "file is empty"), ("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n", "no rows")]
)
def test_empty_file(glue_dir, content, message):
    (glue_dir / "MRPC" / "dev.tsv").write_text(content)
    with pytest.raises(GlueDataError, match=rf"MRPC/dev.tsv: .*{message}"):
        load_glue_split(get_task("mrpc"), "dev", glue_dir)


def test_ragged_row_names_file(glue_dir):
    path = glue_dir / "MRPC" / "train.tsv"
    path.write_text(path.read_text() + "1\t2\t3\tx\ty\textra\tfields\n")
    with pytest.raises(
        GlueDataError, match=r"MRPC/train.tsv: line 26 has 7 tab-separated fields, the header has 5"
    ):
        load_glue_split(get_task("mrpc"), "train", glue_dir)


def test_unknown_task():
    with pytest.raises(KeyError, match="unknown task 'imdb'; known tasks: cola, mnli, mnli-mm, mrpc, qnli"):
        get_task("imdb")
