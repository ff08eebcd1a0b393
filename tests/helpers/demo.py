"""The demo on the tiny config (2-layer BERT, tiny TSVs): the composed demo config the demo,
replicate and roofline tests run."""

from __future__ import annotations

from pathlib import Path

from bertviz_landscape.cli.compose import compose


def tiny_demo_cfg(
    root: Path, pretrained: Path, glue: Path, analyses: list[str], config: str = "demo", **extra
):
    """bertviz-demo's `config` (conf/<config>.yaml) on the tiny BERT (`pretrained`: its saved weights)
    and the tiny GLUE files at `glue`: 2 epochs of batch 8, small grids; `extra`: more key=value overrides."""
    train = [
        "model=tiny",
        f"model.name_or_path={pretrained}",
        "data.batch_size=8",
        "data.eval_batch_size=8",
        "trainer.max_epochs=2",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "data.max_train_samples=null",
        "logger=none",
        "init.lr=1e-3",
        "callbacks.snapshots.every_n_steps=2",
    ]
    overrides = [
        f"output_dir={root}",
        f"glue_dir={glue}",
        "tasks=[mrpc,rte]",
        "landscape.line.num=5",
        "landscape.plane.x.min=-0.5",
        "landscape.plane.x.max=1.5",
        "landscape.plane.x.num=5",
        "landscape.plane.y.num=4",
        f"analyses=[{','.join(analyses)}]",
        *[f"{k}={v}" for k, v in extra.items()],
    ]
    values = {
        "train": {"overrides": train, "second_task": ["trainer.max_epochs=1"]},
        "landscape": {"overrides": ["data.max_train_samples=null", "data.eval_batch_size=8"]},
        "analysis_overrides": {"layers": ["data.max_train_samples=null"]},
    }
    return compose(config, overrides, values)
