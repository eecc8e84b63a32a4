"""Golden outputs of the S5 SSM and S5 layer from lindermanlab/S5 at 3c18fdb (the ICLR 2023 code).

Usage: ``python tools/golden/lra_s5.py /path/to/S5-checkout`` (commit
3c18fdb6b06414da35e77b94b9cd855f6a95ef17). Writes ``tests/golden/{s5,s5-ptd}.npz``.

Needs jax + flax (a throw-away venv: jax[cpu] 0.4.30, flax 0.8.5; not project dependencies). The
repository pins jax 0.3.5; the only incompatibility is the type annotation ``np.DeviceArray`` in
``s5/ssm.py`` (removed from jax.numpy in 0.4), so ``jax.numpy.DeviceArray`` is set to ``jax.Array``
before import. float64 throughout (``jax_enable_x64``).

What is computed (one example at a time, as upstream vmaps over the batch):
* ``ssm_output``: ``S5SSM`` (HiPPO-N blocks built as ``s5/train.py`` does, conj_sym, bidirectional,
  ZOH, C_init lecun_normal) applied to a fixed (L, H) input;
* ``layer_output``: ``SequenceLayer`` (prenorm BatchNorm in eval mode with non-trivial statistics,
  half_glu1 / half_glu2, residual) on the same input, with the same SSM weights;
* ``c_tilde_power_*``: mean |C~|^2 of upstream's own C initialisation at H=16, P=64 (J=4) for
  lecun_normal and trunc_standard_normal (averaged over 20 seeds), so the test can check our
  initial scale against upstream's numbers.
S5-PTD: the PTD authors' code was not available here; the fixture runs upstream's S5SSM and layer
on our PTD-initialised Lambda / B~ / C~ (it compares the layer computation, not the PTD init).
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "golden"))
sys.path.insert(0, str(ROOT / "src"))
from fixture import upstream_commit, write_fixture  # noqa: E402

H, P, J, L, BATCH = 4, 8, 2, 12, 2
WEIGHT_MAP = {
    "ssm.Lambda_re": "layer.ssm.Lambda_re",
    "ssm.Lambda_im": "layer.ssm.Lambda_im",
    "ssm.B": "layer.ssm.B",
    "ssm.C1": "layer.ssm.C[0]",
    "ssm.C2": "layer.ssm.C[1]",
    "ssm.D": "layer.ssm.D",
    "ssm.log_step": "layer.ssm.log_step (squeeze-1)",
    "out2.kernel": "layer.out2.weight (transpose)",
    "out2.bias": "layer.out2.bias",
    "norm.scale": "norm.weight",
    "norm.bias": "norm.bias",
    "norm.mean": "norm.running_mean",
    "norm.var": "norm.running_var",
}


def _import_upstream(checkout: Path):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    if not hasattr(jnp, "DeviceArray"):
        jnp.DeviceArray = jax.Array  # annotation only (s5/ssm.py class fields)
    sys.path.insert(0, str(checkout))
    from s5.layers import SequenceLayer
    from s5.ssm import init_S5SSM
    from s5.ssm_init import make_DPLR_HiPPO

    return SequenceLayer, init_S5SSM, make_DPLR_HiPPO


def _hippo_blocks(make_DPLR_HiPPO, P_full: int, blocks: int):
    """Lambda (P/2,), V (P, P/2), Vinv (P/2, P) exactly as ``s5/train.py`` builds them (conj_sym)."""
    from jax.scipy.linalg import block_diag
    import jax.numpy as jnp

    block = P_full // blocks
    Lambda, _, _, V, _ = make_DPLR_HiPPO(block)
    Lambda, V = Lambda[: block // 2], V[:, : block // 2]
    Vc = V.conj().T
    Lambda = (Lambda * jnp.ones((blocks, block // 2))).ravel()
    return Lambda, block_diag(*([V] * blocks)), block_diag(*([Vc] * blocks))


def _ssm_fn(init_S5SSM, Lambda, V, Vinv, H_, C_init):
    return init_S5SSM(H=H_, P=Lambda.shape[0], Lambda_re_init=Lambda.real, Lambda_im_init=Lambda.imag, V=V,
                      Vinv=Vinv, C_init=C_init, discretization="zoh", dt_min=1e-3, dt_max=1e-1, conj_sym=True,
                      clip_eigs=False, bidirectional=True)


def _c_power(init_S5SSM, make_DPLR_HiPPO, C_init: str) -> float:
    import jax
    import jax.numpy as jnp

    Hc, Pc, Jc = 16, 64, 4
    Lambda, V, Vinv = _hippo_blocks(make_DPLR_HiPPO, Pc, Jc)
    ssm = _ssm_fn(init_S5SSM, Lambda, V, Vinv, Hc, C_init)()
    total = 0.0
    for seed in range(20):
        params = ssm.init(jax.random.PRNGKey(seed), jnp.zeros((4, Hc)))["params"]
        c = jnp.concatenate([params["C1"], params["C2"]], axis=1)
        total += float(jnp.mean(c[..., 0] ** 2 + c[..., 1] ** 2))
    return total / 20


def _ours_ptd_weights() -> dict[str, np.ndarray]:
    import torch

    from replibench.families.lra.models.s5 import S5Config, S5SSM

    ssm = S5SSM(S5Config(d_model=H, ssm_size=P, blocks=J, init="ptd"), generator=torch.Generator().manual_seed(7))
    return {k: v.detach().double().numpy() for k, v in ssm.state_dict().items()}


def main(checkout: Path) -> None:
    import jax
    import jax.numpy as jnp

    SequenceLayer, init_S5SSM, make_DPLR_HiPPO = _import_upstream(checkout)
    commit = upstream_commit(checkout)
    power = {f"c_tilde_power_{c}": np.array(_c_power(init_S5SSM, make_DPLR_HiPPO, c))
             for c in ("lecun_normal", "trunc_standard_normal")}
    rng = np.random.default_rng(1)
    u = rng.standard_normal((BATCH, L, H))
    for name, activation in (("s5", "half_glu1"), ("s5-ptd", "half_glu2")):
        Lambda, V, Vinv = _hippo_blocks(make_DPLR_HiPPO, P, J)
        ptd = _ours_ptd_weights() if name == "s5-ptd" else None
        if ptd is not None:  # upstream has no PTD init: its layer runs on our PTD weights
            Lambda = jnp.asarray(ptd["Lambda_re"] + 1j * ptd["Lambda_im"])
            Pk = Lambda.shape[0]  # upstream samples B, C over 2 Pk states (conj_sym); init only, overwritten
            V, Vinv = jnp.eye(2 * Pk, Pk), jnp.eye(Pk, 2 * Pk)
        ssm_fn = _ssm_fn(init_S5SSM, Lambda, V, Vinv, H, "lecun_normal")
        layer = SequenceLayer(ssm=ssm_fn, dropout=0.0, d_model=H, activation=activation, training=False,
                              prenorm=True, batchnorm=True, bn_momentum=0.95)
        variables = layer.init(jax.random.PRNGKey(0), jnp.asarray(u[0]))
        params = jax.tree_util.tree_map(np.asarray, variables["params"])
        stats = jax.tree_util.tree_map(np.asarray, variables["batch_stats"])
        params = {k: dict(v) for k, v in params.items()}
        if ptd is not None:
            Pk = ptd["Lambda_re"].shape[0]
            params["seq"].update(Lambda_re=ptd["Lambda_re"], Lambda_im=ptd["Lambda_im"], B=ptd["B"],
                                 C1=ptd["C"][0], C2=ptd["C"][1], D=ptd["D"], log_step=ptd["log_step"].reshape(Pk, 1))
        params["norm"] = {"scale": 1.0 + 0.3 * rng.standard_normal(H), "bias": 0.2 * rng.standard_normal(H)}
        stats = {"norm": {"mean": 0.5 * rng.standard_normal(H), "var": 0.5 + rng.random(H)}}
        variables = {"params": params, "batch_stats": stats}
        ssm_only = ssm_fn()
        ssm_out = np.stack([np.asarray(ssm_only.apply({"params": params["seq"]}, jnp.asarray(x))) for x in u])
        out = np.stack([np.asarray(layer.apply(variables, jnp.asarray(x))) for x in u])
        arrays = {"input": u, "ssm_output": ssm_out, "layer_output": out, **power}
        for key, value in params["seq"].items():
            arrays[f"w:ssm.{key}"] = np.asarray(value, dtype=np.float64)
        for key, value in params["out2"].items():
            arrays[f"w:out2.{key}"] = np.asarray(value, dtype=np.float64)
        for key, value in {**params["norm"], **stats["norm"]}.items():
            arrays[f"w:norm.{key}"] = np.asarray(value, dtype=np.float64)
        notes = (f"float64 (jax_enable_x64); S5SSM(H={H}, P={P} (conj_sym: {P // 2} kept), blocks={J}, zoh, "
                 f"bidirectional, C_init lecun_normal, dt 1e-3..1e-1); SequenceLayer(activation={activation}, "
                 "prenorm, BatchNorm eval (running stats), dropout 0); input (B, L, H) = "
                 f"({BATCH}, {L}, {H}) numpy default_rng(1). Ours: ResidualBlock(S5Layer) with prenorm BatchNorm. "
                 "c_tilde_power_*: upstream mean |C~|^2 at H=16, P=64, J=4 over 20 seeds.")
        if ptd is not None:
            notes += " PTD authors' code not available: upstream S5 SSM/layer run on our PTD-initialised weights."
        write_fixture(ROOT / "tests" / "golden" / f"{name}.npz", arrays, repo="lindermanlab/S5", commit=commit,
                      weight_map=WEIGHT_MAP, generator="tools/golden/lra_s5.py", notes=notes)
        print(name, {k: np.shape(v) for k, v in arrays.items()})


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
