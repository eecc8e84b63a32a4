"""Every registry model builds from its presets, gives the right shapes, and splits its
parameters into the papers' optimiser groups."""

import pytest
import torch

from replibench.families.lra.models.presets import MODELS, PRESETS, TASK_SHAPES, TASKS, preset
from replibench.families.lra.models.s4d import SSM_ROLE
from replibench.families.lra.models.sequence_classifier import Config, SequenceClassifier


def _build(model: str, task: str, gen, **over) -> SequenceClassifier:
    d = preset(model, "smoke", task)["model"]
    if TASK_SHAPES[task]["tokens"]:
        d["vocab_size"] = 18
    d.update(over)
    return SequenceClassifier(Config.from_dict(d), generator=gen)


def _inputs(model: SequenceClassifier, B: int, L: int, gen):
    if model.cfg.vocab_size is not None:
        return torch.randint(0, model.cfg.vocab_size, (B, L), generator=gen)
    return torch.randn(B, L, model.cfg.d_input, generator=gen)


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("task", TASKS)
def test_shapes_for_every_registry_model_and_task(model_name, task, gen):
    model = _build(model_name, task, gen)
    x = _inputs(model, 3, 48, gen)
    mask = torch.ones(3, 48, dtype=torch.bool)
    out = model(x, mask, x2=x.flip(0), mask2=mask) if model.cfg.dual else model(x, mask)
    assert out.shape == (3, TASK_SHAPES[task]["n_classes"])
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_dual_mode_needs_the_second_document(gen):
    model = _build("s4d-legs", "retrieval", gen)
    with pytest.raises(Exception, match="x2"):
        model(_inputs(model, 2, 16, gen))


@pytest.mark.parametrize("model_name", ["s4d-lin", "s4-legs", "s5"])
def test_padding_is_ignored_with_a_mask(model_name, gen):
    model = _build(model_name, "listops", gen).eval()
    x = _inputs(model, 2, 40, gen)
    mask = torch.arange(40).unsqueeze(0) < torch.tensor([[30], [25]])
    x2 = torch.where(mask, x, torch.randint_like(x, 1, 18))  # different padding tokens
    torch.testing.assert_close(model(x, mask), model(x2, mask))


def _group_of(groups: list[dict]) -> dict[int, dict]:
    return {id(p): g for g in groups for p in g["params"]}


@pytest.mark.parametrize("model_name", ["s4d-legs", "s4-fout", "s4-ptd"])
def test_s4_family_param_groups(model_name, gen):
    model = _build(model_name, "pathfinder", gen)  # pathfinder: dt trained at the SSM lr
    groups = model.optimizer_param_groups(lr=0.004, weight_decay=0.03, ssm_lr=0.001)
    where = _group_of(groups)
    params = list(model.parameters())
    assert len(where) == len(params) == sum(len(g["params"]) for g in groups)  # a partition
    for p in params:
        role, g = getattr(p, SSM_ROLE, None), where[id(p)]
        if role in ("A", "B", "dt"):
            assert (g["lr"], g["weight_decay"]) == (0.001, 0.0)
        else:
            assert (g["lr"], g["weight_decay"]) == (0.004, 0.03)
    model = _build(model_name, "listops", gen, dt_uses_ssm_lr=False)  # s4 ``dt: null``
    where = _group_of(model.optimizer_param_groups(lr=0.01, weight_decay=0.05, ssm_lr=0.001))
    for p in model.parameters():
        if getattr(p, SSM_ROLE, None) == "dt":
            assert (where[id(p)]["lr"], where[id(p)]["weight_decay"]) == (0.01, 0.0)


@pytest.mark.parametrize(
    "opt_config,b_group", [("standard", (0.001, 0.0)), ("BandCdecay", (0.001, 0.05)), ("BfastandCdecay", (0.004, 0.05))]
)
def test_s5_param_groups_follow_opt_config(opt_config, b_group, gen):
    d = preset("s5", "smoke", "listops")["model"]
    d["vocab_size"] = 18
    d["s5"]["opt_config"] = opt_config
    model = SequenceClassifier(Config.from_dict(d), generator=gen)
    where = _group_of(model.optimizer_param_groups(lr=0.004, weight_decay=0.05, ssm_lr=0.001))
    for name, p in model.named_parameters():
        g, role = where[id(p)], getattr(p, SSM_ROLE, None)
        if role == "B":
            assert (g["lr"], g["weight_decay"]) == b_group
        elif role in ("A", "dt"):
            assert (g["lr"], g["weight_decay"]) == (0.001, 0.0), name
        else:  # includes the norms: upstream's map_nested_fn never matches its "norm" key
            assert (g["lr"], g["weight_decay"]) == (0.004, 0.05), name


def test_transformer_has_one_regular_group(gen):
    groups = _build("transformer", "text", gen).optimizer_param_groups(lr=0.05, weight_decay=0.1, ssm_lr=0.001)
    assert [g["name"] for g in groups] == ["regular"]


def test_unknown_config_keys_are_errors():
    with pytest.raises(Exception, match="unknown key"):
        Config.from_dict({"layer": "s4d", "d_modle": 3})
    with pytest.raises(Exception, match="unknown key"):
        Config.from_dict({"layer": "s4d", "s4d": {"inti": "legs"}})


def test_smoke_training_steps_reduce_the_loss(gen):
    """Twenty AdamW steps with the param groups fit a fixed tiny batch (CPU, seconds)."""
    torch.manual_seed(0)
    model = _build("s4d-legs", "image", gen)
    x, y = torch.randn(8, 32, 1, generator=gen), torch.randint(0, 10, (8,), generator=gen)
    opt = torch.optim.AdamW(model.optimizer_param_groups(lr=0.01, weight_decay=0.05, ssm_lr=0.001))
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
