"""Every built-in config loads, validates and builds its task (the data it asks for exists)."""

from __future__ import annotations

from pathlib import Path

import pytest

import learnlaw
from learnlaw.policy.config import load_config
from learnlaw.tasks import build_task

BUILTIN = sorted(p.stem for p in (Path(learnlaw.__file__).parent / "configs").glob("*.toml"))
# configs of the other commands (learnlaw select, learnlaw pretrain) are named by their command
OTHER = {"select": [n for n in BUILTIN if n.startswith("select-")]}
OTHER["pretrain"] = [n for n in BUILTIN if n.startswith("pretrain-")]
POLICY = [n for n in BUILTIN if n not in OTHER["select"] + OTHER["pretrain"]]


def test_the_documented_configs_are_built_in():
    assert {
        "lm-cpu",
        "lm-paper",
        "perceptron-paper",
        "perceptron-demo",
        "perceptron-learning-law",
    } <= set(BUILTIN)


@pytest.mark.parametrize("name", POLICY)
def test_builtin_config_builds_its_task(name):
    config = load_config(name)
    task = build_task(config.task, config.task_options, config.seed)
    options = config.task_options
    if config.task == "lm":
        # the built-in corpus holds enough sequences for the configured split, at the
        # configured vocabulary (lm-paper: 16,384 + 512 + 512 sequences of 64 tokens)
        assert task.sizes["train"] == options.n_train
        assert task.sizes["test"] == options.n_test
        assert task.corrupted.sum() == round(options.corrupt_fraction * options.n_train)
    assert task.n_train == options.n_train


@pytest.mark.parametrize("name", OTHER["select"])
def test_builtin_selection_configs_load(name):
    from learnlaw.selection import load_select_config

    load_select_config(name)


@pytest.mark.parametrize("name", OTHER["pretrain"])
def test_builtin_pretraining_configs_load(name):
    from learnlaw.pretrain import load_pretrain_config

    load_pretrain_config(name)
