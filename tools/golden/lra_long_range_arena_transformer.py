"""Golden outputs of the LRA Transformer (google-research/long-range-arena, flax ``flax.deprecated.nn``).

Upstream: google-research/long-range-arena at cd31e5c (``lra_benchmarks/models/transformer/
transformer.py``: ``TransformerEncoder`` with ``classifier=True``, ``TransformerDualEncoder``;
``models/layers/common_layers.py``).

Usage: a throw-away venv (Python 3.11) with ``jax==0.4.13 jaxlib==0.4.13 flax==0.3.6 "numpy<2"
"scipy<1.12"`` (flax 0.3.6 is the last release with ``flax.deprecated.nn``; not project deps)::

    python tools/golden/lra_long_range_arena_transformer.py /path/to/long-range-arena-checkout

Two shims, both in this process only: flax 0.3.6 imports ``isin`` from a jax-internal module that
jax 0.4 moved (the generator puts ``jnp.isin`` there), and LRA/flax hard-code float32 compute dtypes
(``dtype = jnp.float32`` in ``TransformerEncoder``, ``dtype=jnp.float32`` defaults of Dense and
LayerNorm), so with ``jax_enable_x64`` the generator aliases ``jnp.float32`` to float64 before
importing them: every layer then runs in float64 as the fixture requires. Sinusoidal tables stay
LRA's numpy float32 (``sinusoidal_init``).

Three cases, random (seeded) weights rounded to float32, ``train=False``:

* ``cls``: ``TransformerEncoder``, CLS pooling, ``tied_weights`` (ListOps style), 2 layers,
  sinusoidal positions, emb 16 / 2 heads / qkv 8 / mlp 16, example 1 padded (token 0) at the end;
* ``pathx``: the Path-X model (``base_pathfinder128_config``: emb 32, 2 heads, qkv 16, mlp 32,
  1 layer, MEAN pooling, learned positions) on a short token sequence without padding (with padding
  and MEAN pooling LRA's fully masked query rows are precision-dependent: -1e10 biases);
* ``dual``: ``TransformerDualEncoder`` (Retrieval), CLS pooling of an encoder built without a
  [CLS] token (first position), concatenation head, padded documents;
* ``mean_pad`` (run in float32, in a child process without the float64 alias): the Path-X
  model's pooling and learned positions (emb 16) with id-0 tokens (black pixels) inside both examples. LRA's mask is query x key with bias -1e10;
  in float32 that swamps a padding query's logits, so its attention is uniform over all positions,
  and MEAN pooling averages those rows too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "golden"))

from fixture import upstream_commit, write_fixture  # noqa: E402

VOCAB, LENGTH = 11, 16
CASES = {
    "cls": dict(emb_dim=16, num_heads=2, qkv_dim=8, mlp_dim=16, num_layers=2, classifier_pool="CLS",
                tied_weights=True, learn_pos_emb=False),
    "pathx": dict(emb_dim=32, num_heads=2, qkv_dim=16, mlp_dim=32, num_layers=1, classifier_pool="MEAN",
                  tied_weights=False, learn_pos_emb=True),
    "dual": dict(emb_dim=16, num_heads=2, qkv_dim=8, mlp_dim=16, num_layers=1, classifier_pool="CLS"),
}
# Run in float32, as LRA trained: only there does the -1e10 bias swamp a padding query's logits.
FLOAT32_CASES = {"mean_pad": dict(emb_dim=16, num_heads=2, qkv_dim=8, mlp_dim=16, num_layers=1,
                                   classifier_pool="MEAN", tied_weights=False, learn_pos_emb=True, holes=4)}


def _target(flax_path: str, qkv: int, dual: bool) -> str:
    """Our parameter (with its transform) for one flax parameter path."""
    parts = flax_path.split("/")
    if dual and parts[0] == "encoder":
        parts = parts[1:]
    head = {"mlp": "decoder.net.0", "mlp2": "decoder.net.2", "logits": "decoder.net.4" if dual else "decoder.net.2"}
    kind = {"kernel": "weight|transpose", "bias": "bias", "scale": "weight"}
    if parts[0] in head:
        return f"{head[parts[0]]}.{kind[parts[1]]}"
    if parts[0] == "Embed_0":
        return "encoder.weight"
    if parts[0] == "cls":
        return "backbone.cls"
    if parts[0] == "posembed_input":
        return "backbone.pos|squeeze 0"
    if parts[0] == "encoder_norm":
        return f"backbone.norm.{kind[parts[1]]}"
    block = 0 if parts[0] == "encoderblock" else int(parts[0].split("_")[1])
    prefix = f"backbone.blocks.{block}"
    if parts[1] in ("LayerNorm_0", "LayerNorm_2"):
        return f"{prefix}.{'ln1' if parts[1] == 'LayerNorm_0' else 'ln2'}.{kind[parts[2]]}"
    if parts[1] == "MlpBlock_3":
        return f"{prefix}.mlp.{0 if parts[2] == 'Dense_0' else 3}.{kind[parts[3]]}"
    proj = parts[2]  # MultiHeadDotProductAttention_1/<query|key|value|out>/kernel
    if proj == "out":
        return f"{prefix}.attn.out.weight|flatten out"
    row = {"query": 0, "key": 1, "value": 2}[proj] * qkv
    return f"{prefix}.attn.qkv.weight|flatten in|into rows {row}:{row + qkv}"


def run_cases(checkout: Path, cases: dict[str, dict], x64: bool, seed: int) -> tuple[dict, dict]:
    """Run LRA on ``cases`` with random float32-representable weights: (arrays, weight_map)."""
    import jax
    import jax.numpy as jnp

    if x64:
        jax.config.update("jax_enable_x64", True)
        jnp.float32 = jnp.float64  # see the module docstring: LRA/flax hard-code float32 compute dtypes
    import jax._src.numpy.lax_numpy as lax_numpy

    lax_numpy.isin = jnp.isin  # flax 0.3.6 imports it from here
    sys.path.insert(0, str(checkout))
    from flax import traverse_util
    from lra_benchmarks.models.transformer import transformer as lra

    dtype = jnp.float64 if x64 else np.float32
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    weight_map: dict[str, str] = {}

    def tokens(padded_tail: int, holes: int = 0) -> np.ndarray:
        t = rng.integers(1, VOCAB, size=(2, LENGTH))
        if padded_tail:
            t[1, -padded_tail:] = 0  # LRA padding id
        if holes:  # id 0 inside the sequence: a black pixel, which LRA's mask (id > 0) also hides
            t[0, rng.choice(LENGTH, size=holes, replace=False)] = 0
            t[1, :2] = 0
        return t

    for case, kw in cases.items():
        kw = dict(kw)
        holes = kw.pop("holes", 0)
        dual = case == "dual"
        common = dict(vocab_size=VOCAB, max_len=LENGTH, num_classes=3, train=False, **kw)
        if dual:
            x1, x2 = tokens(5), tokens(3)
            model_def = lra.TransformerDualEncoder.partial(**common)
            _, params = model_def.init(jax.random.PRNGKey(0), jnp.asarray(x1), jnp.asarray(x2))
        else:
            x1 = tokens(5 if case == "cls" else 0, holes)
            model_def = lra.TransformerEncoder.partial(classifier=True, **common)
            _, params = model_def.init(jax.random.PRNGKey(0), jnp.asarray(x1))
        flat = {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(params).items()}
        new = {}
        for path, value in sorted(flat.items()):
            leaf = path.split("/")[-1]
            if leaf == "scale":
                w = 1.0 + 0.2 * rng.standard_normal(value.shape)
            elif leaf == "bias":
                w = 0.1 * rng.standard_normal(value.shape)
            elif leaf == "embedding" or path == "cls":
                w = rng.standard_normal(value.shape)
            elif leaf == "pos_embedding":
                w = 0.5 * rng.standard_normal(value.shape)
            else:  # Dense kernels (in..., out...): fan-in is every axis but the last (the first two for "out")
                fan_in = int(np.prod(value.shape[:-1]))
                w = rng.standard_normal(value.shape) / np.sqrt(fan_in)
            new[path] = w.astype(np.float32)
            arrays[f"param/{case}/{path}"] = new[path]
            weight_map[f"{case}/{path}"] = _target(path, kw["qkv_dim"], dual)

        def rebuild(tree: dict, prefix: str = "") -> dict:  # keeps empty modules (sinusoidal posembed_input)
            return {k: rebuild(v, f"{prefix}{k}/") if isinstance(v, dict) else
                    jnp.asarray(new[f"{prefix}{k}"], dtype=dtype) for k, v in tree.items()}

        params_run = rebuild(params)
        if dual:
            logits = model_def.call(params_run, jnp.asarray(x1), jnp.asarray(x2))
            arrays[f"{case}/tokens2"] = x2.astype(np.int64)
        else:
            logits = model_def.call(params_run, jnp.asarray(x1))
        assert logits.dtype == dtype, logits.dtype
        arrays[f"{case}/tokens"] = x1.astype(np.int64)
        arrays[f"{case}/logits"] = np.asarray(logits).astype(np.float64)
    return arrays, weight_map


def main(checkout: Path) -> None:
    import json
    import subprocess
    import tempfile

    # float32 case first, in a child process: the float64 alias below is process-wide
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / "float32.npz"
        subprocess.run([sys.executable, __file__, str(checkout), "--float32-case", str(part)], check=True)
        with np.load(part, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k != "weight_map"}
            weight_map = json.loads(str(data["weight_map"]))
    more, more_map = run_cases(checkout, CASES, x64=True, seed=20250103)
    arrays.update(more)
    weight_map.update(more_map)
    out = ROOT / "tests" / "golden" / "lra_transformer.npz"
    write_fixture(out, arrays, repo="google-research/long-range-arena", commit=upstream_commit(checkout),
                  weight_map=weight_map, generator="tools/golden/lra_long_range_arena_transformer.py",
                  notes=("flax.deprecated.nn (flax 0.3.6, jax 0.4.13). Cases (config in the generator), float64 "
                         "(x64, jnp.float32 aliased to float64): cls = TransformerEncoder CLS tied 2 layers emb 16; "
                         "pathx = base_pathfinder128 model (emb 32, 2 heads, qkv 16, mlp 32, MEAN, learned "
                         "positions); dual = TransformerDualEncoder CLS (first token), emb 16. float32 (as LRA ran): "
                         "mean_pad = MEAN pooling, learned positions, emb 16, with id-0 tokens (black pixels) inside both examples, where LRA's "
                         "-1e10 query+key mask makes padding query rows uniform. Inputs <case>/tokens (and "
                         "tokens2), token 0 = padding (mask = tokens > 0). Transforms: transpose (Dense kernel), "
                         "flatten in ((E,h,d) -> (h*d,E)), flatten out ((h,d,E) -> (E,h*d)), squeeze 0, into rows "
                         "a:b (block of our fused qkv). param/* float32 values."))
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def float32_case(checkout: Path, out: Path) -> None:
    import json

    arrays, weight_map = run_cases(checkout, FLOAT32_CASES, x64=False, seed=20250104)
    np.savez(out, weight_map=np.array(json.dumps(weight_map)), **arrays)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "--float32-case":
        float32_case(Path(sys.argv[1]).resolve(), Path(sys.argv[3]))
    elif len(sys.argv) == 2:
        main(Path(sys.argv[1]).resolve())
    else:
        raise SystemExit("usage: lra_long_range_arena_transformer.py <long-range-arena checkout>")
