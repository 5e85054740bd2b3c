"""Checkpoints shared by test_sample.py, test_common.py, test_eval.py and test_bench.py: tiny models
saved in the format train.py writes."""

import dataclasses

import pytest
import torch

from mask2flow import CONFIGS, Mask2Flow


def save_tiny(path, busy=False):
    """A tiny model at its initialisation; busy: its zero-initialised outputs (FiLM, adaLN-Zero, skip)
    perturbed, so that every part acts and batching, padding or precision errors would show."""
    torch.manual_seed(0)
    model = Mask2Flow(CONFIGS["tiny"])
    for p in model.parameters():
        if busy and not p.abs().sum():
            torch.nn.init.normal_(p, std=0.05)
    torch.save({"config": dataclasses.asdict(model.cfg), "model": model.state_dict(), "ema": model.state_dict(),
                "stage": 2, "step": int(busy), "best_val": 0.0 if busy else float("inf"), "data": {}}, path)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny untrained model: zero velocity, a mask that ignores the enrollment."""
    return save_tiny(tmp_path_factory.mktemp("run") / "ckpt_best.pt")


@pytest.fixture(scope="module")
def busy_ckpt(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("busy") / "ckpt_best.pt", busy=True)
