"""Files are untrusted input (issue 29, causes 1-3 and two weak cases): nothing from a results
directory runs in a browser, no HDF5 file is read outside itself, nothing the tool writes in
place follows a planted link, a `figures` linked outside is refused, and report.md and
report.html are replaced together or not at all."""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import assert_changes_only_under, exits_2_with_one_line, tree_state
from test_landscape_support import data_cfg, tiny_run  # noqa: F401  (fixture)
from test_plots import make_surface, write_fixture_dir

from bertviz_landscape.cli.compose import compose
from bertviz_landscape.engine.surface import load_surface, write_surface
from bertviz_landscape.publish.report import plan as plan_mod

# --- 1. strings from files reach HTML as text ----------------------------------------------------
PLANTED = [  # each as a whole string, and each inside a longer one
    "<script>alert('s1')</script>",
    "<img src=x onerror=alert('i2')>",
    '"><svg onload=alert(3)>',
    "<a href=\"javascript:alert('a4')\">click</a>",
    "[link](javascript:alert('m5'))",
    "![pic](javascript:alert('m6'))",
    "<http://evil.example/a7>",
    "<iframe src=//evil.example/f8></iframe>",
]
SENTENCE_MARKUP = "acc<script>alert('c1')</script>[x](javascript:alert('c2'))<img src=x onerror=alert('c3')>"
PLANTED_TAGS = {"script", "svg", "iframe"}  # element types the report never makes itself


def markup(i: int) -> str:
    return PLANTED[i % len(PLANTED)]


class Dom(HTMLParser):
    """Every element (tag, attributes) and the text of each script element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k.lower(): v or "" for k, v in attrs}))
        self._in.append(tag)
        if tag == "script":
            self.scripts.append("")
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th") and self.rows:
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag in self._in:
            while self._in and self._in.pop() != tag:
                pass

    def handle_data(self, data):
        if self._in and self._in[-1] == "script":
            self.scripts[-1] += data
        else:
            self.text.append(data)
            if self.rows and any(t in ("td", "th") for t in self._in):
                self.rows[-1][-1] += data


def parse(path: Path) -> Dom:
    dom = Dom()
    dom.feed(path.read_text(encoding="utf-8"))
    return dom


def assert_nothing_planted_runs(dom: Dom, where: Path, scripts: bool = False) -> None:
    """No planted element type (a script only where the page has its own: Plotly's), no
    event-handler attribute, no javascript: or off-site target anywhere."""
    for tag, attrs in dom.elements:
        assert tag not in PLANTED_TAGS - ({"script"} if scripts else set()), (where, tag, attrs)
        for name, value in attrs.items():
            assert not name.startswith("on"), (where, tag, attrs)
            squeezed = re.sub(r"[\x00-\x20]", "", html.unescape(value)).lower()
            assert not squeezed.startswith(("javascript:", "vbscript:", "//")), (where, tag, attrs)
            assert "evil.example" not in squeezed, (where, tag, attrs)


def _plant_results(root: Path) -> dict:
    """A results directory whose every file-derived string the report shows holds markup."""
    write_fixture_dir(root)
    run = root / "runs" / "mrpc_pretrained"
    (run / "checkpoints" / "init").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"task": "mrpc", "init": "pretrained", "seed": 1}))
    # a frozen plan whose preset name and time hold markup (the report's first line quotes both)
    doc = plan_mod.preset("demo") | {"preset": markup(3)}
    (root / plan_mod.PLAN_FILE).write_text(
        json.dumps(
            {
                "format": plan_mod.FORMAT,
                "preset": markup(3),
                "sha256": plan_mod.digest(doc),
                "frozen_utc": markup(5),
                "plan": doc,
            }
        )
    )
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "task": "mrpc" + markup(0),
                "init": markup(1),
                "primary_metric": markup(2),
                "dev": {},
                "majority_baseline": {},
                "steps": markup(3),
                "train_examples": markup(4),
                "wall_seconds": markup(5) + " | x | y",  # a table cell's separator, too
            }
        )
    )
    notes = [f"note {i}: {m}" for i, m in enumerate(PLANTED)] + [
        "| a | b |",
        "line one\n<script>alert('nl')</script>\n# heading",
        "- [ref]: javascript:alert(9)",
    ]
    (root / "report_notes.json").write_text(json.dumps(notes))
    (root / "lr_sweep.json").write_text(
        json.dumps(
            {
                "task": markup(6),
                "metric": markup(7),
                "rule": markup(0),
                "chosen_arm": "scratch_lr0.001",
                "chosen_lr": 0.001,
                "rates": [
                    {
                        "lr": 0.001,
                        "arm": "scratch_lr0.001",
                        "seeds": [markup(1)],
                        "dev_metric": [0.5],
                        "mean": 0.5,
                    }
                ],
            }
        )
    )
    # an analysis JSON with a number under a crafted key (shown as a row label)
    path = next((root / "analysis").glob("flatness_mrpc_pretrained*.json"))
    data = json.loads(path.read_text())
    data.setdefault("numbers", {})[markup(1)] = 1.5
    path.write_text(json.dumps(data))
    # a run that did not beat its baseline: the claims' sentences name its metric (from the JSON)
    for path in (root / "analysis").glob("*_mrpc_scratch*.json"):
        data = json.loads(path.read_text())
        for entry in data["runs"]:
            entry |= {"beat_baseline": False, "primary_metric": SENTENCE_MARKUP, "model": markup(6)}
        path.write_text(json.dumps(data))
    # files that are refused, named with markup; their refusal messages quote it
    (root / "analysis" / f"bad{markup(1)}.json").write_text('{"format": "bertviz-analysis/1", "analysis": ')
    sneaky = make_surface(root / "surfaces" / "sneaky_plane.h5", nx=5, ny=5)
    with h5py.File(sneaky, "a") as f:
        f.attrs["task"] = markup(0)
    # a surface whose recorded centre (a marker's name on the interactive page) holds markup
    plain = load_surface(root / "surfaces" / "mrpc_pretrained_plane.h5")
    plain.meta["directions"] = dict(plain.meta["directions"], recipe="random", center=markup(1))
    write_surface(root / "surfaces" / "mrpc_pretrained_random_plane.h5", plain)
    return {"notes": notes}


def test_markup_planted_in_every_file_string_reaches_report_and_pages_as_text(tmp_path):
    """Was: a metrics.json task `<script>…` or a report_notes.json `<img onerror>` landed raw in
    report.html (Python-Markdown passes HTML through); markdown links in notes became links."""
    from bertviz_landscape.cli.plot import run

    root = tmp_path / f"res{markup(2)}"  # the directory's name, too
    planted = _plant_results(root)
    cfg = compose("plot", ["results=placeholder", "formats=[png]"])
    cfg.results = str(root)
    manifest = run(cfg)  # what `bertviz-plot results=<root>` calls
    report = root / "report.html"
    dom = parse(report)
    assert_nothing_planted_runs(dom, report)
    assert not dom.scripts  # the report has no script of its own
    pngs = [f for f in manifest["figures"] if any(p.endswith(".png") for p in f["files"])]
    imgs = [a for t, a in dom.elements if t == "img"]
    claim_pngs = list((root / "figures" / "claims").glob("*.png"))
    assert len(imgs) == len(pngs) + len(claim_pngs)
    assert all(a["src"].startswith("data:image/png;base64,") for a in imgs)
    links = [a.get("href", "") for t, a in dom.elements if t == "a"]
    pages = [f for f in manifest["figures"] if f["kind"] == "interactive3d"]
    assert len(links) == len(pages) == 3  # the figures' pages, nothing else
    assert all((root / h).is_file() and h.endswith(".html") for h in links)
    text = " ".join(dom.text)
    for note in planted["notes"]:  # shown, as text
        assert " ".join(note.split()) in " ".join(text.split()), note
    for m in PLANTED:
        assert m in text, m
    runs = [r for r in dom.rows if r and "<script>" in r[0]]
    assert len(runs) == 1 and len(runs[0]) == 10, (
        runs
    )  # one row of 10 cells (model column): no cell split by `|`
    assert root.name in text and "is not a plain name" in text  # the directory; a refusal, quoting it
    assert SENTENCE_MARKUP in (root / "report.md").read_text()  # a claim's sentence quotes it ...
    assert "acc<script>alert('c1')</script>" in text and "<img src=x onerror=alert('c3')>" in text  # as text
    for page in pages:  # the interactive pages: plotly's own scripts, nothing planted
        path = Path(page["files"][0])
        pdom = parse(path)
        assert_nothing_planted_runs(pdom, path, scripts=True)
        assert {t for t, _ in pdom.elements} <= {"html", "head", "meta", "style", "body", "div", "script"}
        figure = pdom.scripts[-1]  # the figure's own (the ones before it: plotly.js)
        assert "Plotly.newPlot(" in figure
        shown = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), figure)
        for m in PLANTED:  # in the figure's JSON only escaped (Plotly shows `&lt;` as `<`)
            assert m not in shown.replace('\\"', '"'), (path, m)
    random_page = next(Path(p["files"][0]) for p in pages if "random" in p["files"][0])
    figure = parse(random_page).scripts[-1]
    shown = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), figure)
    assert html.escape(markup(1)) in shown  # the crafted centre is there, as text


def test_markdown_special_names_neither_format_nor_split_a_table():
    from bertviz_landscape.publish.report.markup import md_code, md_text, md_url, to_html

    cell = md_text("a|b *c* _d_ [e](f) `g` \\ #h <i> &amp; train_loss\n- j")
    page = to_html(f"| x | y |\n|---|---|\n| {cell} | {md_code('p|q')} |\n")
    dom = Dom()
    dom.feed(page)
    assert dom.rows[1] == ["a|b *c* _d_ [e](f) `g` \\ #h <i> &amp; train_loss - j", "p|q"]
    assert {t for t, _ in dom.elements} == {"table", "thead", "tbody", "tr", "th", "td"}
    assert md_url("javascript:alert(1)", "/r") == "javascript%3Aalert%281%29"
    assert md_url("/elsewhere/x.png", "/r") is None and md_url("../x.png", "/r") is None
    kept = to_html("[a](fig/x.html) [b](fig/y.html) ![c](fig/z.png)", links={"fig/x.html"})
    dom = Dom()
    dom.feed(kept)
    assert [a for t, a in dom.elements if t in ("a", "img")] == [{"href": "fig/x.html"}]


# --- 2. HDF5 files never read outside themselves ------------------------------------------------
SECRET = np.array([1234.5678, 8765.4321, 4242.4242, 1357.9753, 2468.8642])


def _outside(tmp_path: Path) -> tuple[Path, Path]:
    """A raw file and an HDF5 file outside the results directory, with recognisable numbers."""
    box = tmp_path / "elsewhere"
    box.mkdir()
    raw = box / "secret.bin"
    raw.write_bytes(SECRET.astype("<f8").tobytes())
    other = box / "other.h5"
    with h5py.File(other, "w") as f:
        f["train_loss"] = SECRET
    return raw, other


def _refer_outside(path: Path, how: str, raw: Path, other: Path, name: str = "train_loss") -> None:
    with h5py.File(path, "a") as f:
        del f[name]
        if how == "external-storage":
            f.create_dataset(name, shape=SECRET.shape, dtype="<f8", external=[(str(raw), 0, SECRET.nbytes)])
        elif how == "external-link":
            f[name] = h5py.ExternalLink(str(other), "/train_loss")
        elif how == "soft-link":
            f["hidden"] = SECRET
            f[name] = h5py.SoftLink("/hidden")
        else:
            layout = h5py.VirtualLayout(shape=SECRET.shape, dtype="<f8")
            layout[:] = h5py.VirtualSource(str(other), "train_loss", shape=SECRET.shape)
            f.create_virtual_dataset(name, layout)


HOWS = ["external-storage", "external-link", "soft-link", "virtual"]
WORDS = {
    "external-storage": "external raw storage",
    "external-link": "external link",
    "soft-link": "soft link",
    "virtual": "virtual dataset",
}


def _secret_in(root: Path) -> list[Path]:
    """Files below `root` (but the planted ones) that hold the outside numbers, as bytes or text."""
    needles = [SECRET.astype("<f8").tobytes()[:8], b"1234.5678", b"1234.57"]
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".h5" and any(n in p.read_bytes() for n in needles)
    ]


@pytest.mark.parametrize("how", HOWS)
def test_a_surface_that_refers_outside_itself_is_refused_by_analysis_and_plot(tmp_path, how):
    """Was: the outside file's bytes came back as loss values; bertviz-plot drew them, exit 0."""
    from bertviz_landscape.cli.analyze import run as analyze
    from bertviz_landscape.cli.plot import run as plot

    raw, other = _outside(tmp_path)
    root = tmp_path / "res"
    surface = make_surface(root / "surfaces" / "mrpc_pretrained_line.h5", two_d=False, nx=5)
    _refer_outside(surface, how, raw, other)
    before = tree_state(tmp_path)
    out = tmp_path / "out" / "consistency.json"
    cfg = compose("analyze", ["analysis=consistency", f"surface={surface}", f"output={out}"])
    line = exits_2_with_one_line(lambda: analyze(cfg), str(surface), "/train_loss", WORDS[how])
    assert "refused" in line and str(SECRET[0]) not in line
    assert_changes_only_under(before, tmp_path)  # no JSON, nothing else
    # bertviz-plot: the file is named among the files not read, and no figure comes from it
    cfg = compose("plot", [f"results={root}", "formats=[png]"])
    manifest = plot(cfg)
    assert not any(str(surface) in s for f in manifest["figures"] for s in f["sources"])
    (skip,) = [s for s in manifest["skipped"] if Path(s["path"]).name == surface.name]
    assert "/train_loss" in skip["reason"] and WORDS[how] in skip["reason"]
    assert surface.name in (root / "report.md").read_text()
    assert not _secret_in(root)
    assert raw.read_bytes() == SECRET.astype("<f8").tobytes()


@pytest.mark.parametrize("how", HOWS)
def test_a_direction_file_that_refers_outside_itself_is_refused(tmp_path, how):
    import torch

    from bertviz_landscape.analysis.flatness import weight_norms
    from bertviz_landscape.engine.direction_file import read_directions, write_directions
    from bertviz_landscape.engine.directions import Directions

    raw, other = _outside(tmp_path)
    path = write_directions(
        tmp_path / "d.h5",
        Directions("random", {"w": torch.ones(5)}, None, "theta1", {"seed": 0}),
        "k",
        {},
    )
    with h5py.File(path, "a") as f:
        f["xdirection"]["train_loss"] = np.zeros(5)
    _refer_outside(path, how, raw, other, name="xdirection/train_loss")
    before = tree_state(tmp_path)
    exits_2_with_one_line(lambda: read_directions(path), f"direction file {path}", "/xdirection/train_loss")
    surface = load_surface(make_surface(tmp_path / "s.h5", nx=5, ny=5))
    exits_2_with_one_line(lambda: weight_norms(surface, path), f"direction file {path}", WORDS[how])
    assert_changes_only_under(before, tmp_path, tmp_path / "s.h5")


# --- 3. nothing written in place follows a planted link ----------------------------------------
def _target(tmp_path: Path) -> tuple[Path, tuple[bytes, int]]:
    target = tmp_path / "outside" / "precious.txt"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(b"precious bytes\n")
    os.utime(target, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    return target, (target.read_bytes(), target.stat().st_mtime_ns)


def _untouched(target: Path, state: tuple[bytes, int]) -> None:
    assert (target.read_bytes(), target.stat().st_mtime_ns) == state


def _plant(link: Path, target: Path, kind: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists() or link.is_symlink():
        link.unlink()
    if kind == "symlink":
        link.symlink_to(target)
    else:
        os.link(target, link)


def _in_place_writers(tmp_path: Path):
    """(the file it writes in place, the call) of every writer that appends or locks in place."""
    import torch

    from bertviz_landscape.contracts.locks import held
    from bertviz_landscape.contracts.sketches import SketchWriter
    from bertviz_landscape.contracts.snapshots import write_snapshot
    from bertviz_landscape.pipeline.runner import Pipeline, Stage
    from bertviz_landscape.training.callbacks.epochs import _append_line

    d = tmp_path / "dir"
    d.mkdir(exist_ok=True)

    def lock():
        with held(d / ".stage.lock", "a stage"):
            pass

    def demo(name):
        def call():
            pipe = Pipeline(d, out=io.StringIO(), log_file=d / "demo.log")
            pipe.run([Stage("one", {}, [], lambda: None)])

        return call

    return {
        "lock": (d / ".stage.lock", lock),
        "demo-stage-lock": (d / ".stages" / ".one.lock", demo("lock")),
        "demo-log": (d / "demo.log", demo("log")),
        "epochs": (d / "epochs.jsonl", lambda: _append_line(d / "epochs.jsonl", {"epoch": 0})),
        "snapshot-index": (
            d / "index.jsonl",
            lambda: write_snapshot(d, 1, 0, 0.5, {"w": torch.zeros(2)}),
        ),
        "sketch-index": (
            d / "sk" / "index.jsonl",
            lambda: SketchWriter(d / "sk", 4).append(1, 0, 0.5, np.zeros(4), 0.0),
        ),
        "sketch-truncate": (d / "sk" / "sketch.f32", lambda: SketchWriter(d / "sk", 4).truncate(0)),
        "sketch-data": (
            d / "sk" / "sketch.f32",
            lambda: SketchWriter(d / "sk", 4).append(1, 0, 0.5, np.zeros(4), 0.0),
        ),
    }


WRITERS = [
    "lock",
    "demo-stage-lock",
    "demo-log",
    "epochs",
    "snapshot-index",
    "sketch-index",
    "sketch-data",
    "sketch-truncate",
]


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
@pytest.mark.parametrize("writer", WRITERS)
def test_an_in_place_writer_never_writes_through_a_planted_link(tmp_path, writer, kind):
    """Was: a link planted as a lock, a log or an index had its target truncated or appended to."""
    target, state = _target(tmp_path)
    path, call = _in_place_writers(tmp_path)[writer]
    _plant(path, target, kind)
    exits_2_with_one_line(call, str(path), "link")
    _untouched(target, state)


@pytest.mark.parametrize("what", ["shard-lock", "points"])
def test_a_landscape_shard_never_writes_through_a_planted_link(tiny_run, tmp_path, what):  # noqa: F811
    from bertviz_landscape.engine.sweep import landscape

    def shard(k):
        return landscape(
            task="mrpc",
            theta0=tiny_run["theta0"],
            theta1=tiny_run["theta1"],
            output=tmp_path / "s.h5",
            grid={"x": {"min": 0.0, "max": 1.0, "num": 2}},
            directions={"name": "difference"},
            data=data_cfg(tiny_run),
            progress=False,
            shard=k,
            num_shards=2,
            merge=False,
        )

    shard(0)
    parts = next((tmp_path / "s.h5.parts").iterdir())
    target, state = _target(tmp_path)
    path = parts / (".shard-0001-of-0002.lock" if what == "shard-lock" else "points-0001-of-0002.jsonl")
    _plant(path, target, "symlink")
    exits_2_with_one_line(lambda: shard(1), str(path), "symbolic link")
    _untouched(target, state)


def test_training_refuses_a_planted_train_lock(tmp_path, glue_dir):
    from conftest import tiny_train_cfg

    from bertviz_landscape.training.train import train

    target, state = _target(tmp_path)
    run = tmp_path / "run"
    _plant(run / ".train.lock", target, "symlink")
    exits_2_with_one_line(lambda: train(tiny_train_cfg(glue_dir), run), str(run / ".train.lock"), "link")
    _untouched(target, state)


# --- weak cases: a figures directory linked outside; report.md and report.html as a pair --------
def test_a_figures_directory_linked_outside_is_refused(tmp_path):
    from bertviz_landscape.cli.plot import run

    root = write_fixture_dir(tmp_path / "res")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    (root / "figures").symlink_to(outside, target_is_directory=True)
    before = tree_state(tmp_path)
    cfg = compose("plot", [f"results={root}", "formats=[png]"])
    exits_2_with_one_line(lambda: run(cfg), f"figures directory {root / 'figures'}", "outside")
    assert_changes_only_under(before, tmp_path)


def test_a_failed_report_html_write_leaves_both_reports_as_they_were(tmp_path, monkeypatch):
    from bertviz_landscape.contracts import atomic
    from bertviz_landscape.publish.report import write_report

    root = write_fixture_dir(tmp_path / "res")
    write_report(root)
    shutil.rmtree(root / "analysis")  # the next report would say something else
    before = tree_state(tmp_path)
    real = atomic._fsync_path

    def full_disk(path):  # the disk fills while report.html's bytes reach it
        if "report.html" in Path(path).name:
            raise OSError(28, "No space left on device")
        return real(path)

    monkeypatch.setattr(atomic, "_fsync_path", full_disk)
    exits_2_with_one_line(lambda: write_report(root), str(root / "report.html"), "No space left")
    monkeypatch.setattr(atomic, "_fsync_path", real)
    changed = assert_changes_only_under(
        before, tmp_path, root / "results.md", root / "claims.json", root / "figures"
    )
    assert root / "report.md" not in changed and root / "report.html" not in changed
    assert not [p for p in root.iterdir() if atomic.is_temp_name(p)]


def test_only_the_reports_own_folds_become_details_elements():
    """report.md folds its details in `<details markdown="1">` lines (markup.DETAILS_OPEN); the HTML
    builds those elements itself. A fold planted in a string from a file (it reaches the Markdown
    through md_text) stays text, a stray close is text, and the fold's content is still Markdown."""
    from bertviz_landscape.publish.report.markup import DETAILS_OPEN, md_text, to_html

    planted = md_text(DETAILS_OPEN.format("<img src=x onerror=alert(1)>"))
    text = "\n".join(
        [DETAILS_OPEN.format("Numbers"), "", "| a | b |", "|---|---|", "| 1 | 2 |", "", "</details>", ""]
        + [f"- {planted}", "", "</details>", "", "<details><summary>raw</summary>", ""]
    )
    body = to_html(text)
    dom = Dom()
    dom.feed(body)
    assert [t for t, _ in dom.elements].count("details") == 1
    assert [t for t, _ in dom.elements].count("table") == 1 and not any(t == "img" for t, _ in dom.elements)
    assert body.index("<details>") < body.index("<table>") < body.index("</details>")
    assert "&lt;details" in body and "&lt;/details&gt;" in body  # the planted, stray and raw ones as text
