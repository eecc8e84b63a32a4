"""Resume after ``kill -9``: a training process killed without warning (no signal handler runs)
resumes from its last checkpoint to the same weights, bit for bit, as an uninterrupted run, and
leaves no partial checkpoint file behind.
"""

from __future__ import annotations

import runpy
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    import torch
    from replibench.families.ett.family import FAMILY as ETT_FAMILY
    from replibench.families.task import Task
    from replibench.train import train

    class Toy(Task):
        name = "toy"
        def load(self, data_dir, run, settings):
            g = torch.Generator().manual_seed(0)
            x = torch.randn(120, 2, generator=g)
            return {"train": (x[:100], x[:100, 0] - 2 * x[:100, 1]), "val": (x[100:], x[100:, 0] - 2 * x[100:, 1])}
        def build_model(self, data, run, settings):
            return torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Dropout(0.1), torch.nn.Linear(8, 1),
                                       torch.nn.Flatten(0))
        def num_train_examples(self, data):
            return 100
        def make_batch(self, data, split, indices):
            return data[split][0][indices], data[split][1][indices]
        def training_loss(self, model, batch):
            time.sleep(float(sys.argv[2]))  # slow enough to be killed mid-run
            return torch.nn.functional.mse_loss(model(batch[0]), batch[1])
        def validation_loss(self, model, data, settings):
            with torch.no_grad():
                return float(torch.nn.functional.mse_loss(model(data["val"][0]), data["val"][1]))
        def predict(self, *args):
            raise NotImplementedError
        def score(self, *args):
            raise NotImplementedError

    run = ETT_FAMILY.make_run("etth1", "forecast", "dlinear", {"horizon": 96}, 3)
    settings = {"train": {"epochs": 4, "batch_size": 10, "lr": 1e-2, "patience": None, "lr_schedule": "constant",
                          "checkpoint_every": 3, "device": "cpu"}, "model": {}, "task": {}}
    out = Path(sys.argv[1])
    task = Toy()
    model, summary = train(task, task.load(None, run, settings), run, settings, last_checkpoint=out / "last.pt", progress=False,
                           data_sha256={"toy.csv": "0" * 64})
    torch.save({"state_dict": model.state_dict(), "attempts": summary["attempts"]}, out / "model.pt")
''')
TOTAL_STEPS = 4 * 10


def _run(script: Path, out: Path, step_s: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script), str(out), str(step_s)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _step(last: Path) -> int:
    return torch.load(last, weights_only=True)["state"]["global_step"]


def test_killed_run_resumes_to_identical_weights_and_leaves_no_partial_file(tmp_path, monkeypatch):
    script = tmp_path / "toy_train.py"
    script.write_text(SCRIPT)
    monkeypatch.setattr(sys, "argv", [str(script), str(tmp_path / "reference"), "0"])
    runpy.run_path(str(script), run_name="__main__")  # the uninterrupted reference, in this process

    out = tmp_path / "killed"
    last = out / "last.pt"
    victim = _run(script, out, 0.05)
    deadline = time.monotonic() + 240
    while not (last.exists() and _step(last) >= 6) and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    killed_at = _step(last)
    assert 0 < killed_at < TOTAL_STEPS and not (out / "model.pt").exists()
    # what a kill during a checkpoint write leaves: atomic_path's temporary file
    partial = out / ".last.pt.k9xyz.tmp"
    partial.write_bytes(b"half a checkpoint")

    resumed = _run(script, out, 0.0)
    output, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, output[-3000:]
    assert "removing" in output and "interrupted" in output  # the partial write was cleaned up, said so

    expected = torch.load(tmp_path / "reference" / "model.pt", weights_only=True)
    result = torch.load(out / "model.pt", weights_only=True)
    for key, value in expected["state_dict"].items():
        assert torch.equal(result["state_dict"][key], value), key
    assert [a["start_step"] for a in result["attempts"]] == [0, killed_at]
    assert sorted(p.name for p in out.iterdir()) == ["last.pt", "model.pt"]  # nothing partial or stale
