"""Every supported encoder classifier: layer map, token types, from-scratch init, hidden-state cache.

Tiny random models (hidden 32, 2 blocks) built from each config class on MiniLM's vocabulary
(tests/tiny_archs.py). Training, the 1D curve against plain transformers and the layers analysis
per architecture are in test_architectures_e2e.py (slow).
"""

from __future__ import annotations

from collections import OrderedDict

import datasets
import pytest
import torch
from tiny_archs import ARCHS, BLOCKS, HAS_POOLER, tiny_config, tiny_model

from bertviz_landscape.contracts.parameters import (
    UnsupportedArchitecture,
    check_architecture,
    layer_names,
    parameter_state,
    select_parameters,
    shared_block_note,
    trainable_parameters,
)
from bertviz_landscape.engine.directions import Directions
from bertviz_landscape.engine.evaluator import Evaluator, HiddenStateCache
from bertviz_landscape.training.data.eval_sets import EvalSet
from bertviz_landscape.training.data.tasks import get_task
from bertviz_landscape.training.data.tokenize import takes_token_type_ids
from bertviz_landscape.training.models.initial import load_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def rows():
    tok = load_tokenizer("all-minilm-l6-v2")
    a = ["the cat sat on the mat", "a dog ran", "red blue big small quickly slowly the", "x"] * 3
    b = ["on under", "the mat log", "a", "dog sat on the log quickly"] * 3
    enc = tok(a, b, truncation=True, max_length=32, return_token_type_ids=True)
    return datasets.Dataset.from_dict({**enc, "labels": [0, 1, 1, 0] * 3})


@pytest.mark.parametrize("arch", ARCHS)
def test_layer_map_finds_embeddings_blocks_pooler_head(arch):
    model = tiny_model(arch)
    assert check_architecture(model) == BLOCKS[arch]
    names = list(trainable_parameters(model))
    blocks = [f"layer.{i}" for i in range(BLOCKS[arch])]
    pooler = ["pooler"] if HAS_POOLER.get(arch) else []
    assert layer_names(names) == ["embeddings", *blocks, *pooler, "head"]
    # every block has parameters of its own, and the head is the task classifier, nothing else
    head = select_parameters(names, "head")
    assert head and all(n.split(".")[0] in ("classifier", "pre_classifier") for n in head)
    assert (shared_block_note(model.config) is not None) == (arch == "albert")


def test_unsupported_architecture_is_named_before_any_work(tmp_path):
    import transformers as T

    from bertviz_landscape.training.models.initial import build_initial_model

    gpt2 = T.GPT2ForSequenceClassification(T.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=100))
    with pytest.raises(UnsupportedArchitecture, match=r"gpt2 \(GPT2ForSequenceClassification\)"):
        check_architecture(gpt2)
    with pytest.raises(UnsupportedArchitecture, match="no ordered list of transformer blocks"):
        check_architecture(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    gpt2.config.save_pretrained(tmp_path / "gpt2")
    with pytest.raises(UnsupportedArchitecture, match="architecture gpt2"):
        build_initial_model(str(tmp_path / "gpt2"), get_task("mrpc"), "scratch")


def test_train_names_an_unsupported_architecture_before_reading_data(tmp_path):
    import transformers as T
    from conftest import tiny_train_cfg

    from bertviz_landscape.training.train import train

    T.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=100).save_pretrained(tmp_path / "gpt2")
    tokenizer = load_tokenizer("all-minilm-l6-v2")
    tokenizer.save_pretrained(tmp_path / "gpt2")
    cfg = tiny_train_cfg(tmp_path / "no-glue-here", f"model.name_or_path={tmp_path / 'gpt2'}")
    with pytest.raises(UnsupportedArchitecture, match=r"architecture gpt2 \(GPT2ForSequenceClassification\)"):
        train(cfg, tmp_path / "run")  # the GLUE directory does not exist: the model is checked first
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("arch", ARCHS)
def test_token_type_ids_only_for_models_that_use_them(arch):
    expected = arch in ("bert", "electra", "albert")  # RoBERTa/XLM-R: one type; DeBERTa-v3: none
    assert takes_token_type_ids(tiny_config(arch)) == expected


@pytest.mark.parametrize("arch", ["distilbert", "deberta-v2", "modernbert"])
def test_scratch_is_the_same_config_with_seeded_random_weights(arch, tmp_path):
    from tiny_archs import save_tiny

    from bertviz_landscape.training.models.initial import build_initial_model

    src = save_tiny(arch, tmp_path / arch, seed=5)
    task = get_task("mrpc")
    a = build_initial_model(str(src), task, "scratch", seed=3)
    b = build_initial_model(str(src), task, "scratch", seed=3)
    c = build_initial_model(str(src), task, "scratch", seed=4)
    pre = build_initial_model(str(src), task, "pretrained", seed=3)
    assert type(a) is type(pre) and a.config.to_dict() | {"_name_or_path": ""} == pre.config.to_dict() | {
        "_name_or_path": ""
    }
    sa, sb, sc, sp = (parameter_state(m) for m in (a, b, c, pre))
    assert all(torch.equal(sa[n], sb[n]) for n in sa)
    enc = [n for n in sa if n.split(".")[0] not in ("classifier", "pre_classifier", "pooler", "head")]
    assert any(not torch.equal(sa[n], sc[n]) for n in enc)
    assert any(not torch.equal(sa[n], sp[n]) for n in enc)  # not the saved weights


def _values(model, center, rows, moved, use_cache):
    gen = torch.Generator().manual_seed(0)
    direction = OrderedDict((n, torch.randn(center[n].shape, generator=gen) * 0.1) for n in moved)
    sets = [EvalSet.from_tokenized("dev", rows, 5, 0)]
    ev = Evaluator(model, get_task("mrpc"), center, Directions("test", direction), sets, use_cache=use_cache)
    return ev, [ev.evaluate(a) for a in (0.0, 0.5, -1.0)]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("selector", ["layer.-1", "pooler", "head"])
def test_hidden_state_cache_equals_full_forward(arch, selector, rows):
    model = tiny_model(arch)
    names = list(trainable_parameters(model))
    if selector == "pooler" and not HAS_POOLER.get(arch):
        selector = "head"
    moved = select_parameters(names, selector)
    center = parameter_state(model)
    cached_ev, cached = _values(model, center, rows, moved, True)
    full_ev, full = _values(model, center, rows, moved, False)
    assert full_ev.caches is None
    # ALBERT's one shared group runs at every depth: no block below the moved ones to skip
    expect_cache = HiddenStateCache.supported(model) and not (arch == "albert" and selector == "layer.-1")
    assert (cached_ev.caches is not None) == expect_cache
    assert HiddenStateCache.supported(model) == (arch != "albert")
    for c, f in zip(cached, full):
        for k in f:
            assert c[k] == pytest.approx(f[k], rel=1e-6, abs=1e-7, nan_ok=True), (k, c[k], f[k])
