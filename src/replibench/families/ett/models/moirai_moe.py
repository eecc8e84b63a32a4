"""Moirai-MoE (Liu et al., 2024), the model Salesforce released in ``uni2ts`` as ``MoiraiMoEModule``.

A decoder-only patch transformer: each variate of a series is cut into patches of 16 steps, every
patch becomes one token; tokens attend causally in time (RoPE on half of each head's dimensions) and
freely across variates (a learned same/different-variate bias); each feed-forward block is a sparse
mixture of 32 gated experts of which every token takes 2, chosen by its distance to 32 fixed
centroids. The last context token of a variate predicts the next patch as a mixture of a Student-t,
a narrow normal, a negative binomial and a log-normal, in the series' standardised units.

Written from uni2ts@8d2a08d (``model/moirai_moe/module.py`` and ``forecast.py``, ``module/*``,
``distribution/*``); parameter names are upstream's, so a released ``model.safetensors`` loads with
no renaming. ``tests/golden/test_ett_golden.py`` checks the outputs against the authors' code
(fixture by ``tools/golden/ett_moirai_moe.py``). Why the details below are as they are:

* the scaler works in float64 and returns float32 (upstream ``PackedScaler.forward``);
* experts are picked by the **largest** two centroid distances (``torch.topk`` default) — odd, but
  it is what the released weights were trained with;
* sampling consumes the random stream in upstream's order (every component, then the mixture
  weights), so the same seed gives the same samples.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import (AffineTransform, Categorical, Distribution, Gamma, LogNormal, Normal, StudentT,
                                 TransformedDistribution, constraints)

from replibench.errors import DataError

#: the four mixture components of every released Moirai / Moirai-MoE config.json, in their order
MIXTURE_COMPONENTS = (
    {"_target_": "uni2ts.distribution.student_t.StudentTOutput"},
    {"_target_": "uni2ts.distribution.normal.NormalFixedScaleOutput", "scale": 0.001},
    {"_target_": "uni2ts.distribution.negative_binomial.NegativeBinomialOutput"},
    {"_target_": "uni2ts.distribution.log_normal.LogNormalOutput"},
)
#: each component's parameters, in upstream's ``args_dim`` order (state-dict names depend on them)
COMPONENT_ARGS = (("df", "loc", "scale"), ("loc",), ("total_count", "logits"), ("loc", "scale"))
#: ``TransformerEncoder(use_moe=True)`` hard-codes 32 experts, 2 per token
NUM_EXPERTS = 32
EXPERTS_PER_TOKEN = 2


@dataclass
class MoiraiMoEConfig:
    """The architecture (a released ``config.json``) and how a forecast is made.

    Released sizes (Hugging Face ``Salesforce/moirai-moe-1.0-R-{small,base}``, config.json):
    small d_model 384, d_ff 512, 6 layers; base d_model 768, d_ff 1024, 12 layers; both patch 16,
    max_seq_len 512. ``weights`` names the folder holding ``config.json`` + ``model.safetensors``
    (set by the task); the architecture fields must then equal that config.json's.
    """

    d_model: int = 384
    d_ff: int = 512
    num_layers: int = 6
    patch_sizes: tuple[int, ...] = (16,)
    max_seq_len: int = 512
    attn_dropout_p: float = 0.0
    dropout_p: float = 0.0
    scaling: bool = True
    # forecasting (MoiraiMoEForecast hyper-parameters)
    context_length: int = 1000
    prediction_length: int = 24
    patch_size: int = 16
    num_samples: int = 100
    target_dim: int = 1

    def __post_init__(self) -> None:
        self.patch_sizes = tuple(int(p) for p in self.patch_sizes)
        if self.d_model % 64 or self.d_model < 64:
            raise ValueError(f"moirai-moe: d_model {self.d_model} must be a positive multiple of 64 "
                             "(uni2ts uses d_model // 64 heads)")
        if self.patch_size not in self.patch_sizes:
            raise ValueError(f"moirai-moe: patch_size {self.patch_size} is not one of the model's {self.patch_sizes}")
        for name in ("context_length", "prediction_length", "num_samples", "target_dim", "num_layers", "d_ff"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"moirai-moe: {name} must be ≥ 1, got {getattr(self, name)}")

    @property
    def num_heads(self) -> int:
        return self.d_model // 64

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads


def architecture_from_hub_config(config: dict[str, Any], source: str) -> dict[str, Any]:
    """The architecture fields of a released ``config.json`` (PyTorchModelHubMixin format), checked:
    only the mixture every released model uses is accepted, so nothing is silently reinterpreted."""
    expected = {"attn_dropout_p", "d_ff", "d_model", "distr_output", "dropout_p", "max_seq_len", "num_layers",
                "patch_sizes", "scaling"}
    if set(config) != expected:
        raise DataError(f"{source}: keys {sorted(config)}, expected exactly {sorted(expected)} (Moirai-MoE config.json)")
    distr = config["distr_output"]
    if distr.get("_target_") != "uni2ts.distribution.mixture.MixtureOutput" or \
            tuple(distr.get("components", ())) != MIXTURE_COMPONENTS:
        raise DataError(f"{source}: distr_output {distr!r} is not the released 4-component mixture "
                        f"(Student-t, normal σ=0.001, negative binomial, log-normal)")
    return {key: (tuple(value) if key == "patch_sizes" else value)
            for key, value in config.items() if key != "distr_output"}


def hub_config(config: MoiraiMoEConfig) -> dict[str, Any]:
    """``config.json`` as uni2ts's ``save_pretrained`` writes it for ``config`` (the tiny test checkpoint)."""
    return {"attn_dropout_p": config.attn_dropout_p, "d_ff": config.d_ff, "d_model": config.d_model,
            "distr_output": {"_target_": "uni2ts.distribution.mixture.MixtureOutput",
                             "components": [dict(c) for c in MIXTURE_COMPONENTS]},
            "dropout_p": config.dropout_p, "max_seq_len": config.max_seq_len, "num_layers": config.num_layers,
            "patch_sizes": list(config.patch_sizes), "scaling": config.scaling}


# ---------------------------------------------------------------------------------------------- layers


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) · weight over the last dimension (uni2ts ``module/norm.py``, eps 1e-5)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


class MultiInSizeLinear(nn.Module):
    """One linear map per patch size, each reading the first ``size`` of the ``max(sizes)`` inputs;
    a token uses the map of its patch size (uni2ts ``ts_embed.MultiInSizeLinear``)."""

    def __init__(self, in_sizes: tuple[int, ...], out_features: int) -> None:
        super().__init__()
        self.in_sizes = in_sizes
        self.weight = nn.Parameter(torch.zeros(len(in_sizes), out_features, max(in_sizes)))
        self.bias = nn.Parameter(torch.zeros(len(in_sizes), out_features))
        mask = torch.arange(max(in_sizes))[None, :] < torch.tensor(in_sizes)[:, None]  # (P, max)
        self.register_buffer("mask", mask[:, None, :], persistent=False)  # (P, 1, max)

    def forward(self, x: torch.Tensor, patch_size: torch.Tensor) -> torch.Tensor:
        out = 0
        for index, size in enumerate(self.in_sizes):
            weight = self.weight[index] * self.mask[index]
            out = out + torch.eq(patch_size, size).unsqueeze(-1) * (x @ weight.T + self.bias[index])
        return out


class FeatLinear(nn.Module):
    """A d_model → d_model linear map per patch size (uni2ts ``ts_embed.FeatLinear``)."""

    def __init__(self, in_sizes: tuple[int, ...], features: int) -> None:
        super().__init__()
        self.in_sizes = in_sizes
        self.weight = nn.Parameter(torch.zeros(len(in_sizes), features, features))
        self.bias = nn.Parameter(torch.zeros(len(in_sizes), features))

    def forward(self, x: torch.Tensor, patch_size: torch.Tensor) -> torch.Tensor:
        out = 0
        for index, size in enumerate(self.in_sizes):
            out = out + torch.eq(patch_size, size).unsqueeze(-1) * (x @ self.weight[index].T + self.bias[index])
        return out


class MultiOutSizeLinear(nn.Module):
    """Output map of one distribution parameter: per patch size, ``size · dim`` outputs of the
    ``max(sizes) · dim`` (uni2ts ``ts_embed.MultiOutSizeLinear``)."""

    def __init__(self, in_features: int, out_sizes: tuple[int, ...], dim: int) -> None:
        super().__init__()
        self.out_sizes = out_sizes
        self.dim = dim
        self.weight = nn.Parameter(torch.zeros(len(out_sizes), max(out_sizes), in_features))
        self.bias = nn.Parameter(torch.zeros(len(out_sizes), max(out_sizes)))
        mask = torch.arange(max(out_sizes))[None, :] < torch.tensor(out_sizes)[:, None]  # (P, max)
        self.register_buffer("mask", mask[:, :, None], persistent=False)  # (P, max, 1)

    def forward(self, x: torch.Tensor, patch_size: torch.Tensor) -> torch.Tensor:
        out = 0
        for index, size in enumerate(self.out_sizes):
            weight = self.weight[index] * self.mask[index]
            out = out + torch.eq(patch_size, size // self.dim).unsqueeze(-1) * (x @ weight.T + self.bias[index])
        return out


class BinaryAttentionBias(nn.Module):
    """A learned per-head bias for query/key pairs of the same variate (row 1) or not (row 0)."""

    def __init__(self, num_heads: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(2, num_heads)

    def forward(self, query_id: torch.Tensor, key_id: torch.Tensor) -> torch.Tensor:
        # ids (..., 1, 1, L) → bias (..., heads, 1, Lq, Lk) laid out as upstream's (group, hpg)
        same = torch.eq(query_id.unsqueeze(-1), key_id.unsqueeze(-2))  # (..., 1, 1, Lq, Lk)
        weight = self.emb.weight[:, :, None, None]  # (2, heads, 1, 1)
        bias = ~same * weight[:1] + same * weight[1:]  # (..., 1, heads, Lq, Lk)
        return bias.movedim(-3, -4)  # upstream's rearrange to (..., group, hpg, Lq, Lk) with hpg = 1


class RotaryProjection(nn.Module):
    """RoPE over ``width`` dimensions with interleaved pairs (uni2ts ``RotaryProjection``, base 10⁴);
    the frequency tables are float32 as upstream builds them."""

    def __init__(self, width: int, max_len: int, base: int = 10000) -> None:
        super().__init__()
        theta = 1.0 / torch.pow(base, torch.arange(0, width, 2, dtype=torch.float) / width)
        self.register_buffer("theta", theta, persistent=False)
        self.register_buffer("cos", None, persistent=False)
        self.register_buffer("sin", None, persistent=False)
        self._extend(max_len)

    def _extend(self, length: int) -> None:
        if self.cos is None or self.cos.size(-2) < length:
            position = torch.arange(length, device=self.theta.device, dtype=self.theta.dtype)
            angles = (position[:, None] * self.theta[None, :]).repeat_interleave(2, dim=-1)  # (len, width)
            self.cos = torch.cos(angles)
            self.sin = torch.sin(angles)

    def forward(self, x: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        self._extend(int(position.max()) + 1)
        rotated = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)  # pairs (a, b) → (−b, a)
        return self.cos[position] * x + self.sin[position] * rotated


class QueryKeyRotary(nn.Module):
    """RoPE on the first half of each head's dimensions, by time id (``partial_factor=(0, 0.5)``)."""

    def __init__(self, head_dim: int, max_len: int) -> None:
        super().__init__()
        self.width = int(head_dim * 0.5)
        self.query_proj = RotaryProjection(self.width, max_len)

    def forward(self, query: torch.Tensor, key: torch.Tensor, query_id: torch.Tensor, key_id: torch.Tensor):
        query = torch.cat([self.query_proj(query[..., :self.width], query_id), query[..., self.width:]], dim=-1)
        key = torch.cat([self.query_proj(key[..., :self.width], key_id), key[..., self.width:]], dim=-1)
        return query, key


class Attention(nn.Module):
    """Multi-head attention with RMS-normalised queries/keys, the variate bias and time RoPE
    (uni2ts ``GroupedQueryAttention`` with as many groups as heads, no biases)."""

    def __init__(self, config: MoiraiMoEConfig) -> None:
        super().__init__()
        d, heads, head_dim = config.d_model, config.num_heads, config.head_dim
        self.num_heads, self.head_dim = heads, head_dim
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.out_proj = nn.Linear(d, d, bias=False)
        self.q_norm = RMSNorm(head_dim)
        self.k_norm = RMSNorm(head_dim)
        self.var_attn_bias = BinaryAttentionBias(heads)
        self.time_qk_proj = QueryKeyRotary(head_dim, config.max_seq_len)
        self.dropout_p = config.attn_dropout_p

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # (..., L, heads·head_dim) → (..., heads, 1, L, head_dim): upstream's (group, hpg) layout
        return x.unflatten(-1, (self.num_heads, 1, self.head_dim)).movedim(-4, -2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, var_id: torch.Tensor, time_id: torch.Tensor):
        query = self.q_norm(self._heads(self.q_proj(x)))
        key = self.k_norm(self._heads(self.k_proj(x)))
        value = self._heads(self.v_proj(x))
        var_id = var_id[..., None, None, :]  # (..., 1, 1, L)
        time_id = time_id[..., None, None, :]
        bias = self.var_attn_bias(var_id, var_id)  # (..., heads, 1, L, L)
        attn_mask = bias.masked_fill(~mask[..., None, None, :, :], float("-inf"))
        query, key = self.time_qk_proj(query, key, time_id, time_id)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask,
                                             dropout_p=self.dropout_p if self.training else 0.0,
                                             scale=1.0 / math.sqrt(self.head_dim))
        return self.out_proj(out.movedim(-2, -4).flatten(-3))


class GatedExpert(nn.Module):
    """fc2(silu(fc_gate(x)) · fc1(x)), no biases (uni2ts ``GatedLinearUnitFeedForward``)."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff, bias=False)
        self.fc2 = nn.Linear(d_ff, d_model, bias=False)
        self.fc_gate = nn.Linear(d_model, d_ff, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.silu(self.fc_gate(x)) * self.fc1(x))


class MixtureOfExperts(nn.Module):
    """Each token goes to the 2 experts whose centroids are **farthest** (``topk`` of the Euclidean
    distances), weighted by the softmax of those two distances (uni2ts ``MoEFeedForward``)."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.experts = nn.ModuleList(GatedExpert(d_model, d_ff) for _ in range(NUM_EXPERTS))

    def forward(self, x: torch.Tensor, centroid: torch.Tensor) -> torch.Tensor:
        tokens = x.reshape(-1, x.shape[-1])  # (T, d)
        centroid = centroid.to(x.device).type_as(x)
        grouped = x.reshape(-1, x.shape[-2], x.shape[-1]) if x.dim() > 3 else x  # (B, L, d)
        distances = torch.cdist(grouped, centroid.unsqueeze(0).repeat(grouped.shape[0], 1, 1))  # (B, L, E)
        chosen_distance, chosen = torch.topk(distances.reshape(-1, distances.shape[-1]), EXPERTS_PER_TOKEN)
        weights = F.softmax(chosen_distance, dim=1, dtype=torch.float).type_as(x)  # (T, 2)
        out = torch.zeros_like(tokens)
        for index, expert in enumerate(self.experts):
            rows, slot = torch.where(chosen == index)
            out[rows] += weights[rows, slot, None] * expert(tokens[rows])
        return out.view_as(x)


class EncoderLayer(nn.Module):
    def __init__(self, config: MoiraiMoEConfig) -> None:
        super().__init__()
        self.self_attn = Attention(config)
        self.ffn = MixtureOfExperts(config.d_model, config.d_ff)
        self.norm1 = RMSNorm(config.d_model)
        self.norm2 = RMSNorm(config.d_model)
        self.dropout = nn.Dropout(config.dropout_p)

    def forward(self, x, mask, var_id, time_id, centroid):
        x = x + self.dropout(self.self_attn(self.norm1(x), mask, var_id, time_id))
        return x + self.ffn(self.norm2(x), centroid)


class Encoder(nn.Module):
    """Pre-norm layers and a final RMSNorm; ``centroid`` (layers, 32, d_model) float64 is a
    released buffer, not a parameter."""

    def __init__(self, config: MoiraiMoEConfig) -> None:
        super().__init__()
        self.register_buffer("centroid", torch.zeros(config.num_layers, NUM_EXPERTS, config.d_model,
                                                     dtype=torch.float64))
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.d_model)

    def forward(self, x, mask, var_id, time_id):
        for index, layer in enumerate(self.layers):
            x = layer(x, mask, var_id, time_id, self.centroid[index])
        return self.norm(x)


class ParamProj(nn.Module):
    """Token representation → the mixture's parameters per step of the patch."""

    def __init__(self, config: MoiraiMoEConfig) -> None:
        super().__init__()
        d, sizes = config.d_model, config.patch_sizes

        def head(dim: int) -> MultiOutSizeLinear:
            return MultiOutSizeLinear(d, tuple(dim * s for s in sizes), dim=dim)

        self.out_size = max(sizes)
        self.proj = nn.ModuleDict({
            "weights_logits": head(len(COMPONENT_ARGS)),
            "components": nn.ModuleList(nn.ModuleDict({name: head(1) for name in args}) for args in COMPONENT_ARGS),
        })

    def _unflatten(self, out: torch.Tensor) -> torch.Tensor:
        # "... (dim out_size) -> ... out_size dim"
        return out.unflatten(-1, (-1, self.out_size)).transpose(-1, -2)

    def forward(self, reprs: torch.Tensor, patch_size: torch.Tensor) -> dict[str, Any]:
        logits = self._unflatten(self.proj["weights_logits"](reprs, patch_size))  # (..., P, 4)
        components = [{name: self._unflatten(layer(reprs, patch_size)).squeeze(-1) for name, layer in heads.items()}
                      for heads in self.proj["components"]]
        return {"weights_logits": logits, "components": components}


# ------------------------------------------------------------------------------------- distribution


class NegativeBinomial(Distribution):
    """Negative binomial with real ``total_count`` (uni2ts ``distribution/negative_binomial.py``);
    sampled as Poisson(Gamma(total_count, rate=exp(−logits)))."""

    arg_constraints = {"total_count": constraints.positive, "logits": constraints.real}
    support = constraints.nonnegative

    def __init__(self, total_count: torch.Tensor, logits: torch.Tensor) -> None:
        self.total_count, self.logits = total_count.type_as(logits), logits
        super().__init__(logits.shape, validate_args=False)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            rates = Gamma(concentration=self.total_count, rate=torch.exp(-self.logits),
                          validate_args=False).sample(sample_shape)
            return torch.poisson(rates)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        unnormalised = self.total_count * F.logsigmoid(-self.logits) + F.logsigmoid(self.logits) * value
        normalisation = (torch.lgamma(1 + value) + torch.lgamma(self.total_count)
                         - torch.lgamma(1 + value + self.total_count) + torch.log(self.total_count + value))
        return unnormalised - normalisation

    @property
    def mean(self) -> torch.Tensor:
        return self.total_count * torch.exp(self.logits)


class Mixture(Distribution):
    """The 4-component mixture (uni2ts ``distribution/mixture.py``)."""

    support = constraints.real
    arg_constraints: dict = {}

    def __init__(self, weights: Categorical, components: list[Distribution]) -> None:
        self.weights, self.components = weights, components
        super().__init__(weights.batch_shape, components[0].event_shape, validate_args=False)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            draws = torch.stack([c.sample(sample_shape) for c in self.components], dim=-1)
            which = self.weights.sample(sample_shape)
            which = which.reshape(which.shape + (1,) * (draws.dim() - which.dim()))
            return torch.gather(draws, dim=-1, index=which).squeeze(-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log Σ_k w_k p_k(value), a component outside its support contributing nothing (upstream
        puts a sample of the component in place of such a value before masking it out; any finite
        stand-in gives the same result, here 1)."""
        logits = self.weights.logits.expand(value.shape + (len(self.components),))
        logits = torch.stack(logits.unbind(dim=-1))
        terms = []
        for component in self.components:
            inside = component.support.check(value)
            terms.append(torch.where(inside, component.log_prob(torch.where(inside, value, torch.ones_like(value))),
                                     float("-inf")))
        terms = torch.stack(terms)
        logits = torch.where(torch.isinf(terms), 0.0, logits)
        return (logits + terms).logsumexp(dim=0)

    @property
    def mean(self) -> torch.Tensor:
        probs = torch.stack(self.weights.probs.unbind(dim=-1))
        return (probs * torch.stack([c.mean for c in self.components])).sum(dim=0)


class AffineTransformed(TransformedDistribution):
    """base × scale + loc, with the mean carried through (uni2ts ``distribution/_base.AffineTransformed``)."""

    def __init__(self, base: Distribution, loc: torch.Tensor, scale: torch.Tensor) -> None:
        self.loc, self.scale = loc, scale
        super().__init__(base, [AffineTransform(loc=loc, scale=scale)], validate_args=False)

    @property
    def mean(self) -> torch.Tensor:
        return self.base_dist.mean * self.scale + self.loc


def mixture_distribution(params: dict[str, Any], loc: torch.Tensor, scale: torch.Tensor,
                         normal_scale: float = 1e-3) -> AffineTransformed:
    """The predictive distribution in the series' units: the mixture, then × scale + loc."""
    student, normal, negbin, lognormal = params["components"]
    components = [
        StudentT(df=2.0 + F.softplus(student["df"]), loc=student["loc"], scale=_positive(student["scale"]),
                 validate_args=False),
        Normal(normal["loc"], torch.as_tensor(normal_scale, dtype=normal["loc"].dtype, device=normal["loc"].device),
               validate_args=False),
        NegativeBinomial(F.softplus(negbin["total_count"]), negbin["logits"]),
        LogNormal(lognormal["loc"], _positive(lognormal["scale"]), validate_args=False),
    ]
    mixture = Mixture(Categorical(logits=params["weights_logits"], validate_args=False), components)
    return AffineTransformed(mixture, loc, scale)


def _positive(raw: torch.Tensor) -> torch.Tensor:
    return F.softplus(raw).clamp_min(torch.finfo(raw.dtype).eps)


# -------------------------------------------------------------------------------------------- model


def packed_std_scale(target, observed, sample_id, variate_id, correction: int = 1, minimum_scale: float = 1e-5):
    """Mean and std (``correction`` 1, + 1e-5 under the root) of each (sample, variate)'s observed
    context values, in float64, returned as float32 per token (..., L, 1); padding tokens (sample 0)
    get 0 and 1 (uni2ts ``PackedStdScaler``)."""
    target = target.double()
    same = torch.eq(sample_id.unsqueeze(-1), sample_id.unsqueeze(-2)) & torch.eq(variate_id.unsqueeze(-1),
                                                                                   variate_id.unsqueeze(-2))
    count = (same * observed.sum(dim=-1).unsqueeze(-2)).sum(dim=-1, keepdim=True)  # (..., L, 1)
    total = (same * (target * observed).sum(dim=-1).unsqueeze(-2)).sum(dim=-1, keepdim=True)
    loc = total / torch.where(count == 0, 1.0, count)
    squares = (same * (((target - loc) ** 2) * observed).sum(dim=-1).unsqueeze(-2)).sum(dim=-1, keepdim=True)
    denominator = count - correction
    var = squares / torch.where(denominator == 0, 1.0, denominator)
    scale = torch.sqrt(var + minimum_scale)
    loc[sample_id == 0] = 0
    scale[sample_id == 0] = 1
    return loc.float(), scale.float()


class MoiraiMoE(nn.Module):
    """uni2ts ``MoiraiMoEModule`` (``forward``: packed tokens → predictive distribution) with the
    forecasting procedure of ``MoiraiMoEForecast`` (:meth:`forecast`)."""

    TASKS = ("zeroshot", "zeroshot-lsf")
    Config = MoiraiMoEConfig
    batch_dependent = False

    def __init__(self, config: MoiraiMoEConfig) -> None:
        super().__init__()
        self.config = config
        sizes = config.patch_sizes
        self.in_proj = MultiInSizeLinear(sizes, config.d_model)
        self.res_proj = MultiInSizeLinear(sizes, config.d_model)
        self.feat_proj = FeatLinear(sizes, config.d_model)
        self.encoder = Encoder(config)
        self.param_proj = ParamProj(config)

    def forward(self, target, observed_mask, sample_id, time_id, variate_id, prediction_mask, patch_size):
        """Tokens (..., L, max_patch) with their ids → the predictive distribution of every token."""
        if self.config.scaling:
            loc, scale = packed_std_scale(target, observed_mask * ~prediction_mask.unsqueeze(-1), sample_id,
                                          variate_id)
        else:
            loc, scale = torch.zeros_like(target[..., :1]), torch.ones_like(target[..., :1])
        scaled = (target - loc) / scale
        reprs = self.feat_proj(F.silu(self.in_proj(scaled, patch_size)), patch_size) + self.res_proj(scaled, patch_size)
        causal = torch.eq(sample_id.unsqueeze(-1), sample_id.unsqueeze(-2)) & \
            (time_id.unsqueeze(-2) <= time_id.unsqueeze(-1))
        reprs = self.encoder(reprs, causal, variate_id, time_id)
        return mixture_distribution(self.param_proj(reprs, patch_size), loc, scale)

    # ------------------------------------------------------------------------------ forecasting

    def _tokens(self, past_target, past_observed, past_is_pad):
        """``MoiraiMoEForecast._convert`` for a target with no covariates: (B, T, D) → packed tokens."""
        cfg, patch = self.config, self.config.patch_size
        batch, _, dims = past_target.shape
        context_steps = math.ceil(cfg.context_length / patch)
        predict_steps = math.ceil(cfg.prediction_length / patch)
        max_patch = max(cfg.patch_sizes)
        device = past_target.device

        def pad_to_patch(x, dim, *, left, value=0):  # ``_patched_seq_pad``: to a multiple of the patch
            amount = -x.size(dim) % patch
            pad = [0, 0] * (x.dim() - 1 - (dim % x.dim())) + ([amount, 0] if left else [0, amount])
            return F.pad(x, pad, value=value)

        def patches(x):  # (B, T', D) → (B, D·S, patch) padded to max_patch
            b, t, d = x.shape
            x = x.reshape(b, t // patch, patch, d).permute(0, 3, 1, 2).reshape(b, d * (t // patch), patch)
            return F.pad(x, (0, max_patch - patch))

        observed_patches = pad_to_patch(past_observed, 1, left=True).reshape(batch, -1, patch, dims).amax(dim=(-1, -2))
        past_time = torch.clamp(observed_patches.long().cummax(dim=-1).values.cumsum(dim=-1) - 1, min=0)  # (B, S)
        future_time = torch.arange(predict_steps, device=device)[None, :] + past_time.max(dim=-1, keepdim=True).values + 1

        future_target = torch.zeros(batch, cfg.prediction_length, dims, dtype=past_target.dtype, device=device)
        future_observed = torch.ones(batch, cfg.prediction_length, dims, dtype=torch.bool, device=device)
        future_is_pad = torch.zeros(batch, cfg.prediction_length, dtype=torch.long, device=device)
        target = torch.cat([patches(pad_to_patch(past_target, 1, left=True)), patches(pad_to_patch(future_target, 1, left=False))], dim=1)
        observed = torch.cat([patches(pad_to_patch(past_observed, 1, left=True)), patches(pad_to_patch(future_observed, 1, left=False))], dim=1)
        past_sample = (pad_to_patch(past_is_pad, 1, left=True, value=1) == 0).int().reshape(batch, -1, patch).amax(dim=-1)
        future_sample = (pad_to_patch(future_is_pad, 1, left=False, value=1) == 0).int().reshape(batch, -1, patch).amax(dim=-1)
        sample_id = torch.cat([past_sample.repeat(1, dims), future_sample.repeat(1, dims)], dim=1)
        time_id = torch.cat([past_time.repeat(1, dims), future_time.repeat(1, dims)], dim=1)
        variates = torch.arange(dims, device=device)
        variate_id = torch.cat([variates.repeat_interleave(context_steps), variates.repeat_interleave(predict_steps)])
        variate_id = variate_id[None, :].expand(batch, -1)
        prediction_mask = torch.cat([torch.zeros(batch, context_steps * dims, dtype=torch.bool, device=device),
                                     torch.ones(batch, predict_steps * dims, dtype=torch.bool, device=device)], dim=1)
        return target, observed, sample_id, time_id, variate_id, prediction_mask

    def forecast(self, past_target: torch.Tensor, past_observed: torch.Tensor, past_is_pad: torch.Tensor,
                 num_samples: int | None = None) -> torch.Tensor:
        """Sample paths of the next ``prediction_length`` steps: (B, S, H) for one variate, (B, S, H, D)
        for D. ``past_*`` hold the last ``context_length`` steps, left-padded (``past_is_pad``) when the
        history is shorter — what gluonts' ``TFTInstanceSplitter`` gives ``MoiraiMoEForecast``.

        One patch ahead: the last context token's distribution is sampled. More: that sample is
        written into the first future patch, the model is run again on every sample path, the next
        patch is drawn from the token before it, and so on (``MoiraiMoEForecast.forward``)."""
        cfg, patch = self.config, self.config.patch_size
        samples = num_samples or cfg.num_samples
        dims = past_target.shape[-1]
        context_steps = math.ceil(cfg.context_length / patch)
        predict_steps = math.ceil(cfg.prediction_length / patch)
        context_tokens, predict_tokens = dims * context_steps, dims * predict_steps
        target, observed, sample_id, time_id, variate_id, prediction_mask = self._tokens(
            past_target, past_observed, past_is_pad)
        patch_size = torch.full_like(time_id, patch, dtype=torch.long)
        source = torch.arange(context_steps - 1, context_tokens, context_steps)
        destination = torch.arange(context_tokens, context_tokens + predict_tokens, predict_steps)
        distribution = self(target, observed, sample_id, time_id, variate_id, prediction_mask, patch_size)
        if predict_steps == 1:
            draws = distribution.sample(torch.Size((samples,)))  # (S, B, L, P)
            draws[..., destination, :] = draws[..., source, :]
            return self._format(draws, dims)
        draws = distribution.sample(torch.Size((cfg.num_samples,)))
        paths = target.unsqueeze(0).repeat(cfg.num_samples, 1, 1, 1)
        path_mask = prediction_mask.unsqueeze(0).repeat(cfg.num_samples, 1, 1)

        def expand(x):
            return x.unsqueeze(0).expand(cfg.num_samples, *x.shape)

        paths[..., destination, :] = draws[..., source, :]
        path_mask[..., destination] = False
        for _ in range(predict_steps - 1):
            distribution = self(paths, expand(observed), expand(sample_id), expand(time_id), expand(variate_id),
                                path_mask, expand(patch_size))
            draws = distribution.sample(torch.Size((1,)))
            draws = draws.view(-1, *draws.shape[-3:])
            source, destination = destination, destination + 1
            paths[..., destination, :] = draws[..., source, :]
            path_mask[..., destination] = False
        return self._format(paths, dims)

    def _format(self, tokens: torch.Tensor, dims: int) -> torch.Tensor:
        """(S, B, L, max_patch) tokens → (B, S, H[, D]) future values (``_format_preds``)."""
        cfg, patch = self.config, self.config.patch_size
        start = dims * math.ceil(cfg.context_length / patch)
        end = start + dims * math.ceil(cfg.prediction_length / patch)
        future = tokens[..., start:end, :patch]  # (S, B, D·steps, patch)
        s, b = future.shape[:2]
        future = future.reshape(s, b, dims, -1, patch).reshape(s, b, dims, -1)  # (S, B, D, steps·patch)
        future = future.permute(1, 0, 3, 2)[..., :cfg.prediction_length, :]  # (B, S, H, D)
        return future.squeeze(-1)


# ------------------------------------------------------------------------------------------ weights


def load_released_weights(model: MoiraiMoE, config_path: Path, weights_path: Path) -> None:
    """Load ``weights_path`` (a ``model.safetensors``; never a pickle) after checking ``config_path``
    (its ``config.json``) is the architecture ``model`` was built with; every released tensor must
    match a model tensor in name and shape, and every model tensor must be released."""
    from safetensors.torch import load_file

    config_path, weights_path = Path(config_path), Path(weights_path)
    try:
        released = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"{config_path}: not a readable config.json ({error})") from error
    for key, value in architecture_from_hub_config(released, str(config_path)).items():
        if getattr(model.config, key) != value:
            raise DataError(f"{config_path}: {key} = {value!r}, but the run's model has {getattr(model.config, key)!r}")
    state = load_file(str(weights_path))
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise DataError(f"{weights_path}: missing tensors {missing[:5]}, unexpected {unexpected[:5]}")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype:
            raise DataError(f"{weights_path}: {name} is {tensor.dtype} {tuple(tensor.shape)}, "
                            f"expected {expected[name].dtype} {tuple(expected[name].shape)}")
    model.load_state_dict(state)


def write_checkpoint(model: MoiraiMoE, folder: Path) -> None:
    """Write ``config.json`` + ``model.safetensors`` as uni2ts's ``save_pretrained`` lays them out
    (json sorted, indent 2) — the tiny smoke checkpoint is written this way."""
    from safetensors.torch import save_file

    from replibench.atomic import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "config.json") as tmp:
        Path(tmp).write_text(json.dumps(hub_config(model.config), sort_keys=True, indent=2))
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))


@dataclass
class MoiraiMoESmallConfig(MoiraiMoEConfig):
    """``Salesforce/moirai-moe-1.0-R-small`` config.json: d_model 384, d_ff 512, 6 layers."""


@dataclass
class MoiraiMoEBaseConfig(MoiraiMoEConfig):
    """``Salesforce/moirai-moe-1.0-R-base`` config.json: d_model 768, d_ff 1024, 12 layers."""

    d_model: int = 768
    d_ff: int = 1024
    num_layers: int = 12


class MoiraiMoESmall(MoiraiMoE):
    """Registry ``moirai-moe-small``: the released small model (11 M active / 117 M parameters)."""

    Config = MoiraiMoESmallConfig


class MoiraiMoEBase(MoiraiMoE):
    """Registry ``moirai-moe-base``: the released base model (86 M active / 935 M parameters)."""

    Config = MoiraiMoEBaseConfig
