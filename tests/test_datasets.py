"""Every GLUE task's layout, and your own data: CSV, TSV, JSON Lines, Parquet, save_to_disk, a spec file.

The end-to-end tests train a tiny BERT one epoch on each source and compute its 1D difference
curve; the dev loss at α = 1 is checked against plain transformers on the dev file read
independently (its own columns, its own label mapping), so a wrong column or a shuffled label
map fails. Bad input is one line naming the file, the row and the column.
"""

from __future__ import annotations

import csv
import json
import math

import datasets
import pytest
import torch
from conftest import sentence, tiny_train_cfg

from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.training.data.glue import GlueDataError, load_glue_split
from bertviz_landscape.training.data.sources import DataError, task_from_spec
from bertviz_landscape.training.data.tasks import TASKS, get_task

pytestmark = pytest.mark.usefixtures("one_thread")

STARS = ["1", "3", "5"]


def rows(n: int, offset: int = 0):
    """(text, pair, stars) with the label a function of the text, so a model can learn it."""
    return [(sentence(i + offset), sentence(i + offset + 1, 3), STARS[(i + offset) % 3]) for i in range(n)]


def write_csv(path, data, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(["review", "title", "stars"])
        w.writerows(data)
    return path


def write_jsonl(path, data):
    path.write_text(
        "".join(json.dumps({"review": t, "title": p, "stars": int(s)}) + "\n" for t, p, s in data)
    )
    return path


def write_spec(folder, name, source, **extra):
    spec = {"name": name, "source": source, "columns": {"text": "review", "pair": "title", "label": "stars"}}
    spec.update(extra)
    (folder / f"{name}.yaml").write_text(json.dumps(spec))  # JSON is YAML
    return folder / f"{name}.yaml"


@pytest.fixture
def task_path(tmp_path, monkeypatch):
    folder = tmp_path / "tasks"
    folder.mkdir()
    monkeypatch.setenv("BVL_TASK_PATH", str(folder))
    return folder


# --- GLUE: every task's TSV layout -------------------------------------------------------------


def test_every_glue_task_is_registered_with_its_metric():
    assert set(TASKS) >= {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "mnli-mm", "qnli", "rte", "wnli"}
    assert get_task("cola").primary_metric == "mcc"
    assert get_task("MNLI-MM").dev_file == "dev_mismatched.tsv" and get_task("mnli").num_labels == 3
    assert get_task("qqp").metrics == ("accuracy", "f1")


def test_cola_headerless_tsv_and_mnli_dev_files(tmp_path):
    cola = tmp_path / "glue" / "CoLA"
    cola.mkdir(parents=True)
    (cola / "train.tsv").write_text("gj04\t1\t\tThe cat sat.\ngj04\t0\t*\tCat the sat.\n")
    (cola / "dev.tsv").write_text("gj04\t1\t\tA dog ran.\ngj04\t2\t*\tRan dog a.\n")
    ds = load_glue_split(get_task("cola"), "train", tmp_path / "glue")
    assert list(ds["text_a"]) == ["The cat sat.", "Cat the sat."] and list(ds["label"]) == [1, 0]
    with pytest.raises(
        GlueDataError, match=r"CoLA/dev.tsv: line 2, column 'label': label '2' is outside 0..1"
    ):
        load_glue_split(get_task("cola"), "dev", tmp_path / "glue")

    mnli = tmp_path / "glue" / "MNLI"
    mnli.mkdir()
    head = "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tgold_label\n"
    for split, label in (
        ("train", "neutral"),
        ("dev_matched", "contradiction"),
        ("dev_mismatched", "entailment"),
    ):
        (mnli / f"{split}.tsv").write_text(head + f"0\t1\t2\tfiction\tA {split}.\tB.\t{label}\t{label}\n")
    labels = {
        name: list(load_glue_split(get_task(name), "dev", tmp_path / "glue")["label"])
        for name in ("mnli", "mnli-mm")
    }
    assert labels == {"mnli": [2], "mnli-mm": [0]}  # the hub's order: entailment, neutral, contradiction


def test_mcc_metric_is_matthews_correlation():
    from sklearn.metrics import matthews_corrcoef

    preds, target = torch.tensor([1, 1, 0, 1, 0, 0, 1]), torch.tensor([1, 0, 0, 1, 1, 0, 1])
    got = float(get_task("cola").make_metrics()(preds, target)["mcc"])
    assert got == pytest.approx(matthews_corrcoef(target.numpy(), preds.numpy()), abs=1e-6)


# --- your own data: loaders and their errors ---------------------------------------------------


def test_csv_labels_inferred_from_train_and_unseen_dev_label_is_an_error(tmp_path):
    write_csv(tmp_path / "train.csv", rows(6))
    write_csv(tmp_path / "dev.csv", [*rows(2), ("a new review", "t", "4")])
    task = task_from_spec(
        {
            "name": "r",
            "source": {"train": "train.csv", "dev": "dev.csv"},
            "columns": {"text": "review", "label": "stars"},
        },
        tmp_path,
    )
    assert task.label_names == ("1", "3", "5") and task.num_labels == 3 and task.text_b is None
    train = load_glue_split(task, "train")
    assert list(train["label"]) == [0, 1, 2, 0, 1, 2] and list(train["text_a"]) == [r[0] for r in rows(6)]
    with pytest.raises(
        DataError, match=r"dev.csv: line 4, column 'stars': label '4' is not one of the training labels"
    ):
        load_glue_split(task, "dev")


def test_given_labels_accept_names_and_indices_and_parquet_tsv_read(tmp_path):
    import pandas as pd

    pd.DataFrame(
        {"t": ["a b", "c d", "e f"], "y": ["neg", 1, "neg"]}.copy() | {"y": ["neg", "1", "neg"]}
    ).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "dev.tsv").write_text("t\ty\nx y\tpos\n")
    spec = {"name": "p", "source": {"train": "train.parquet", "dev": "dev.tsv", "format": None}}
    spec |= {"columns": {"text": "t", "label": "y"}, "labels": ["neg", "pos"], "metrics": ["accuracy", "mcc"]}
    with pytest.raises(DataError, match="format None"):  # mixed formats need one format; here: by extension
        task_from_spec(spec | {"source": {"train": "a.txt", "dev": "dev.tsv"}}, tmp_path)
    task = task_from_spec(spec, tmp_path)
    assert list(load_glue_split(task, "train")["label"]) == [0, 1, 0]


@pytest.mark.parametrize(
    "problem, match",
    [
        ({"columns": {"text": "missing", "label": "stars"}}, r"train.csv: missing column\(s\) \['missing'\]"),
        ({"metrics": ["pearson"]}, "metric 'pearson' does not apply to classification"),
        ({"columns": {"text": "review", "label": "stars", "extra": "x"}}, "unknown key columns.extra"),
        ({"problem": "ranking"}, "problem must be classification or regression"),
    ],
)
def test_bad_specs_are_one_line(tmp_path, problem, match):
    write_csv(tmp_path / "train.csv", rows(4))
    write_csv(tmp_path / "dev.csv", rows(2))
    spec = {
        "name": "r",
        "source": {"train": "train.csv", "dev": "dev.csv"},
        "columns": {"text": "review", "label": "stars"},
    }
    with pytest.raises(BadInput, match=match) as err:
        task_from_spec(spec | problem, tmp_path)
    assert "\n" not in str(err.value)


def test_null_text_names_the_row(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", rows(4))
    (tmp_path / "dev.jsonl").write_text(
        '{"review": "ok", "title": "t", "stars": 1}\n{"review": null, "title": "t", "stars": 3}\n'
    )
    task = task_from_spec(
        {
            "name": "j",
            "source": {"train": "train.jsonl", "dev": "dev.jsonl"},
            "columns": {"text": "review", "label": "stars"},
        },
        tmp_path,
    )
    with pytest.raises(DataError, match=r"dev.jsonl: line 2, column 'review': empty \(null\)"):
        load_glue_split(task, "dev")


def test_regression_source(tmp_path):
    (tmp_path / "train.csv").write_text("s,score\na b,0.5\nc d,2.25\n")
    (tmp_path / "dev.csv").write_text("s,score\ne f,1\ng h,oops\n")
    task = task_from_spec(
        {
            "name": "reg",
            "source": {"train": "train.csv", "dev": "dev.csv"},
            "columns": {"text": "s", "label": "score"},
            "problem": "regression",
        },
        tmp_path,
    )
    assert task.is_regression and task.metrics == ("pearson", "spearman") and task.num_labels == 1
    assert list(load_glue_split(task, "train")["label"]) == [0.5, 2.25]
    with pytest.raises(DataError, match=r"dev.csv: line 3, column 'score': score 'oops' is not a number"):
        load_glue_split(task, "dev")


# --- end to end: train one epoch, then the 1D curve --------------------------------------------


def plain_dev_loss(theta, texts, pairs, labels) -> float:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(theta)).eval()
    tok = AutoTokenizer.from_pretrained(str(theta))
    args = (texts, pairs) if pairs is not None else (texts,)
    enc = tok(*args, truncation=True, max_length=128, padding=True, return_tensors="pt")
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(**enc).logits, torch.tensor(labels)))


def train_and_curve(tmp_path, task_name):
    from bertviz_landscape.engine.surface import load_surface
    from bertviz_landscape.engine.sweep import landscape
    from bertviz_landscape.training.train import train

    run = tmp_path / "run"
    metrics = train(tiny_train_cfg(tmp_path / "unused-glue", f"task.name={task_name}", "callbacks=none"), run)
    res = landscape(
        task=task_name,
        theta0=run / "checkpoints" / "init",
        theta1=run / "checkpoints" / "final",
        output=tmp_path / "curve.h5",
        grid={"x": {"min": 0.0, "max": 1.0, "num": 2}},
        directions={"name": "difference"},
        data={"max_length": 128, "eval_batch_size": 4, "cache_dir": str(tmp_path / "cache")},
        splits=["train", "dev"],
        progress=False,
    )
    return run, metrics, load_surface(res.surface)


@pytest.mark.slow  # ~10 s each
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_own_files_train_and_landscape(tmp_path, task_path, fmt):
    name = f"reviews-{fmt}"
    train_rows, dev_rows = rows(16), rows(6, offset=40)
    data = tmp_path / "data"
    data.mkdir()
    if fmt == "csv":
        write_csv(data / "train.csv", train_rows)
        write_csv(data / "dev.csv", dev_rows)
    else:
        write_jsonl(data / "train.jsonl", train_rows)
        write_jsonl(data / "dev.jsonl", dev_rows)
    ext = "csv" if fmt == "csv" else "jsonl"
    write_spec(
        task_path,
        name,
        {"train": f"../data/train.{ext}", "dev": f"../data/dev.{ext}"},
        metrics=["accuracy", "mcc"],
    )
    run, metrics, surf = train_and_curve(tmp_path, name)
    assert surf["dev_loss"].shape == (2,) and all(math.isfinite(v) for v in surf["dev_loss"])
    ref = plain_dev_loss(
        run / "checkpoints" / "final",
        [r[0] for r in dev_rows],
        [r[1] for r in dev_rows],
        [STARS.index(r[2]) for r in dev_rows],
    )
    assert surf["dev_loss"][1] == pytest.approx(ref, rel=1e-5)
    assert "dev_mcc" in surf.keys() and surf.meta["data"]["splits"]["dev"]["num_examples"] == 6


@pytest.mark.slow
def test_save_to_disk_directory_trains_and_landscapes(tmp_path, task_path):
    names = ["negative", "positive"]
    features = datasets.Features(
        {"text": datasets.Value("string"), "sentiment": datasets.ClassLabel(names=names)}
    )
    make = lambda n, o: datasets.Dataset.from_dict(  # noqa: E731
        {"text": [sentence(i + o) for i in range(n)], "sentiment": [(i + o) % 2 for i in range(n)]},
        features=features,
    )
    datasets.DatasetDict({"train": make(16, 0), "test": make(6, 30)}).save_to_disk(str(tmp_path / "saved"))
    spec = {"format": "disk", "path": str(tmp_path / "saved"), "dev": "test"}
    (task_path / "sentiment.yaml").write_text(
        json.dumps({"name": "sentiment", "source": spec, "columns": {"text": "text", "label": "sentiment"}})
    )
    assert get_task("sentiment").label_names == tuple(names)
    run, metrics, surf = train_and_curve(tmp_path, "sentiment")
    dev = make(6, 30)
    ref = plain_dev_loss(run / "checkpoints" / "final", list(dev["text"]), None, list(dev["sentiment"]))
    assert surf["dev_loss"][1] == pytest.approx(ref, rel=1e-5)


@pytest.mark.slow
def test_cola_trains_and_landscapes_with_mcc(tmp_path):
    from sklearn.metrics import matthews_corrcoef
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bertviz_landscape.engine.surface import load_surface
    from bertviz_landscape.engine.sweep import landscape
    from bertviz_landscape.training.train import train

    cola = tmp_path / "glue" / "CoLA"
    cola.mkdir(parents=True)
    for split, n, o in (("train", 24, 0), ("dev", 10, 50)):
        lines = [f"gj04\t{(i + o) % 2}\t{'' if (i + o) % 2 else '*'}\t{sentence(i + o)}" for i in range(n)]
        (cola / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    train(tiny_train_cfg(tmp_path / "glue", "task=cola", "callbacks=none"), run)
    res = landscape(
        task="cola",
        theta0=run / "checkpoints" / "init",
        theta1=run / "checkpoints" / "final",
        output=tmp_path / "curve.h5",
        grid={"x": {"min": 0.0, "max": 1.0, "num": 2}},
        directions={"name": "difference"},
        data={"glue_dir": str(tmp_path / "glue"), "eval_batch_size": 4, "cache_dir": str(tmp_path / "c")},
        splits=["dev"],
        progress=False,
    )
    surf = load_surface(res.surface)
    dev = load_glue_split(get_task("cola"), "dev", tmp_path / "glue")
    final = run / "checkpoints" / "final"
    model = AutoModelForSequenceClassification.from_pretrained(str(final)).eval()
    enc = AutoTokenizer.from_pretrained(str(final))(list(dev["text_a"]), padding=True, return_tensors="pt")
    with torch.no_grad():
        preds = model(**enc).logits.argmax(-1).numpy()
    mcc = matthews_corrcoef(list(dev["label"]), preds)
    assert surf["dev_mcc"][1] == pytest.approx(mcc, abs=1e-6)
    assert surf["dev_error"][1] == pytest.approx(1 - mcc, abs=1e-6)
