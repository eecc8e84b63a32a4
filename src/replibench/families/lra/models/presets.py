"""LRA hyper-parameters per registry model, preset (``smoke`` | ``paper``) and task, as plain dicts.

``preset(model, preset, task)`` returns ``{"model": <sequence_classifier.Config dict>, "train":
<replibench.train.TrainConfig dict>}``. The task fills ``vocab_size`` / ``d_input`` from its data.
Sources (read from the public repositories, see ../shared/research/lra.md §3):

* S4 family (S4-LegS, S4-FouT, S4D-*, S4-PTD): state-spaces/s4 ``configs/experiment/lra/
  s4-lra-{listops,imdb,aan,cifar,pathfinder,pathx}.yaml`` (the HTTYH/S4D-era files, later moved
  to ``lra/old/v3-s4-*``); S4D = the same files with ``layer.mode=diag`` + ``init``; FouT =
  ``measure=fout``. Path-X uses the papers' lr 5e-4 and 1-epoch (10k step) warm-up stated in the
  file's comments, not the file's later 1e-3 / 50k values. Unset warm-ups are the scheduler
  default (1000 steps). S4-PTD: the PTD paper's table was not verified; S4D-LegS settings.
* S5 / S5-PTD: lindermanlab/S5 ``bin/run_experiments/run_lra_*.sh`` and ``run_train.py``
  defaults (prenorm, BatchNorm momentum 0.95, half_glu1); lr = ssm_lr_base * lr_factor;
  warm-up ``warmup_end`` epochs converted to steps. S5 decays to lr_min 1e-6; the trainer's
  cosine goes to 0 (difference below 1e-6 * lr).
* Transformer: google-research/long-range-arena ``*/configs/base_*_config.py`` and
  ``transformer_base.py``; ListOps/Text/Retrieval use ``constant * linear_warmup * rsqrt_decay``
  (the trainer's ``lr_schedule: "rsqrt"``), Image/Pathfinder cosine.
"""

from __future__ import annotations

import copy

from replibench.errors import ConfigError

TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
MODELS = ("s4d-legs", "s4d-inv", "s4d-lin", "s4-legs", "s4-fout", "s4-ptd", "s5", "s5-ptd", "transformer")

# Sequence length (per document for retrieval), classes, input kind — research notes §1.2, s4 l_max.
TASK_SHAPES: dict[str, dict] = {
    "listops": {"l_max": 2048, "n_classes": 10, "tokens": True, "dual": False},
    "text": {"l_max": 4096, "n_classes": 2, "tokens": True, "dual": False},
    "retrieval": {"l_max": 4000, "n_classes": 2, "tokens": True, "dual": True},
    "image": {"l_max": 1024, "n_classes": 10, "tokens": False, "dual": False},
    "pathfinder": {"l_max": 1024, "n_classes": 2, "tokens": False, "dual": False},
    "pathx": {"l_max": 16384, "n_classes": 2, "tokens": False, "dual": False},
}

# s4 v3-era files: layers, d_model, norm, prenorm, dropout, tie, n_ssm, batch, lr, ssm lr, dt uses
# ssm lr, wd, epochs, total steps, warm-up, dt_min, pool.
_S4 = {
    "listops": dict(n_layers=8, d_model=128, norm="batch", prenorm=False, dropout=0.0, tie=False, n_ssm=None,
                    batch=50, lr=0.01, ssm_lr=0.001, dt_ssm=False, wd=0.05, epochs=40, steps=80000,
                    warmup=1000, dt_min=1e-3, pool="mean"),
    "text": dict(n_layers=6, d_model=256, norm="batch", prenorm=True, dropout=0.0, tie=False, n_ssm=None,
                 batch=16, lr=0.01, ssm_lr=0.001, dt_ssm=False, wd=0.05, epochs=32, steps=50000,
                 warmup=1000, dt_min=1e-3, pool="mean"),
    "retrieval": dict(n_layers=6, d_model=256, norm="batch", prenorm=True, dropout=0.0, tie=False, n_ssm=256,
                      batch=64, lr=0.01, ssm_lr=0.001, dt_ssm=False, wd=0.05, epochs=20, steps=50000,
                      warmup=2500, dt_min=1e-3, pool="mean"),
    "image": dict(n_layers=6, d_model=512, norm="layer", prenorm=False, dropout=0.1, tie=True, n_ssm=2,
                  batch=50, lr=0.01, ssm_lr=0.001, dt_ssm=False, wd=0.05, epochs=200, steps=200000,
                  warmup=1000, dt_min=1e-3, pool="mean"),
    "pathfinder": dict(n_layers=6, d_model=256, norm="batch", prenorm=True, dropout=0.0, tie=False, n_ssm=256,
                       batch=64, lr=0.004, ssm_lr=0.001, dt_ssm=True, wd=0.03, epochs=200, steps=500000,
                       warmup=2500, dt_min=1e-3, pool="last"),
    "pathx": dict(n_layers=6, d_model=256, norm="batch", prenorm=True, dropout=0.0, tie=False, n_ssm=None,
                  batch=16, lr=5e-4, ssm_lr=5e-4, dt_ssm=True, wd=0.05, epochs=50, steps=500000,
                  warmup=10000, dt_min=1e-4, pool="mean"),
}

# S5 scripts: layers, H, P, J, batch, epochs, ssm_lr, lr_factor, wd, dropout, C_init, activation,
# opt_config, dt_global, clip_eigs, bn momentum (flax), warm-up epochs, train examples, dt_min.
_S5 = {
    "listops": dict(n_layers=8, H=128, P=16, J=8, batch=50, epochs=40, ssm_lr=1e-3, factor=3.0, wd=0.04,
                    dropout=0.0, C_init="lecun_normal", act="half_glu2", opt="BfastandCdecay",
                    dt_global=False, clip=False, bn=0.95, warm_epochs=1, n_train=96000, dt_min=1e-3),
    "text": dict(n_layers=6, H=256, P=192, J=12, batch=50, epochs=35, ssm_lr=1e-3, factor=4.0, wd=0.07,
                 dropout=0.1, C_init="lecun_normal", act="half_glu2", opt="standard",
                 dt_global=True, clip=False, bn=0.95, warm_epochs=0, n_train=25000, dt_min=1e-3),
    "retrieval": dict(n_layers=6, H=128, P=256, J=16, batch=32, epochs=20, ssm_lr=1e-3, factor=2.0, wd=0.05,
                      dropout=0.0, C_init="trunc_standard_normal", act="half_glu1", opt="standard",
                      dt_global=True, clip=False, bn=0.95, warm_epochs=1, n_train=147086, dt_min=1e-3),
    "image": dict(n_layers=6, H=512, P=384, J=3, batch=50, epochs=250, ssm_lr=1e-3, factor=4.5, wd=0.07,
                  dropout=0.1, C_init="lecun_normal", act="half_glu1", opt="BfastandCdecay",
                  dt_global=False, clip=True, bn=0.95, warm_epochs=1, n_train=45000, dt_min=1e-3),
    "pathfinder": dict(n_layers=6, H=192, P=256, J=8, batch=64, epochs=200, ssm_lr=9e-4, factor=5.0, wd=0.03,
                       dropout=0.05, C_init="trunc_standard_normal", act="half_glu1", opt="standard",
                       dt_global=False, clip=False, bn=0.9, warm_epochs=1, n_train=160000, dt_min=1e-3),
    "pathx": dict(n_layers=6, H=128, P=256, J=16, batch=32, epochs=75, ssm_lr=6e-4, factor=3.0, wd=0.06,
                  dropout=0.0, C_init="complex_normal", act="half_glu1", opt="BandCdecay",
                  dt_global=False, clip=False, bn=0.9, warm_epochs=1, n_train=160000, dt_min=1e-4),
}

# LRA base configs (+ transformer_base overrides for the image tasks).
_TRANSFORMER = {
    # ListOps: base_listops_config.py at cd31e5c (4 layers, mlp 1024 since 8d3dc39, 2021-03-22; the
    # first release had 6 / 2048). Untied: the config's tied_weights is never passed to the model by
    # listops/train.py (at any commit), so TransformerEncoder's default tied_weights=False applies.
    "listops": dict(emb=512, heads=8, layers=4, qkv=512, mlp=1024, drop=0.1, attn=0.1, pool="CLS", learn=False,
                    tied=False, batch=32, lr=0.05, wd=0.1, steps=5000, warmup=1000, schedule="rsqrt", clip=None),
    "text": dict(emb=256, heads=4, layers=4, qkv=256, mlp=1024, drop=0.1, attn=0.1, pool="CLS", learn=False,
                 tied=False, batch=32, lr=0.05, wd=0.1, steps=20000, warmup=8000, schedule="rsqrt", clip=None,
                 max_len=1000),
    # Retrieval: matching/train.py builds TransformerDualEncoder, whose shared encoder has no [CLS]
    # token (classifier=False); pooling_mode "CLS" then takes each document's first token: FIRST.
    "retrieval": dict(emb=128, heads=4, layers=4, qkv=128, mlp=512, drop=0.1, attn=0.1, pool="FIRST", learn=False,
                      tied=False, batch=32, lr=0.05, wd=0.1, steps=5000, warmup=8000, schedule="rsqrt", clip=None),
    # Image / Pathfinder: the transformer_base.py overrides as of LRA ee6649e (2021-08-29, "Add the
    # missing config in the public config for transformer on image tasks"), kept at cd31e5c; the
    # earlier public files had none (cifar10: base config emb 32 / 1 head / qkv 32 / mlp 64) or a
    # 1-layer emb-128 model (pathfinder32). Other fields from base_{cifar10,pathfinder32}_config.py.
    "image": dict(emb=128, heads=8, layers=1, qkv=64, mlp=128, drop=0.3, attn=0.2, pool="CLS", learn=True,
                  tied=False, batch=256, lr=5e-4, wd=0.0, steps=175 * 200, warmup=175, schedule="cosine", clip=None),
    "pathfinder": dict(emb=32, heads=4, layers=4, qkv=16, mlp=32, drop=0.2, attn=0.1, pool="MEAN", learn=False,
                       tied=False, batch=512, lr=1e-3, wd=0.0, steps=312 * 200, warmup=312, schedule="cosine",
                       clip=None),
    # Path-X: image/configs/pathfinder128/transformer_base.py sets only model_type, so the model is
    # base_pathfinder128_config.py's (LRA@cd31e5c): 1 layer, 2 heads, emb 32, qkv emb/2 = 16,
    # mlp qkv*2 = 32, dropout 0.1, attention dropout 0.1, MEAN pooling, learned positions;
    # batch 64, lr 1e-3, no weight decay, grad-norm clip 1, 200 epochs of 160000 // 64 = 2500 steps.
    "pathx": dict(emb=32, heads=2, layers=1, qkv=16, mlp=32, drop=0.1, attn=0.1, pool="MEAN", learn=True,
                  tied=False, batch=64, lr=1e-3, wd=0.0, steps=2500 * 200, warmup=2500, schedule="cosine", clip=1.0),
}

# S4D on LRA is *bilinear* (issue 11, departure 4). Evidence, state-spaces/s4 at v3.0.0 (ab287c6,
# 2022-08-03; CHANGELOG: "Complete version of S4D module from [S4D paper]", "Improved configs for
# Long Range Arena reported in HTTYH and S4D papers"): S4D is ``model.layer.mode=diag`` on the
# ``lra/s4-lra-*.yaml`` files; ``SSKernelDiag.__init__`` defaults to ``disc='bilinear'``
# (src/models/sequence/ss/kernel.py and the standalone src/models/s4/s4.py), and neither
# configs/model/layer/s4.yaml nor any lra/ config sets ``disc`` (grep: no match). The same default
# holds at every kernel.py commit from V2.1 (643a518, 2022-05-01, S4D release) to v3.0.0. ZOH is
# the default only of the pedagogical minimal ``s4d.py`` and, later, of v4's SSMKernelDiag
# ("disc: str = 'zoh',  # Change to 'bilinear' to match S4"), which post-dates the paper.
_S4D_LRA_DISC = "bilinear"

_S4_LAYER = {
    "s4d-legs": ("s4d", {"init": "legs", "disc": _S4D_LRA_DISC}),
    "s4d-inv": ("s4d", {"init": "inv", "disc": _S4D_LRA_DISC}),
    "s4d-lin": ("s4d", {"init": "lin", "disc": _S4D_LRA_DISC}),
    # S4-PTD (2023): the PTD authors' code was not available here; it post-dates s4 v4.0.0, whose
    # diagonal kernel defaults to ZOH, so S4-PTD keeps our S4DConfig default (ZOH), unverified.
    "s4-ptd": ("s4d", {"init": "ptd"}),
    "s4-legs": ("s4", {"measure": "legs"}),
    "s4-fout": ("s4", {"measure": "fout"}),
}


def _s4_family(model: str, task: str) -> dict:
    p, shape = _S4[task], TASK_SHAPES[task]
    layer, extra = _S4_LAYER[model]
    sub = {"d_state": 64, "dt_min": p["dt_min"], "dt_max": 0.1, "n_ssm": p["n_ssm"], "bidirectional": True, **extra}
    if layer == "s4":
        sub["l_max"] = shape["l_max"]
    return {
        "model": {"layer": layer, "n_classes": shape["n_classes"], "n_layers": p["n_layers"], "d_model": p["d_model"],
                  "norm": p["norm"], "prenorm": p["prenorm"], "dropout": p["dropout"], "tie_dropout": p["tie"],
                  "pool": p["pool"], "dual": shape["dual"], "dt_uses_ssm_lr": p["dt_ssm"], layer: sub},
        "train": {"epochs": p["epochs"], "max_steps": p["steps"], "batch_size": p["batch"], "optimizer": "adamw",
                  "lr": p["lr"], "weight_decay": p["wd"], "lr_schedule": "cosine", "warmup_steps": p["warmup"],
                  "patience": None, "param_group_options": {"ssm_lr": p["ssm_lr"]}},
    }


def _s5_family(model: str, task: str) -> dict:
    p, shape = _S5[task], TASK_SHAPES[task]
    steps_per_epoch = p["n_train"] // p["batch"]
    sub = {"ssm_size": p["P"], "blocks": p["J"], "C_init": p["C_init"], "dt_min": p["dt_min"], "dt_max": 0.1,
           "dt_global": p["dt_global"], "clip_eigs": p["clip"], "bidirectional": True, "activation": p["act"],
           "opt_config": p["opt"], "init": "ptd" if model == "s5-ptd" else "hippo"}
    return {
        "model": {"layer": "s5", "n_classes": shape["n_classes"], "n_layers": p["n_layers"], "d_model": p["H"],
                  "norm": "batch", "prenorm": True, "final_norm": False, "residual_dropout": False,
                  "dropout": p["dropout"], "bn_momentum": round(1.0 - p["bn"], 6), "pool": "mean",
                  "dual": shape["dual"], "s5": sub},
        "train": {"epochs": p["epochs"], "batch_size": p["batch"], "optimizer": "adamw",
                  "lr": p["ssm_lr"] * p["factor"], "weight_decay": p["wd"], "lr_schedule": "cosine",
                  "warmup_steps": p["warm_epochs"] * steps_per_epoch, "patience": None,
                  "param_group_options": {"ssm_lr": p["ssm_lr"]}},
    }


def _transformer(task: str) -> dict:
    p, shape = _TRANSFORMER[task], TASK_SHAPES[task]
    sub = {"emb_dim": p["emb"], "num_heads": p["heads"], "num_layers": p["layers"], "qkv_dim": p["qkv"],
           "mlp_dim": p["mlp"], "dropout": p["drop"], "attention_dropout": p["attn"], "pool": p["pool"],
           "learn_pos_emb": p["learn"], "tied_weights": p["tied"], "max_len": p.get("max_len", shape["l_max"])}
    return {
        # LRA feeds pixels as 8-bit tokens through an embedding (vocab 256) on the image tasks too.
        "model": {"layer": "transformer", "n_classes": shape["n_classes"], "dual": shape["dual"],
                  "vocab_size": None if shape["tokens"] else 256, "transformer": sub},
        "train": {"epochs": 10**6, "max_steps": p["steps"], "batch_size": p["batch"], "optimizer": "adamw",
                  "lr": p["lr"], "weight_decay": p["wd"], "lr_schedule": p["schedule"],
                  "warmup_steps": p["warmup"], "grad_clip": p["clip"], "patience": None},
    }


def _smoke(model: str, task: str) -> dict:
    """Tiny CPU settings (minutes): 2 layers, width 32, 20 optimiser steps, same code paths."""
    out = _paper(model, task)
    m, t = out["model"], out["train"]
    if m["layer"] == "transformer":
        m["transformer"].update(emb_dim=32, num_heads=2, num_layers=2, qkv_dim=32, mlp_dim=64)
    else:
        m.update(n_layers=2, d_model=32)
        sub = m[m["layer"]]
        if m["layer"] == "s5":
            sub.update(ssm_size=16, blocks=2)
        else:
            sub.update(d_state=16, n_ssm=None)
    t.update(epochs=1, max_steps=20, batch_size=8)
    if t["lr_schedule"] != "rsqrt":  # rsqrt's peak is lr/sqrt(warmup): keep LRA's warm-up there
        t["warmup_steps"] = 2
    return out


def _paper(model: str, task: str) -> dict:
    if model in _S4_LAYER:
        return _s4_family(model, task)
    if model in ("s5", "s5-ptd"):
        return _s5_family(model, task)
    return _transformer(task)


def preset(model: str, preset_name: str, task: str) -> dict:
    """{"model": ..., "train": ...} for ``model`` x ``preset_name`` x ``task`` (fresh copies)."""
    if model not in MODELS:
        raise ConfigError(f"lra_presets: unknown model {model!r}; allowed: {', '.join(MODELS)}")
    if task not in TASKS:
        raise ConfigError(f"lra_presets: unknown task {task!r}; allowed: {', '.join(TASKS)}")
    if preset_name not in ("smoke", "paper"):
        raise ConfigError(f"lra_presets: preset must be 'smoke' or 'paper', found {preset_name!r}")
    return copy.deepcopy(_smoke(model, task) if preset_name == "smoke" else _paper(model, task))


PRESETS: dict[str, dict[str, dict[str, dict]]] = {
    m: {p: {t: preset(m, p, t) for t in TASKS} for p in ("smoke", "paper")} for m in MODELS
}
