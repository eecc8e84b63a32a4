"""Pathfinder / Path-X generator, re-implemented from the algorithm of Linsley, Kim et al.
(``snakes2.py`` in github.com/drewlinsley/pathfinder, MIT) with the per-resolution parameters LRA
documents in its TFDS builders (``lra_benchmarks/data/pathfinder.py``).

Per image: draw the label uniformly; grow two *target* snakes from seeds ``seed_distance`` apart
(the first seed kept ``2 * seed_distance`` away from the border), each a chain of
``contour_length`` paddles (short segments of ``paddle_length`` and ``paddle_thickness``, separated
by gaps of about ``2 * margin``). Each next paddle turns by an angle drawn with weight
``cos(min(|Δθ| * continuity, π/2))²`` among candidates on a circle of radius ``length + margin``
around the next pivot, and must keep ``margin`` from everything drawn before (bounded retries).
Then ``num_distractor_snakes`` snakes of ``distractor_length`` paddles are added where room is left,
and two circular markers (``marker_radius``) go on contour ends: a **positive** image marks the
first end of one target snake and the last end of the same snake; a **negative** image marks the
first end of one and the last end of the other. Rendering is anti-aliased by supersampling
(``antialias_scale``) and, like upstream's ``scipy.misc.imsave``, rescaled so the brightest pixel
is 255.

Upstream ran under Python 2, so ``contour_length / 3`` and ``N / distractor_length`` were integer
divisions: distractor length 4 for contour length 14, and 5 / 5 / 8 / 7 distractor snakes at
32 / 64 / 128 / 256 pixels (:data:`PATHFINDER_PRESETS`). Images are statistically like the
release's, not identical (upstream is unseeded and sharded over machines).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

Point = tuple[float, float]  # (y, x) in pixels
Paddle = tuple[Point, Point]  # (first end, last end) in drawing order


@dataclass(frozen=True)
class PathfinderConfig:
    resolution: int = 32
    padding: int = 1
    antialias_scale: int = 2
    paddle_length: float = 2.0
    paddle_thickness: float = 0.5
    paddle_margins: tuple[int, ...] = (1,)  # one drawn per image
    seed_distance: float = 7.0
    marker_radius: float = 1.5
    contour_length: int = 14
    distractor_length: int = 4
    num_distractor_snakes: int = 5
    continuity: float = 1.0
    max_paddle_retrial: int = 2  # snakes2_wrapper default
    max_distractor_retrial: int = 4  # snakes2_wrapper default
    max_target_retrial: int = 200  # upstream retries forever; we give up loudly

    def as_dict(self) -> dict:
        return asdict(self)


#: LRA's parameters (TFDS builder docstrings) at the "hard" difficulty (contour length 14);
#: paddle_length 5 is snakes2_wrapper's default where LRA does not override it
PATHFINDER_PRESETS: dict[int, PathfinderConfig] = {
    32: PathfinderConfig(),
    64: PathfinderConfig(resolution=64, paddle_length=5.0, paddle_thickness=1.0, seed_distance=12.0,
                         marker_radius=2.5, continuity=1.8, num_distractor_snakes=22 // 4),
    128: PathfinderConfig(resolution=128, paddle_length=5.0, paddle_thickness=1.5, paddle_margins=(2, 3),
                          seed_distance=20.0, marker_radius=3.0, continuity=1.8, num_distractor_snakes=35 // 4),
    256: PathfinderConfig(resolution=256, paddle_length=5.0, paddle_thickness=2.0, paddle_margins=(3,),
                          seed_distance=27.0, marker_radius=5.0, continuity=1.8, num_distractor_snakes=30 // 4),
}


def pathfinder_config(resolution: int, contour_length: int = 14) -> PathfinderConfig:
    """LRA parameters at ``resolution`` for difficulty ``contour_length`` (6 baseline, 9, 14 hard)."""
    if resolution not in PATHFINDER_PRESETS:
        raise ValueError(f"no LRA parameters for resolution {resolution}; known: {sorted(PATHFINDER_PRESETS)}")
    base = PATHFINDER_PRESETS[resolution]
    distractor_length = contour_length // 3
    budget = {32: 20, 64: 22, 128: 35, 256: 30}[resolution]
    return replace(base, contour_length=contour_length, distractor_length=distractor_length,
                   num_distractor_snakes=budget // distractor_length)


@dataclass
class PathfinderSample:
    image: np.ndarray  # (resolution, resolution) uint8
    label: int  # 1: markers on the same contour
    targets: list[list[Paddle]]  # the two target snakes
    distractors: list[list[Paddle]]
    markers: tuple[Point, Point]  # (origin marker, terminal marker)
    marker_snakes: tuple[int, int]  # target index under each marker
    margin: int


def _unit(angle: float) -> np.ndarray:
    return np.array([math.sin(angle), math.cos(angle)])  # (y, x)


def _segment_distance(ys: np.ndarray, xs: np.ndarray, paddle: Paddle) -> np.ndarray:
    """Distance of points (ys, xs) to a segment; arrays broadcast."""
    (y0, x0), (y1, x1) = paddle
    dy, dx = y1 - y0, x1 - x0
    length2 = dy * dy + dx * dx
    t = np.clip(((ys - y0) * dy + (xs - x0) * dx) / max(length2, 1e-12), 0.0, 1.0)
    return np.hypot(ys - (y0 + t * dy), xs - (x0 + t * dx))


def _footprint(shape: tuple[int, int], paddle: Paddle, radius: float) -> tuple[slice, slice, np.ndarray]:
    """Pixels whose centres are within ``radius`` of the paddle, as a window and a bool mask."""
    (y0, x0), (y1, x1) = paddle
    top = max(int(math.floor(min(y0, y1) - radius)), 0)
    bottom = min(int(math.ceil(max(y0, y1) + radius)) + 1, shape[0])
    left = max(int(math.floor(min(x0, x1) - radius)), 0)
    right = min(int(math.ceil(max(x0, x1) + radius)) + 1, shape[1])
    ys = np.arange(top, bottom, dtype=float)[:, None]
    xs = np.arange(left, right, dtype=float)[None, :]
    return slice(top, bottom), slice(left, right), _segment_distance(ys, xs, paddle) <= radius


class _Canvas:
    """Occupancy bookkeeping at pixel resolution while snakes are grown."""

    def __init__(self, config: PathfinderConfig, margin: int):
        self.config = config
        self.margin = margin
        size = config.resolution
        self.occupied = np.zeros((size, size), dtype=bool)
        pad = config.padding
        self.occupied[:pad, :] = self.occupied[-pad:, :] = True
        self.occupied[:, :pad] = self.occupied[:, -pad:] = True
        self.draw_radius = max(config.paddle_thickness / 2.0, 0.5)
        self.keep_radius = config.paddle_thickness / 2.0 + margin

    def inside(self, point: np.ndarray) -> bool:
        size = self.config.resolution
        return 0 <= point[0] <= size - 1 and 0 <= point[1] <= size - 1

    def fits(self, paddle: Paddle, occupied: np.ndarray | None = None) -> bool:
        occupied = self.occupied if occupied is None else occupied
        rows, cols, mask = _footprint(occupied.shape, paddle, self.draw_radius)
        return not bool(np.any(occupied[rows, cols] & mask))

    def occupy(self, paddle: Paddle, occupied: np.ndarray | None = None) -> None:
        occupied = self.occupied if occupied is None else occupied
        rows, cols, mask = _footprint(occupied.shape, paddle, self.keep_radius)
        occupied[rows, cols] |= mask

    def free_pixels(self, border: int = 0) -> np.ndarray:
        free = ~self.occupied
        if border > 0:
            free = free.copy()
            free[:border, :] = free[-border:, :] = False
            free[:, :border] = free[:, -border:] = False
        return np.argwhere(free)


def _seed_paddle(canvas: _Canvas, rng: np.random.Generator, tail: np.ndarray) -> tuple[Paddle, float] | None:
    """A first paddle from ``tail`` with a random integer-degree orientation, if it fits."""
    length = canvas.config.paddle_length
    for _ in range(canvas.config.max_paddle_retrial + 1):
        angle = math.radians(int(rng.integers(-180, 180)))
        head = tail + length * _unit(angle)
        if not (canvas.inside(tail) and canvas.inside(head)):
            continue
        paddle = ((float(tail[0]), float(tail[1])), (float(head[0]), float(head[1])))
        if canvas.fits(paddle):
            return paddle, angle
    return None


def _extend(canvas: _Canvas, rng: np.random.Generator, last: Paddle, angle: float,
            occupied: np.ndarray | None = None) -> tuple[Paddle, float] | None:
    """Next paddle after ``last`` (orientation ``angle``): continuity-weighted turn, no overlap
    with ``occupied`` (default: the canvas's occupancy)."""
    occupied = canvas.occupied if occupied is None else occupied
    config, margin = canvas.config, canvas.margin
    pivot = np.asarray(last[1]) + margin * _unit(angle)
    radius = config.paddle_length + margin
    step = 1.0 / radius  # about one pixel of arc, as upstream
    candidates = np.arange(0.0, 2 * math.pi, step)
    heads = pivot[None, :] + radius * np.stack([np.sin(candidates), np.cos(candidates)], axis=1)
    size = config.resolution
    inside = (heads[:, 0] >= 0) & (heads[:, 0] <= size - 1) & (heads[:, 1] >= 0) & (heads[:, 1] <= size - 1)
    if not inside.any():
        return None
    candidates, heads = candidates[inside], heads[inside]
    pixel = np.rint(heads).astype(int)
    free = ~occupied[pixel[:, 0], pixel[:, 1]]
    turn = np.abs((candidates - angle + math.pi) % (2 * math.pi) - math.pi)
    weights = free * np.maximum(np.cos(np.minimum(turn * config.continuity, math.pi / 2)), 0.0) ** 2
    total = weights.sum()
    if total < 1e-4:
        return None
    for _ in range(config.max_paddle_retrial + 1):
        index = int(rng.choice(len(weights), p=weights / total))
        new_angle = float(candidates[index])
        start = pivot + margin * _unit(new_angle)
        paddle = ((float(start[0]), float(start[1])), (float(heads[index, 0]), float(heads[index, 1])))
        if canvas.fits(paddle, occupied):
            return paddle, new_angle
    return None


def _grow(canvas: _Canvas, rng: np.random.Generator, snakes: list[list[Paddle]], angles: list[float],
          num_paddles: int) -> bool:
    """Extend every snake in lock-step to ``num_paddles``; a paddle occupies the canvas once the
    next one of its snake is placed (so a snake never collides with its own last paddle), while
    the other snakes' newest paddles are kept clear of at once (so two snakes never cross)."""
    for _ in range(num_paddles - 1):
        for i, snake in enumerate(snakes):
            occupied = None
            if len(snakes) > 1:
                occupied = canvas.occupied.copy()
                for j, other in enumerate(snakes):
                    if j != i:
                        canvas.occupy(other[-1], occupied)
            step = _extend(canvas, rng, snake[-1], angles[i], occupied)
            if step is None:
                return False
            canvas.occupy(snake[-1])
            snake.append(step[0])
            angles[i] = step[1]
    for snake in snakes:
        canvas.occupy(snake[-1])
    return True


def _target_pair(config: PathfinderConfig, rng: np.random.Generator, margin: int
                 ) -> tuple[_Canvas, list[list[Paddle]]] | None:
    canvas = _Canvas(config, margin)
    border = int(2 * config.seed_distance)
    free = canvas.free_pixels(border if border * 2 < config.resolution else 0)
    if len(free) == 0:
        return None
    tail1 = free[int(rng.integers(len(free)))].astype(float)
    first = _seed_paddle(canvas, rng, tail1)
    if first is None:
        return None
    direction = math.radians(int(rng.integers(0, 360)))
    tail2 = np.rint(tail1 + config.seed_distance * _unit(direction))
    second = _seed_paddle(canvas, rng, tail2)
    if second is None or not canvas.fits(second[0]):
        return None
    snakes = [[first[0]], [second[0]]]
    if not _grow(canvas, rng, snakes, [first[1], second[1]], config.contour_length):
        return None
    return canvas, snakes


def _render(config: PathfinderConfig, paddles: list[Paddle], markers: tuple[Point, Point]) -> np.ndarray:
    """Supersampled rendering of paddles and markers, box-downsampled, rescaled to 0–255."""
    aa, size = config.antialias_scale, config.resolution
    offsets = (np.arange(size * aa) + 0.5) / aa - 0.5  # sub-pixel centres in pixel coordinates
    ys, xs = offsets[:, None], offsets[None, :]
    fine = np.zeros((size * aa, size * aa))
    half = config.paddle_thickness / 2.0 + 0.5 / aa
    for paddle in paddles:
        fine = np.maximum(fine, (_segment_distance(ys, xs, paddle) <= half).astype(float))
    for (my, mx) in markers:
        fine = np.maximum(fine, (np.hypot(ys - my, xs - mx) <= config.marker_radius).astype(float))
    image = fine.reshape(size, aa, size, aa).mean(axis=(1, 3))
    peak = image.max()
    return np.rint(255.0 * image / peak).astype(np.uint8) if peak > 0 else image.astype(np.uint8)


def generate_pathfinder_sample(config: PathfinderConfig, rng: np.random.Generator) -> PathfinderSample:
    """One labelled image; raises RuntimeError if the targets cannot be placed after retries."""
    label = int(rng.integers(2))
    margin = int(config.paddle_margins[int(rng.integers(len(config.paddle_margins)))])
    for _ in range(config.max_target_retrial):
        placed = _target_pair(config, rng, margin)
        if placed is not None:
            break
    else:
        raise RuntimeError(f"could not place two target snakes after {config.max_target_retrial} tries: {config}")
    canvas, targets = placed
    distractors: list[list[Paddle]] = []
    for _ in range(config.num_distractor_snakes):
        for _ in range(config.max_distractor_retrial + 1):
            free = canvas.free_pixels()
            if len(free) == 0:
                break
            seed = _seed_paddle(canvas, rng, free[int(rng.integers(len(free)))].astype(float))
            if seed is None:
                continue
            saved = canvas.occupied.copy()
            snake = [seed[0]]
            if _grow(canvas, rng, [snake], [seed[1]], config.distractor_length):
                distractors.append(snake)
                break
            canvas.occupied = saved
    origin_snake = int(rng.integers(2))
    terminal_snake = origin_snake if label == 1 else 1 - origin_snake
    markers = (targets[origin_snake][0][0], targets[terminal_snake][-1][1])
    paddles = [p for snake in targets + distractors for p in snake]
    image = _render(config, paddles, markers)
    return PathfinderSample(image, label, targets, distractors, markers, (origin_snake, terminal_snake), margin)


#: redraws of one image before giving up (each redraw already made max_target_retrial tries)
MAX_REDRAWS = 20


def generate_pathfinder(config: PathfinderConfig, count: int, rng: np.random.Generator
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``(images (count, R, R) uint8, labels (count,) int64)`` drawn with ``rng``.

    An image whose two target snakes cannot be placed is drawn again from the next random numbers
    (label included), as the upstream generator starts a new image (it is rare: images before the
    first redraw are those of a generator that never redraws). More than :data:`MAX_REDRAWS`
    redraws of one image is an error."""
    images = np.empty((count, config.resolution, config.resolution), dtype=np.uint8)
    labels = np.empty(count, dtype=np.int64)
    for i in range(count):
        for redraw in range(MAX_REDRAWS + 1):
            try:
                sample = generate_pathfinder_sample(config, rng)
                break
            except RuntimeError:
                if redraw == MAX_REDRAWS:
                    raise
        images[i], labels[i] = sample.image, sample.label
    return images, labels
