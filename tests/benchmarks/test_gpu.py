"""``benchmarks/gpu.py`` runs its CUDA path's code on the CPU (AMP off, tiny size), and
without CUDA its ``main`` prints one line and exits 0."""

from __future__ import annotations

import pytest
import torch

from benchmarks.gpu import NO_CUDA, Setup, Variant, main, report, run

pytestmark = pytest.mark.slow


def test_the_measurement_code_runs_on_the_cpu():
    setup = Setup(
        device="cpu",
        resolution=33,
        batch_size=2,
        steps=2,
        warmup=1,
        head_options={"hidden": 16, "dropout": 0.5},
        scenes=8,
        threads=1,
    )
    variants = (Variant("dense", "dense"), Variant("adapmtl", "adapmtl"))
    figures = run(setup, variants)
    alone = figures["alone"]
    assert [m["variant"] for m in alone] == ["dense", "adapmtl"]
    assert all(m["images_per_s"] > 0 and m["peak_memory_mib"] is None for m in alone)
    assert all(m["amp_dtype"] is None and m["memory_fraction"] is None for m in alone)
    pair = figures["side_by_side"]
    assert pair["variant"] == "adapmtl" and len(pair["trials"]) == 2
    assert all(m["memory_fraction"] == 0.5 and m["images_per_s"] > 0 for m in pair["trials"])
    assert pair["images_per_s"] == pytest.approx(sum(m["images_per_s"] for m in pair["trials"]))
    lines = report(figures)
    assert lines[0].startswith("deeplab-resnet34 + aspp heads, 33x33, batch 2, 2 timed steps")
    assert "peak n/a" in lines[1] and lines[-1].startswith("two 0.5-GPU trials of adapmtl")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_so_and_exits_0(capsys):
    assert main([]) == 0
    assert capsys.readouterr().out == NO_CUDA + "\n"
