"""Typed requests: their defaults are the YAML's, an unknown keyword names the nearest valid one,
and a bad value is one line naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bertviz_landscape.analysis.registry import specs
from bertviz_landscape.analysis.request import AnalyzeRequest
from bertviz_landscape.cli.compose import compose
from bertviz_landscape.contracts.config import CONF_DIR
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.engine.request import RECIPES, DirectionsRequest, LandscapeRequest

# keys of the composed YAML that no request holds: the command's own (read by interpolation)
COMMAND_ONLY = {"paths"}


def _yaml(name: str, overrides: list[str]) -> dict:
    cfg = compose(name, overrides)
    return {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in COMMAND_ONLY}


def _empty_axis(grid: dict) -> dict:
    """conf/grid/line.yaml's y (all null) is no axis."""
    y = grid.get("y")
    return grid | {"y": None if not y or all(v is None for v in y.values()) else y}


def _same(yaml_value, request_value, where: str) -> None:
    assert request_value == yaml_value, f"{where}: YAML {yaml_value!r} != request default {request_value!r}"
    if isinstance(yaml_value, dict):
        for k in yaml_value:
            _same(yaml_value[k], request_value[k], f"{where}.{k}")
    elif yaml_value is not None and not isinstance(yaml_value, list):
        assert isinstance(request_value, type(yaml_value)) or (
            isinstance(yaml_value, int) and isinstance(request_value, float)
        ), f"{where}: YAML {yaml_value!r} is {type(yaml_value).__name__}, the request's {request_value!r}"


@pytest.mark.parametrize("grid", ["line", "plane"])
@pytest.mark.parametrize("directions", RECIPES)
def test_the_landscape_request_defaults_are_the_yaml_defaults(grid, directions):
    """conf/landscape.yaml (with each grid and directions group) composed == the request built
    from nothing but the group's name: a default changed in one place and not the other fails."""
    yaml = _yaml("landscape", [f"grid={grid}", f"directions={directions}"])
    req = LandscapeRequest(grid=grid, directions=directions).to_dict()
    yaml["grid"], req["grid"] = _empty_axis(yaml["grid"]), _empty_axis(req["grid"])
    yaml_output, req_output = yaml.pop("output"), req.pop("output")
    assert Path(req_output) == Path(yaml_output).resolve()
    req.pop("notes")
    assert yaml.pop("task", None) is None and req.pop("task") is None
    assert set(req) == set(yaml), set(req) ^ set(yaml)
    data_keys = set(req["data"])
    yaml["data"] = {k: v for k, v in yaml["data"].items() if k in data_keys}  # training's keys: not read
    _same(yaml, req, "landscape")


def test_a_direction_recipe_has_exactly_its_yaml_keys():
    for recipe in RECIPES:
        yaml = OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / "directions" / f"{recipe}.yaml"))
        assert DirectionsRequest(name=recipe).to_dict() == yaml


@pytest.mark.parametrize("name", [s.name for s in specs()])
def test_each_analysis_request_defaults_are_the_yaml_defaults(name):
    """conf/analyze.yaml with analysis=<name> composed == AnalyzeRequest(analysis=name)."""
    yaml = _yaml("analyze", [f"analysis={name}"])
    req = AnalyzeRequest(analysis=name).to_dict()
    assert Path(req.pop("output")) == Path(yaml.pop("output"))
    yaml["data"] = {k: v for k, v in yaml["data"].items() if k in req["data"]}
    assert set(req) == set(yaml), set(req) ^ set(yaml)
    _same(yaml, req, "analyze")


def test_an_unknown_keyword_names_the_nearest_valid_one():
    with pytest.raises(TypeError, match=r"'gird'; did you mean 'grid'\?"):
        LandscapeRequest(gird={"x": {"min": 0, "max": 1, "num": 3}})
    with pytest.raises(TypeError, match=r"'grid\.x\.mn'; did you mean 'grid\.x\.min'\?"):
        LandscapeRequest(grid={"x": {"mn": 0}})
    with pytest.raises(TypeError, match=r"'directions\.sed'; did you mean 'directions\.seed'\?"):
        LandscapeRequest(directions={"name": "random", "sed": 1})
    with pytest.raises(TypeError, match=r"'analysis\.hessian\.kk'; did you mean 'analysis\.hessian\.k'\?"):
        AnalyzeRequest(analysis={"name": "flatness", "hessian": {"kk": 3}})
    with pytest.raises(TypeError, match=r"'surfce'; did you mean 'surface'\?"):
        AnalyzeRequest(surfce="x.h5")


def test_a_nested_section_merges_onto_its_default():
    req = LandscapeRequest(grid={"x": {"num": 5}}, data={"max_length": 64})
    assert (req.grid.x.min, req.grid.x.max, req.grid.x.num, req.grid.name) == (-0.5, 1.5, 5, "line")
    assert req.data.max_length == 64 and req.data.max_train_samples == 1024
    a = AnalyzeRequest(analysis={"name": "flatness", "hessian": {"k": 3}}).analysis
    assert (a.hessian.k, a.hessian.samples, a.epsilon) == (3, 50, 0.1)


def test_a_bad_value_is_one_line_naming_its_key():
    with pytest.raises(BadInput, match=r"^analysis\.hessian\.enabled must be true or false, got 'yes'$"):
        AnalyzeRequest(analysis={"name": "flatness", "hessian": {"enabled": "yes"}})
    with pytest.raises(BadInput, match=r"^analysis\.epsilon must be a number, got 'big'$"):
        AnalyzeRequest(analysis={"name": "flatness", "epsilon": "big"})
    with pytest.raises(BadInput, match=r"data\.max_length must be a positive integer"):
        LandscapeRequest(data={"max_length": 0})
    with pytest.raises(BadInput, match=r"splits must be a non-empty subset"):
        LandscapeRequest(splits=["test"])
