"""Shared LRA sequence classifier: encoder -> N residual blocks -> pooling -> decoder.

One ``Config`` names the layer (``s4d``, ``s4``, ``s5``, ``transformer``); every registry model
(``s4d-legs`` ... ``transformer``) is a preset of it (``presets.py``). Backbone facts from
state-spaces/s4 (``SequenceModel`` / ``SequenceResidualBlock``: pre- or post-norm, BatchNorm or
LayerNorm, dropout on the residual branch, final norm when pre-norm; ``SequenceDecoder`` mean
pooling; the NLI retrieval decoder) and lindermanlab/S5 (``StackedEncoderModel``, BatchNorm
momentum, masked mean pooling). The Transformer path follows the LRA code (CLS pooling, the
Dense(mlp_dim)-ReLU-Dense classifier head, dual encoder for matching).

Inputs: tokens (B, L) long with ``vocab_size`` set (embedding), or features (B, L, d_input)
(linear encoder). ``mask`` (B, L) bool marks real (non-padding) positions. Retrieval (``dual``):
``forward(x, mask, x2, mask2)`` encodes both documents with shared weights and classifies
[a, b, a*b, a-b] (s4 NLI decoder); the Transformer concatenates [a, b] as LRA does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from replibench.errors import ConfigError
from replibench.families.lra.models.s4 import S4Config, S4Layer
from replibench.families.lra.models.s4d import SSM_ROLE, S4DConfig, S4DLayer, make_dropout
from replibench.families.lra.models.s5 import S5Config, S5Layer
from replibench.families.lra.models.transformer import LRAClassifierHead, LRATransformerEncoder, TransformerConfig

LAYER_TYPES = ("s4d", "s4", "s5", "transformer")


@dataclass
class Config:
    """Backbone settings; defaults follow the s4 repo's ``model/s4.yaml`` + LRA experiment files."""

    layer: str = "s4d"  # "s4d" | "s4" | "s5" | "transformer"
    n_classes: int = 10
    vocab_size: int | None = None  # token tasks: embedding; None: linear encoder on d_input
    d_input: int = 1
    n_layers: int = 6
    d_model: int = 256
    norm: str = "batch"  # "batch" | "layer"
    prenorm: bool = False
    final_norm: bool = True  # s4: a last norm after the blocks when prenorm; S5: none
    dropout: float = 0.0
    tie_dropout: bool = False
    residual_dropout: bool = True  # s4 drops the residual branch too; S5 only inside the layer
    bn_momentum: float = 0.1  # PyTorch convention (S5's flax 0.95 -> 0.05, 0.9 -> 0.1)
    pool: str = "mean"  # "mean" | "last" (s4 ``decoder.mode``)
    dual: bool = False  # Retrieval: two documents, features [a, b, a*b, a-b]
    dt_uses_ssm_lr: bool = True  # s4 ``lr: 0.001`` (scalar) sets dt too; ``dt: null`` = global lr
    s4d: S4DConfig = field(default_factory=S4DConfig)
    s4: S4Config = field(default_factory=S4Config)
    s5: S5Config = field(default_factory=S5Config)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        """Build from a (preset) dict; nested layer configs are dicts too. Unknown keys are errors."""
        values = dict(values)
        nested = {"s4d": S4DConfig, "s4": S4Config, "s5": S5Config, "transformer": TransformerConfig}
        for key, kind in nested.items():
            if key in values:
                allowed = {f.name for f in dataclasses.fields(kind)}
                unknown = sorted(set(values[key]) - allowed)
                if unknown:
                    raise ConfigError(f"model.{key}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
                values[key] = kind(**values[key])
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ConfigError(f"model: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**values)


def _norm(kind: str, d: int, momentum: float) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(d, momentum=momentum)
    if kind == "layer":
        return nn.LayerNorm(d)
    raise ConfigError(f"model.norm must be 'batch' or 'layer', found {kind!r}")


def _apply_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(norm, nn.BatchNorm1d):
        return norm(x.transpose(1, 2)).transpose(1, 2)  # statistics over (B, L) per channel
    return norm(x)  # (B, L, H)


class ResidualBlock(nn.Module):
    """x + Drop(layer(Norm?(x))), then Norm if post-norm. (B, L, H) -> (B, L, H)."""

    def __init__(self, layer: nn.Module, cfg: Config) -> None:
        super().__init__()
        self.layer, self.prenorm = layer, cfg.prenorm
        self.norm = _norm(cfg.norm, cfg.d_model, cfg.bn_momentum)
        self.drop = make_dropout(cfg.dropout if cfg.residual_dropout else 0.0, cfg.tie_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        z = _apply_norm(self.norm, x) if self.prenorm else x
        x = x + self.drop(self.layer(z, mask))  # (B, L, H)
        return x if self.prenorm else _apply_norm(self.norm, x)


class SequenceClassifier(nn.Module):
    """LRA classifier for every layer type; logits (B, n_classes)."""

    #: the tasks this model implements: its family and the sweeps that may name it come from here
    TASKS = ("lra-classify",)

    Config = Config  # the registry contract: ``cls(cls.Config(...))``

    def __init__(self, cfg: Config, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if cfg.layer not in LAYER_TYPES:
            raise ConfigError(f"model.layer must be one of {LAYER_TYPES}, found {cfg.layer!r}")
        if cfg.pool not in ("mean", "last"):
            raise ConfigError(f"model.pool must be 'mean' or 'last', found {cfg.pool!r}")
        self.cfg = cfg
        width = cfg.transformer.emb_dim if cfg.layer == "transformer" else cfg.d_model
        if cfg.vocab_size is not None:
            self.encoder = nn.Embedding(cfg.vocab_size, width)
            if cfg.layer == "transformer":
                nn.init.normal_(self.encoder.weight, std=1.0)  # LRA Embed init
        else:
            self.encoder = nn.Linear(cfg.d_input, width)
        if cfg.layer == "transformer":
            self.backbone = LRATransformerEncoder(cfg.transformer)
            self.decoder = LRAClassifierHead(width, cfg.transformer.mlp_dim, cfg.n_classes, cfg.dual)
            return
        self.blocks = nn.ModuleList(ResidualBlock(self._make_layer(generator), cfg) for _ in range(cfg.n_layers))
        self.final = _norm(cfg.norm, cfg.d_model, cfg.bn_momentum) if cfg.prenorm and cfg.final_norm else None
        if cfg.dual:  # s4 retrieval decoder (nli): Linear(4H, H) -> GELU -> Linear(H, classes)
            # S5's RetrievalDecoder is the same MLP with flax nn.gelu, the tanh approximation
            gelu = nn.GELU(approximate="tanh") if cfg.layer == "s5" else nn.GELU()
            self.decoder = nn.Sequential(
                nn.Linear(4 * cfg.d_model, cfg.d_model), gelu, nn.Linear(cfg.d_model, cfg.n_classes)
            )
        else:
            self.decoder = nn.Linear(cfg.d_model, cfg.n_classes)

    def _make_layer(self, generator: torch.Generator | None) -> nn.Module:
        cfg = self.cfg
        common = {"d_model": cfg.d_model, "dropout": cfg.dropout}
        if cfg.layer == "s4d":
            return S4DLayer(dataclasses.replace(cfg.s4d, tie_dropout=cfg.tie_dropout, **common), generator)
        if cfg.layer == "s4":
            return S4Layer(dataclasses.replace(cfg.s4, tie_dropout=cfg.tie_dropout, **common), generator)
        return S5Layer(dataclasses.replace(cfg.s5, **common), generator)

    def features(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Pooled sequence features (B, width)."""
        h = self.encoder(x)  # (B, L, H)
        if self.cfg.layer == "transformer":
            return self.backbone(h, mask)  # (B, E)
        for block in self.blocks:
            h = block(h, mask)  # (B, L, H)
        if self.final is not None:
            h = _apply_norm(self.final, h)
        if self.cfg.pool == "last":
            if mask is None:
                return h[:, -1]
            last = mask.long().sum(dim=1).clamp(min=1) - 1  # (B,)
            return h[torch.arange(h.shape[0], device=h.device), last]
        if mask is None:
            return h.mean(dim=1)
        m = mask.unsqueeze(-1).to(h.dtype)  # (B, L, 1)
        return (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)  # masked mean (B, H)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        x2: torch.Tensor | None = None,
        mask2: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if not self.cfg.dual:
            return self.decoder(self.features(x, mask))  # (B, classes)
        if x2 is None or x2.shape != x.shape:
            raise ConfigError("model.dual: forward needs x2 with the same shape as x (pad both documents)")
        both_mask = None if mask is None else torch.cat([mask, mask2 if mask2 is not None else mask])
        f = self.features(torch.cat([x, x2]), both_mask)  # (2B, H): shared encoder, one pass
        a, b = f.chunk(2)
        if self.cfg.layer == "transformer":  # LRA classifier_head_dual, interaction=None
            return self.decoder(torch.cat([a, b], dim=-1))  # (B, classes)
        return self.decoder(torch.cat([a, b, a * b, a - b], dim=-1))  # (B, classes)

    def optimizer_param_groups(self, lr: float, weight_decay: float, ssm_lr: float | None = None) -> list[dict]:
        """AdamW groups: SSM parameters with their own lr and no weight decay, the rest with wd.

        S4/S4D (s4 ``Kernel.register``): A (incl. P), B and dt -> ssm_lr, wd 0 (dt at the global lr
        when ``dt_uses_ssm_lr`` is False); C, D and all other weights -> lr, wd.
        S5 (``train_helpers.create_train_state``): Lambda and log_step -> Adam at ssm_lr, no wd;
        with ``dt_global`` log_step goes to the AdamW group at lr with wd instead (that is all the
        flag does upstream). B per ``opt_config``: standard -> with Lambda, BandCdecay -> ssm_lr
        with wd, BfastandCdecay -> lr with wd; C, D, encoder, GLU, decoder -> lr, wd. The norm
        parameters also land in the lr-with-wd group: upstream lists the key "norm", but its
        ``map_nested_fn`` recurses into the norm's sub-dict and tests only the leaf names
        ("scale", "bias"), so "norm" never matches.
        """
        ssm_lr = lr if ssm_lr is None else ssm_lr
        groups: dict[str, dict] = {
            "ssm": {"lr": ssm_lr, "weight_decay": 0.0},
            "dt": {"lr": lr, "weight_decay": 0.0},
            "b_decay": {"lr": ssm_lr, "weight_decay": weight_decay},
            "regular": {"lr": lr, "weight_decay": weight_decay},
        }
        members: dict[str, list] = {k: [] for k in groups}
        s5_cfg = self.cfg.s5.opt_config if self.cfg.layer == "s5" else None
        if s5_cfg not in (None, "standard", "BandCdecay", "BfastandCdecay"):
            raise ConfigError(f"model.s5.opt_config: unknown {s5_cfg!r}")
        for p in self.parameters():
            if not p.requires_grad:
                continue
            role = getattr(p, SSM_ROLE, None)
            if s5_cfg is None:  # S4 family / transformer
                if role in ("A", "B"):
                    members["ssm"].append(p)
                elif role == "dt":
                    members["ssm" if self.cfg.dt_uses_ssm_lr else "dt"].append(p)
                else:
                    members["regular"].append(p)
            elif role == "A" or (role == "dt" and not self.cfg.s5.dt_global):
                members["ssm"].append(p)
            elif role == "B":
                target = {"standard": "ssm", "BandCdecay": "b_decay", "BfastandCdecay": "regular"}[s5_cfg]
                members[target].append(p)
            else:
                members["regular"].append(p)
        return [{"name": k, "params": v, **groups[k]} for k, v in members.items() if v]


def build(model_settings: dict, generator: torch.Generator | None = None) -> SequenceClassifier:
    """The entry point for the LRA task: ``presets.preset(...)["model"]`` plus the data's
    ``vocab_size`` / ``d_input`` -> a ready classifier."""
    return SequenceClassifier(Config.from_dict(model_settings), generator=generator)
