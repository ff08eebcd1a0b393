"""Every supported architecture end to end: train one epoch, the 1D curve at α = 0.5 vs plain transformers.

    python benchmarks/bench_architectures.py

Per architecture (tests/tiny_archs.py: hidden 32, 2 blocks, MiniLM's vocabulary, saved with
save_pretrained and used as `model.name_or_path`): one epoch on the tests' tiny MRPC (lr 3e-3),
the dev loss of the difference curve at α = 0, 1 and 0.5, θ0 + 0.5·δ1 evaluated with plain
transformers (tests/test_architectures_e2e.plain_dev_loss), and their relative deviation.
The same computation as the slow test, with the numbers printed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))


def main() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("BVL_CACHE_DIR", tempfile.mkdtemp())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from conftest import tiny_train_cfg, write_glue
    from test_architectures_e2e import plain_dev_loss
    from tiny_archs import ARCHS, save_tiny

    from bertviz_landscape.engine.surface import load_surface
    from bertviz_landscape.engine.sweep import landscape
    from bertviz_landscape.training.train import train

    head = ("architecture", "train s", "J(0)", "J(1)", "J(0.5) ours", "plain", "rel")
    print(f"{head[0]:<12} {head[1]:>7} {head[2]:>8} {head[3]:>8} {head[4]:>12} {head[5]:>12} {head[6]:>8}")
    for arch in ARCHS:
        tmp = Path(tempfile.mkdtemp())
        glue, source, run = write_glue(tmp / "glue"), save_tiny(arch, tmp / "model"), tmp / "run"
        started = time.perf_counter()
        overrides = [
            "init=pretrained",
            "init.lr=3e-3",
            f"model.name_or_path={source}",
            "model.config_overrides={}",
        ]
        train(tiny_train_cfg(glue, *overrides, "callbacks=none"), run)
        seconds = time.perf_counter() - started
        theta0, theta1 = run / "checkpoints" / "init", run / "checkpoints" / "final"
        res = landscape(
            task="mrpc",
            theta0=theta0,
            theta1=theta1,
            output=tmp / "curve.h5",
            grid={"x": {"min": 0.0, "max": 1.0, "num": 3}},
            directions={"name": "difference"},
            data={
                "glue_dir": str(glue),
                "max_length": 128,
                "eval_batch_size": 5,
                "cache_dir": str(tmp / "c"),
            },
            splits=["dev"],
            progress=False,
        )
        loss = load_surface(res.surface)["dev_loss"]
        ref = plain_dev_loss(theta0, theta1, 0.5, glue)
        rel = abs(float(loss[1]) - ref) / ref
        print(
            f"{arch:<12} {seconds:7.1f} {loss[0]:8.5f} {loss[2]:8.5f} {loss[1]:12.8f} {ref:12.8f} {rel:8.1e}"
        )


if __name__ == "__main__":
    main()
