"""Ray-casting renderer of random indoor scenes with exact dense ground truth.

A scene is a room (floor, back wall and two side walls of random size and height, sky
above the walls) seen by a pinhole camera of random height, yaw, pitch and roll, with a
few objects resting on the floor. Every camera ray is intersected in closed form with
the primitives (planes; y-rotated ellipsoids; y-rotated boxes by the slab method of Kay
and Kajiya, SIGGRAPH 1986; capped vertical cylinders and cones), the nearest hit wins,
and the ground truth of the five tasks (named as in Taskonomy, Zamir et al., CVPR 2018)
follows analytically:

* ``segment_semantic``: class of the surface hit (floor, wall, one class per object kind),
  :data:`SKY_LABEL` for sky.
* ``depth_zbuffer``: distance along the optical axis in metres; 0 for sky.
* ``normal``: unit surface normal in the camera frame (x right, y down, z forward; it
  points against the pixel's ray, i.e. towards the camera); all-zero for sky.
* ``keypoints2d``: visible box corners, tops of spheres, ellipsoids, cylinders and discs,
  cone apexes and the room's back corners, drawn as Gaussian blobs of peak 1.
* ``edge_texture``: 1 on occlusion edges (the surface changes between 4-neighbours; the
  nearer pixel of the pair is marked) and crease edges (neighbouring normals of one
  surface differ by more than 35 degrees), 0 elsewhere.

Every surface gets random colours and a random procedural texture (plain, checker,
stripes or smooth noise, in world coordinates), so colour alone says nothing about the
class. The image is Lambert shading under a random directional light plus ambient light,
with exposure jitter and sensor noise, quantised to 8 bits.

Speed comes from numpy over many pixels at once: the sampler draws all scenes in one
vectorised pass, from one fixed-size block of uniforms per scene (so a scene does not
depend on which others share its batch); the planes are intersected for every pixel,
each object only inside the screen rectangle of its projected bounding box; the pixels
are then grouped by surface so that per-surface parameters are spread with ``np.repeat``
instead of gathered pixel by pixel.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

#: Bump whenever the rendered output changes: it is part of the on-disk cache key.
RENDERER_VERSION = 2

#: Class names by id. A data set with ``num_classes = k`` uses the first ``k`` names.
CLASS_NAMES = ("floor", "wall", "sphere", "box", "cylinder", "cone", "ellipsoid", "pillar", "disc")
MIN_CLASSES = 6
MAX_CLASSES = len(CLASS_NAMES)

#: Label of pixels where no surface was hit (sky).
SKY_LABEL = 255

#: Horizontal (and vertical) field of view of the square images.
FIELD_OF_VIEW_DEG = 60.0

#: Scenes ray cast together; small enough that the per-pixel arrays stay in the CPU cache.
CHUNK = 8

# Primitive codes; a scene's table rows are grouped by them (sky and unused slots last).
_PLANE, _ELLIPSOID, _BOX, _CYLINDER, _CONE, _SKY, _UNUSED = range(7)

#: Per object kind: unit primitive, low and high ends of the three scale factors
#: (metres), which of three uniform draws sets each axis (equal indices tie axes), height
#: of the centre above the floor as a fraction of the y scale, and the y offset of the
#: unit frame (the unit cone spans y in [0, 1], the other primitives are centred on 0).
_KINDS: dict[
    str, tuple[int, tuple[float, ...], tuple[float, ...], tuple[int, ...], float, float]
] = {
    "sphere": (_ELLIPSOID, (0.3, 0.3, 0.3), (0.6, 0.6, 0.6), (0, 0, 0), 1.0, 0.0),
    "box": (_BOX, (0.2, 0.2, 0.2), (0.5, 0.5, 0.5), (0, 1, 2), 1.0, 0.0),
    "cylinder": (_CYLINDER, (0.2, 0.3, 0.2), (0.4, 0.65, 0.4), (0, 1, 0), 1.0, 0.0),
    "cone": (_CONE, (0.25, 0.7, 0.25), (0.5, 1.4, 0.5), (0, 1, 0), 0.5, 0.5),
    "ellipsoid": (_ELLIPSOID, (0.5, 0.18, 0.18), (0.85, 0.32, 0.32), (0, 1, 2), 1.0, 0.0),
    "pillar": (_BOX, (0.12, 0.8, 0.12), (0.22, 1.3, 0.22), (0, 1, 2), 1.0, 0.0),
    "disc": (_CYLINDER, (0.45, 0.04, 0.45), (0.75, 0.1, 0.75), (0, 1, 0), 1.0, 0.0),
}

_NUM_PLANES = 4  # slots 0..3 of a scene: floor, back wall, left wall, right wall
_CANDIDATES = 16  # placement attempts per object
_KEYPOINTS_PER_OBJECT = 8
_ROOM_KEYPOINTS = 4
_CREASE_COS = math.cos(math.radians(35.0))
_NOISE_STD = 0.015
_MISS = np.float32(1e30)  # ray parameter of "no hit"
_CORNER_SIGNS = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)])

# Uniform draws per texture, per scene (besides its two textures) and per object slot.
_TEXTURE_DRAWS = 17
_SCENE_DRAWS = 18 + 2 * _TEXTURE_DRAWS
_OBJECT_DRAWS = 5 + 2 * _CANDIDATES + _TEXTURE_DRAWS

# Columns of the table with one row per (scene, slot), spread over the slot's pixels.
_M, _E = slice(0, 9), slice(9, 12)  # q = M p + e maps camera frame -> unit frame
_W1, _PH1, _W2, _PH2 = slice(12, 15), 15, slice(16, 19), 19  # texture waves (camera frame)
_COLA, _COLD, _CHECK, _SHARP = slice(20, 23), slice(23, 26), 26, 27  # colours and pattern
_LIGHT, _BASE, _SLOPE = slice(28, 31), 31, 32  # shading = base + slope * max(n . light, 0)
_LABEL = 33
_COLS = 34


@dataclass(frozen=True)
class RenderSettings:
    """What the renderer needs besides the seeds."""

    resolution: int = 64
    num_classes: int = 7
    min_objects: int = 2
    max_objects: int = 6

    @property
    def object_kinds(self) -> tuple[str, ...]:
        """Object kinds in use, in class-id order (ids 2, 3, ...)."""
        return CLASS_NAMES[2 : self.num_classes]


def render_scenes(
    seeds: Sequence[np.random.SeedSequence], settings: RenderSettings
) -> dict[str, np.ndarray]:
    """Renders one scene per seed.

    Returns:
        ``image`` uint8 ``(N, 3, H, W)``; ``segment_semantic`` uint8 ``(N, H, W)``;
        ``depth_zbuffer`` float32 ``(N, H, W)``; ``normal`` float32 ``(N, 3, H, W)``;
        ``keypoints2d`` float32 ``(N, H, W)`` in ``[0, 1]``;
        ``edge_texture`` uint8 ``(N, H, W)`` with values 0 or 1.
    """
    res = settings.resolution
    n = len(seeds)
    out: dict[str, np.ndarray] = {
        "image": np.empty((n, 3, res, res), dtype=np.uint8),
        "segment_semantic": np.empty((n, res, res), dtype=np.uint8),
        "depth_zbuffer": np.empty((n, res, res), dtype=np.float32),
        "normal": np.empty((n, 3, res, res), dtype=np.float32),
        "keypoints2d": np.empty((n, res, res), dtype=np.float32),
        "edge_texture": np.empty((n, res, res), dtype=np.uint8),
    }
    if n == 0:
        return out
    rngs = [np.random.default_rng(seed) for seed in seeds]
    draws = _SCENE_DRAWS + _OBJECT_DRAWS * settings.max_objects
    scenes = _Sampler(np.stack([rng.random(draws) for rng in rngs]), settings).scenes
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        noise = np.stack(
            [np.frombuffer(rng.bytes(3 * res * res), dtype=np.uint8) for rng in rngs[start:stop]]
        )
        for key, value in _render(scenes[start:stop], noise).items():
            out[key][start:stop] = value
    return out


@functools.lru_cache(maxsize=8)
def _camera_rays(resolution: int) -> np.ndarray:
    """Unit ray directions ``(3, P)`` through the pixel centres (row-major), read-only."""
    centres = (np.arange(resolution) + 0.5 - resolution / 2) / _focal(resolution)
    y, x = np.meshgrid(centres, centres, indexing="ij")
    rays = np.stack([x.ravel(), y.ravel(), np.ones(x.size)])
    rays = (rays / np.linalg.norm(rays, axis=0)).astype(np.float32)
    rays.setflags(write=False)
    return rays


def _focal(resolution: int) -> float:
    return 0.5 * resolution / math.tan(math.radians(FIELD_OF_VIEW_DEG) / 2)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB, inputs in ``[0, 1]``, output ``(..., 3)``."""
    k = (np.array([5.0, 3.0, 1.0]) + h[..., None] * 6.0) % 6.0
    return v[..., None] - (v * s)[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _unit_vectors(cos_polar: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    """Unit vectors ``(..., 3)``, uniform on the sphere for uniform inputs in ``[0, 1]``."""
    z = 2.0 * cos_polar - 1.0
    r = np.sqrt(np.maximum(1.0 - z * z, 0.0))
    phi = 2 * math.pi * azimuth
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=-1)


@dataclass(frozen=True)
class _Scenes:
    """Everything the ray caster needs about ``B`` scenes; slicing gives a sub-batch.

    ``table`` has one row per (scene, slot) with the slots floor, back wall, left wall,
    right wall, ``max_objects`` objects and sky; ``codes`` gives each row's primitive.
    """

    table: np.ndarray  # (B, S + 1, _COLS) float32
    codes: np.ndarray  # (B, S + 1) int
    plane_normal: np.ndarray  # (B, 4, 3) float32, camera frame, pointing into the room
    plane_dist: np.ndarray  # (B, 4) float32: planes n . x = d in the camera frame
    up: np.ndarray  # (B, 3) float32: world up in the camera frame
    camera_height: np.ndarray  # (B,) float32
    room_height: np.ndarray  # (B,) float32
    sky_top: np.ndarray  # (B, 3) float32, 8-bit units
    sky_horizon: np.ndarray  # (B, 3) float32, 8-bit units
    keypoints: np.ndarray  # (B, K, 3) camera frame
    keypoint_valid: np.ndarray  # (B, K) bool
    corners: np.ndarray  # (B, max_objects, 8, 3): objects' bounding boxes, camera frame

    def __getitem__(self, index: slice) -> _Scenes:
        return _Scenes(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


class _Sampler:
    """Draws scenes from per-scene blocks of uniforms ``(B, draws)``, vectorised over B."""

    def __init__(self, uniforms: np.ndarray, settings: RenderSettings) -> None:
        self.settings = settings
        self.size = len(uniforms)
        self.slots = _NUM_PLANES + settings.max_objects
        self.table = np.zeros((self.size, self.slots + 1, _COLS))
        self.codes = np.full((self.size, self.slots + 1), _UNUSED, dtype=np.int64)
        self.codes[:, :_NUM_PLANES] = _PLANE
        self.codes[:, -1] = _SKY
        self.table[:, -1, _LABEL] = SKY_LABEL
        self._uniforms = uniforms
        self._used = 0
        self._sample_scene()
        for k in range(settings.max_objects):
            self._sample_object(k)
        assert self._used == uniforms.shape[1], "uniform draws out of step with their count"
        f32 = np.float32
        self.scenes = _Scenes(
            table=self.table.astype(f32),
            codes=self.codes,
            plane_normal=self.plane_normal.astype(f32),
            plane_dist=self.plane_dist.astype(f32),
            up=self.cam_from_world[:, :, 1].astype(f32),
            camera_height=self.cam_pos[:, 1].astype(f32),
            room_height=self.room_height.astype(f32),
            sky_top=self.sky_top.astype(f32),
            sky_horizon=self.sky_horizon.astype(f32),
            keypoints=self.keypoints,
            keypoint_valid=self.keypoint_valid,
            corners=self.corners,
        )

    def _draw(self, count: int) -> np.ndarray:
        """The next ``count`` uniform columns ``(B, count)``."""
        start = self._used
        self._used += count
        return self._uniforms[:, start : self._used]

    def _uniform(self, low: float, high: float) -> np.ndarray:
        return low + (high - low) * self._draw(1)[:, 0]

    def _to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points ``(B, k, 3)`` -> camera frame."""
        return (points - self.cam_pos[:, None]) @ np.swapaxes(self.cam_from_world, 1, 2)

    def _texture(self, slots: slice) -> None:
        """Gives ``slots`` one random texture per scene: two colours, two waves, a pattern."""
        u = self._draw(_TEXTURE_DRAWS)
        a = _hsv_to_rgb(u[:, 0], 0.05 + 0.85 * u[:, 1], 0.35 + 0.65 * u[:, 2])
        other = _hsv_to_rgb(u[:, 4], 0.9 * u[:, 5], 0.2 + 0.8 * u[:, 6])
        darker = a * (0.35 + 0.45 * u[:, 7, None])
        b = np.where(u[:, 3, None] < 0.5, other, darker)
        # Patterns: plain, checker, stripes, smooth noise, as (check, sharpness).
        pattern = np.minimum((u[:, 16] * 4).astype(np.int64), 3)
        check = np.array([0.0, 0.0, 1.0, 0.5])[pattern]
        sharp = np.array([0.0, 20.0, 20.0, 0.5])[pattern]
        rows = self.table[:, slots]
        rows[..., _COLA] = a[:, None]
        rows[..., _COLD] = (b - a)[:, None]
        rows[..., _CHECK] = check[:, None]
        rows[..., _SHARP] = sharp[:, None]
        for col, phase, first in ((_W1, _PH1, 8), (_W2, _PH2, 12)):
            freq = 2 * math.pi * (0.8 + 3.2 * u[:, first + 2])
            wave = _unit_vectors(u[:, first], u[:, first + 1]) * freq[:, None]
            # w . x_world = (R w) . x_cam + w . cam_pos, with R camera-from-world.
            rows[..., col] = (self.cam_from_world @ wave[:, :, None]).transpose(0, 2, 1)
            offset = 2 * math.pi * u[:, first + 3] + (wave * self.cam_pos).sum(axis=1)
            rows[..., phase] = offset[:, None]

    def _sample_scene(self) -> None:
        size = self.size
        zero = np.zeros(size)
        # Camera: world y is up; the camera frame is x right, y down, z forward.
        height = self._uniform(1.0, 2.0)
        pitch = np.radians(self._uniform(10.0, 35.0))
        yaw = np.radians(self._uniform(-25.0, 25.0))
        roll = np.radians(self._uniform(-4.0, 4.0))
        forward = np.stack(
            [np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)], axis=1
        )
        right = np.stack([np.cos(yaw), zero, -np.sin(yaw)], axis=1)
        down = np.cross(right, forward)
        c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
        right, down = c * right + s * down, -s * right + c * down
        self.cam_from_world = np.stack([right, down, forward], axis=1)
        self.cam_pos = np.stack([zero, height, zero], axis=1)
        self.yaw = yaw

        # Room: world planes n . x = d with n pointing into the room; sky above the walls.
        back, left = self._uniform(6.0, 11.0), -self._uniform(2.5, 5.0)
        right_x, room_height = self._uniform(2.5, 5.0), self._uniform(2.5, 4.0)
        self.back, self.left, self.right, self.room_height = back, left, right_x, room_height
        normals = np.array([[0, 1, 0], [0, 0, -1], [1, 0, 0], [-1, 0, 0]], dtype=np.float64)
        self.plane_normal = normals @ np.swapaxes(self.cam_from_world, 1, 2)
        self.plane_dist = np.stack([zero, -back, left, -right_x], axis=1)
        self.plane_dist -= height[:, None] * normals[:, 1]
        # Planes use the unit-frame map too: q = (n . p + 1 - d, 0, 0) is (1, 0, 0) on the
        # plane, so the normal M^T q is n.
        self.table[:, :_NUM_PLANES, 0:3] = self.plane_normal
        self.table[:, :_NUM_PLANES, _E.start] = 1.0 - self.plane_dist
        self.table[:, 1:_NUM_PLANES, _LABEL] = 1

        # Light (direction towards it, camera frame), exposure, sky colours.
        azimuth = self._uniform(0.0, 2 * math.pi)
        elevation = np.radians(self._uniform(25.0, 70.0))
        light = np.stack(
            [
                np.cos(elevation) * np.sin(azimuth),
                np.sin(elevation),
                np.cos(elevation) * np.cos(azimuth),
            ],
            axis=1,
        )
        ambient, intensity = self._uniform(0.2, 0.45), self._uniform(0.7, 1.0)
        gain = 255.0 * self._uniform(0.8, 1.2)  # exposure, in 8-bit units
        self.table[:, :, _LIGHT] = (self.cam_from_world @ light[:, :, None]).transpose(0, 2, 1)
        self.table[:, :, _BASE] = (gain * ambient)[:, None]
        self.table[:, :, _SLOPE] = (gain * (1.0 - ambient) * intensity)[:, None]
        horizon = _hsv_to_rgb(
            self._uniform(0.5, 0.7), self._uniform(0.05, 0.3), self._uniform(0.7, 1.0)
        )
        self.sky_horizon = horizon * gain[:, None]
        self.sky_top = self.sky_horizon * self._uniform(0.6, 0.9)[:, None]

        settings = self.settings
        spread = settings.max_objects - settings.min_objects + 1
        self.count = settings.min_objects + np.minimum(
            (self._draw(1)[:, 0] * spread).astype(np.int64), spread - 1
        )
        self._texture(slice(0, 1))
        self._texture(slice(1, _NUM_PLANES))

        max_points = _ROOM_KEYPOINTS + _KEYPOINTS_PER_OBJECT * settings.max_objects
        self.keypoints = np.zeros((size, max_points, 3))
        self.keypoint_valid = np.zeros((size, max_points), dtype=bool)
        corners = np.stack(
            [
                np.stack([left, zero, back], axis=1),
                np.stack([right_x, zero, back], axis=1),
                np.stack([left, room_height, back], axis=1),
                np.stack([right_x, room_height, back], axis=1),
            ],
            axis=1,
        )
        self.keypoints[:, :_ROOM_KEYPOINTS] = self._to_camera(corners)
        self.keypoint_valid[:, :_ROOM_KEYPOINTS] = True
        self.placed = np.zeros((size, 0, 3))  # x, z, footprint radius of placed objects
        self.corners = np.zeros((size, settings.max_objects, 8, 3))

    def _sample_object(self, k: int) -> None:
        size = self.size
        zero, one = np.zeros(size), np.ones(size)
        kinds = self.settings.object_kinds
        kind = np.minimum((self._draw(1)[:, 0] * len(kinds)).astype(np.int64), len(kinds) - 1)
        specs = [_KINDS[name] for name in kinds]
        shape = np.array([spec[0] for spec in specs])[kind]
        low = np.array([spec[1] for spec in specs])[kind]
        high = np.array([spec[2] for spec in specs])[kind]
        axis_draw = np.array([spec[3] for spec in specs])[kind]
        centre_frac = np.array([spec[4] for spec in specs])[kind]
        offset_y = np.array([spec[5] for spec in specs])[kind]
        scale = low + (high - low) * np.take_along_axis(self._draw(3), axis_draw, axis=1)
        centre_y = centre_frac * scale[:, 1]
        angle = self._uniform(0.0, 2 * math.pi)

        # Placement: the first of 16 candidates in view that overlaps no earlier object.
        is_box = shape == _BOX
        reach = np.where(is_box, np.hypot(scale[:, 0], scale[:, 2]), scale[:, [0, 2]].max(1))
        dist = 1.8 + 5.2 * self._draw(_CANDIDATES)
        half_fov = math.tan(math.radians(FIELD_OF_VIEW_DEG) / 2)
        lateral = (2 * self._draw(_CANDIDATES) - 1) * 0.9 * dist * half_fov
        sin_yaw, cos_yaw = np.sin(self.yaw)[:, None], np.cos(self.yaw)[:, None]
        xs = np.clip(
            dist * sin_yaw + lateral * cos_yaw,
            (self.left + reach + 0.05)[:, None],
            (self.right - reach - 0.05)[:, None],
        )
        zs = np.minimum(dist * cos_yaw - lateral * sin_yaw, (self.back - reach - 0.05)[:, None])
        px, pz, pr = (self.placed[:, None, :, i] for i in range(3))
        gap = np.hypot(xs[:, :, None] - px, zs[:, :, None] - pz) - pr - reach[:, None, None]
        pick = (gap > 0.05).all(axis=2).argmax(axis=1)  # 0 when no candidate is free
        x, z = xs[np.arange(size), pick], zs[np.arange(size), pick]
        active = k < self.count
        footprint = np.stack([x, z, np.where(active, reach, -1e3)], axis=1)
        self.placed = np.concatenate([self.placed, footprint[:, None]], axis=1)

        # Camera -> unit frame: q = diag(1/scale) R_obj^T R_cam (p - c) + offset.
        cos_a, sin_a = np.cos(angle), np.sin(angle)
        world_from_object = np.stack(
            [
                np.stack([cos_a, zero, sin_a], axis=1),
                np.stack([zero, one, zero], axis=1),
                np.stack([-sin_a, zero, cos_a], axis=1),
            ],
            axis=1,
        )
        cam_from_object = self.cam_from_world @ world_from_object
        matrix = np.swapaxes(cam_from_object, 1, 2) / scale[:, :, None]
        centre = self._to_camera(np.stack([x, centre_y, z], axis=1)[:, None])[:, 0]
        offset = np.stack([zero, offset_y, zero], axis=1)
        slot = _NUM_PLANES + k
        self.codes[:, slot] = np.where(active, shape, _UNUSED)
        self.table[:, slot, _M] = matrix.reshape(size, 9)
        self.table[:, slot, _E] = offset - (matrix @ centre[:, :, None])[:, :, 0]
        self.table[:, slot, _LABEL] = 2 + kind
        half = scale * np.stack([one, 1.0 - offset_y, one], axis=1)  # half extents
        box = (_CORNER_SIGNS * half[:, None]) @ np.swapaxes(cam_from_object, 1, 2)
        self.corners[:, k] = box + centre[:, None]
        self._texture(slice(slot, slot + 1))

        # Keypoints: the 8 corners of boxes, else the top (the apex of cones).
        corners = _CORNER_SIGNS * scale[:, None] + np.stack([zero, centre_y, zero], axis=1)[:, None]
        top = np.zeros((size, _KEYPOINTS_PER_OBJECT, 3))
        top[:, 0, 1] = 2 * centre_y
        local = np.where(is_box[:, None, None], corners, top)
        world = local @ np.swapaxes(world_from_object, 1, 2)
        world += np.stack([x, zero, z], axis=1)[:, None]
        span = slice(_ROOM_KEYPOINTS + _KEYPOINTS_PER_OBJECT * k, None)
        span = slice(span.start, span.start + _KEYPOINTS_PER_OBJECT)
        self.keypoints[:, span] = self._to_camera(world)
        used = is_box[:, None] | (np.arange(_KEYPOINTS_PER_OBJECT) == 0)
        self.keypoint_valid[:, span] = used & active[:, None]


def _render(scenes: _Scenes, noise: np.ndarray) -> dict[str, np.ndarray]:
    """Ray casts a few scenes; ``noise`` holds uint8 ``(B, 3 * P)`` sensor noise."""
    size, rows_per_scene = scenes.codes.shape
    slots = rows_per_scene - 1
    res = round(math.sqrt(noise.shape[1] // 3))
    rays = _camera_rays(res)
    pixels = rays.shape[1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t, nearest = _cast(scenes, rays, res)
    sky = t >= _MISS
    nearest[sky] = slots
    t[sky] = 0.0
    depth = t * rays[2]
    row = (np.arange(size)[:, None] * rows_per_scene + nearest).ravel()
    label = np.take(scenes.table[:, :, _LABEL].ravel(), row).astype(np.uint8)

    # Sort the pixels by (primitive, scene, slot): every table row then covers one
    # contiguous run of pixels and every primitive one contiguous span.
    codes = scenes.codes.ravel()
    row_order = np.argsort(codes, kind="stable")
    rank = np.empty_like(row_order)
    rank[row_order] = np.arange(row_order.size)
    key = rank[row]
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key, minlength=row_order.size)
    table = np.ascontiguousarray(scenes.table.reshape(-1, _COLS)[row_order].T)
    cols = np.repeat(table, counts, axis=1)  # (_COLS, B * P)
    ends = np.cumsum(np.bincount(codes[row_order], weights=counts, minlength=_UNUSED + 1))
    ends = ends.astype(np.intp)
    spans = {code: slice(ends[code - 1] if code else 0, ends[code]) for code in range(_UNUSED)}
    p = t.ravel()[order] * np.take(rays, order % pixels, axis=1)
    normal = _normals(cols, p, spans)
    colour = _shade(cols, p, normal)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    normal = np.take(normal, inverse, axis=1).reshape(3, size, pixels)
    colour = np.take(colour, inverse, axis=1).reshape(3, size, pixels)

    fraction = np.repeat(np.linspace(0.0, 1.0, res, dtype=np.float32), res)
    top, horizon = scenes.sky_top.T[:, :, None], scenes.sky_horizon.T[:, :, None]
    np.copyto(colour, top + (horizon - top) * fraction, where=sky)
    jitter = noise.reshape(size, 3, pixels).transpose(1, 0, 2).astype(np.float32)
    colour += (jitter - 127.5) * np.float32(_NOISE_STD * math.sqrt(12.0)) + 0.5  # uniform noise
    image = np.clip(colour, 0.0, 255.0, out=colour).astype(np.uint8)

    grid = (size, res, res)
    edges = _edges(nearest.reshape(grid), np.where(sky, np.inf, depth).reshape(grid), normal)
    return {
        "image": image.reshape(3, *grid).transpose(1, 0, 2, 3),
        "segment_semantic": label.reshape(grid),
        "depth_zbuffer": depth.reshape(grid),
        "normal": normal.reshape(3, *grid).transpose(1, 0, 2, 3),
        "keypoints2d": _keypoint_heatmap(scenes, np.where(sky, np.inf, depth).reshape(grid)),
        "edge_texture": edges,
    }


def _cast(scenes: _Scenes, rays: np.ndarray, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Ray parameter ``(B, P)`` of the nearest hit (:data:`_MISS` if none) and its slot.

    The four planes are intersected for all pixels of all scenes; each object only for
    the pixels of the screen rectangle around its projected bounding box. The pixels of
    all objects' rectangles go into flat arrays, grouped by primitive.
    """
    pixels = rays.shape[1]
    # The camera is inside the room, so every plane's d < 0 and t = d / (n . r) is positive
    # exactly for the planes the ray heads towards; the walls' nearest such hit is where the
    # ray leaves the room's footprint, and counts only below the walls' top.
    planes = scenes.plane_dist[:, :, None] / (scenes.plane_normal @ rays)  # (B, 4, P)
    planes[planes <= 0] = _MISS
    floor = planes[:, 0]
    walls = np.fmin.reduce(planes[:, 1:], axis=1)
    up = scenes.up @ rays  # world height gained per unit of t
    walls[scenes.camera_height[:, None] + walls * up > scenes.room_height[:, None]] = _MISS
    best = np.fmin(floor, walls)
    nearest = np.zeros(best.shape, dtype=np.intp)
    for s in range(1, _NUM_PLANES):
        nearest[planes[:, s] == best] = s

    codes = scenes.codes[:, _NUM_PLANES:-1]
    bi, ki = np.nonzero(codes != _UNUSED)
    by_code = np.argsort(codes[bi, ki], kind="stable")
    bi, ki = bi[by_code], ki[by_code]
    r0, r1, c0, c1 = _screen_windows(scenes.corners[bi, ki], res).T
    widths = c1 - c0
    sizes = (r1 - r0) * widths
    if sizes.sum() == 0:
        return best, nearest
    starts = np.cumsum(sizes) - sizes
    local = np.arange(sizes.sum()) - np.repeat(starts, sizes)
    width = np.repeat(widths, sizes)
    pixel = (np.repeat(r0, sizes) + local // width) * res + np.repeat(c0, sizes) + local % width
    params = np.repeat(scenes.table[bi, _NUM_PLANES + ki, :12].T, sizes, axis=1)
    ray = np.take(rays, pixel, axis=1)
    direction = np.stack(
        [
            params[3 * i] * ray[0] + params[3 * i + 1] * ray[1] + params[3 * i + 2] * ray[2]
            for i in range(3)
        ]
    )
    origin = params[_E]  # the camera centre in the unit frame
    t = np.empty(pixel.shape, dtype=np.float32)
    ends = np.cumsum(sizes)
    per_code = np.cumsum(np.bincount(codes[bi, ki], minlength=_UNUSED))
    for code, intersect in _INTERSECT.items():
        first, last = per_code[code - 1], per_code[code]
        if last > first:
            span = slice(starts[first], ends[last - 1])
            t[span] = intersect(origin[:, span], direction[:, span])
    target = np.repeat(bi * pixels, sizes) + pixel
    flat_best = best.reshape(-1)
    np.minimum.at(flat_best, target, t)
    won = t == flat_best[target]
    nearest.reshape(-1)[target[won]] = np.repeat(_NUM_PLANES + ki, sizes)[won]
    return best, nearest


def _screen_windows(corners: np.ndarray, res: int) -> np.ndarray:
    """Pixel rectangles ``(N, 4)`` (row start, row stop, column start, column stop) whose
    pixel centres cover the projections of boxes given by their corners ``(N, 8, 3)``; the
    whole image when a box reaches behind the camera."""
    z = corners[..., 2]
    ok = np.asarray((z > 1e-2).all(axis=1))
    focal = _focal(res)
    image = corners[..., :2] / np.where(ok[:, None], z, 1.0)[..., None] * focal + res / 2 - 0.5
    first = np.where(ok[:, None], np.floor(image.min(axis=1)), 0)
    last = np.where(ok[:, None], np.ceil(image.max(axis=1)) + 1, res)
    windows = np.stack([first[:, 1], last[:, 1], first[:, 0], last[:, 0]], axis=1)
    return np.clip(windows, 0, res).astype(np.intp)


def _hit_ellipsoid(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Nearest positive hit with the unit sphere from origins ``o`` along ``d`` (both
    ``(3, n)``); :data:`_MISS` where there is none."""
    a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    half_b = o[0] * d[0] + o[1] * d[1] + o[2] * d[2]
    c = o[0] * o[0] + o[1] * o[1] + o[2] * o[2] - 1.0
    t = (-half_b - np.sqrt(half_b * half_b - a * c)) / a
    t[~(t > 0)] = _MISS  # NaN when the ray misses
    return t


def _hit_box(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Nearest positive hit with the cube ``[-1, 1]^3`` (slab method)."""
    near = np.zeros(d.shape[1], dtype=np.float32)  # only t > 0 counts
    far = np.full(d.shape[1], _MISS, dtype=np.float32)
    for i in range(3):
        inv = 1.0 / d[i]
        t1, t2 = (-1.0 - o[i]) * inv, (1.0 - o[i]) * inv
        np.fmax(near, np.minimum(t1, t2), out=near)
        np.fmin(far, np.maximum(t1, t2), out=far)
    near[~(far >= near)] = _MISS
    return near


def _hit_cylinder(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Nearest positive hit with the capped cylinder ``x^2 + z^2 <= 1, |y| <= 1``."""
    a = d[0] * d[0] + d[2] * d[2]
    half_b = o[0] * d[0] + o[2] * d[2]
    c = o[0] * o[0] + o[2] * o[2] - 1.0
    t = (-half_b - np.sqrt(half_b * half_b - a * c)) / a
    y = o[1] + t * d[1]
    t[~((t > 0) & (np.abs(y) <= 1.0))] = _MISS
    # Only the cap facing the camera can be seen, and only from beyond its plane.
    cap_y = np.sign(o[1]) * (np.abs(o[1]) > 1.0)
    t_cap = (cap_y - o[1]) / d[1]
    x, z = o[0] + t_cap * d[0], o[2] + t_cap * d[2]
    t_cap[~((t_cap > 0) & (x * x + z * z <= 1.0) & (cap_y != 0))] = _MISS
    return np.fmin(t, t_cap)


def _hit_cone(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Nearest positive hit with the cone ``x^2 + z^2 <= (1 - y)^2, 0 <= y <= 1``."""
    ou = 1.0 - o[1]  # u = 1 - y: 0 at the apex, 1 at the base
    a = d[0] * d[0] + d[2] * d[2] - d[1] * d[1]
    half_b = o[0] * d[0] + o[2] * d[2] + ou * d[1]
    c = o[0] * o[0] + o[2] * o[2] - ou * ou
    root = np.sqrt(half_b * half_b - a * c)
    best = np.full(a.shape, _MISS, dtype=np.float32)
    for sign in (-1.0, 1.0):
        t = (-half_b + sign * root) / a
        y = o[1] + t * d[1]
        t[~((t > 0) & (y >= 0.0) & (y <= 1.0))] = _MISS
        np.fmin(best, t, out=best)
    if np.any(o[1] < 0.0):  # the base can only be seen from below it
        t_cap = -o[1] / d[1]
        x, z = o[0] + t_cap * d[0], o[2] + t_cap * d[2]
        t_cap[~((t_cap > 0) & (x * x + z * z <= 1.0) & (o[1] < 0.0))] = _MISS
        np.fmin(best, t_cap, out=best)
    return best


_INTERSECT = {
    _ELLIPSOID: _hit_ellipsoid,
    _BOX: _hit_box,
    _CYLINDER: _hit_cylinder,
    _CONE: _hit_cone,
}


def _normals(cols: np.ndarray, p: np.ndarray, spans: dict[int, slice]) -> np.ndarray:
    """Unit normals ``(3, N)`` in the camera frame at points ``p (3, N)``; zero for sky.

    The gradient ``g`` of the unit primitive's implicit function at ``q = M p + e`` maps
    back to the camera frame as ``M^T g`` (planes are set up so that this is their normal).
    """
    m = cols[_M]
    grad = np.stack(
        [
            m[3 * i] * p[0] + m[3 * i + 1] * p[1] + m[3 * i + 2] * p[2] + cols[9 + i]
            for i in range(3)
        ]
    )
    for code in (_BOX, _CYLINDER, _CONE):
        span = spans[code]
        if span.stop > span.start:
            grad[:, span] = _gradient(code, grad[:, span])
    normal = np.stack([m[i] * grad[0] + m[3 + i] * grad[1] + m[6 + i] * grad[2] for i in range(3)])
    length = np.sqrt(normal[0] * normal[0] + normal[1] * normal[1] + normal[2] * normal[2])
    normal *= 1.0 / np.maximum(length, 1e-12)
    return normal


def _gradient(code: int, q: np.ndarray) -> np.ndarray:
    """Outward gradient of a unit primitive (box, cylinder, cone) at points ``q (3, n)``."""
    x, y, z = q
    if code == _BOX:
        ax, ay, az = np.abs(q)
        on_x = (ax >= ay) & (ax >= az)
        on_y = ~on_x & (ay >= az)
        on_z = ~on_x & ~on_y
        return np.stack([on_x * np.sign(x), on_y * np.sign(y), on_z * np.sign(z)])
    radial = np.sqrt(x * x + z * z)
    if code == _CYLINDER:
        side = np.abs(1.0 - np.abs(y)) >= np.abs(1.0 - radial)
        return np.stack([side * x, ~side * np.sign(y), side * z])
    # Cone: f = x^2 + z^2 - (1 - y)^2 on the side; the base is the plane y = 0.
    side = np.abs(y) >= np.abs(radial - (1.0 - y))
    return np.stack([side * x, side * (2.0 - y) - 1.0, side * z])


def _shade(cols: np.ndarray, p: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Colours ``(3, N)`` in 8-bit units: textured albedo times Lambert plus ambient."""
    w1, w2 = cols[_W1], cols[_W2]
    wave1 = np.sin(w1[0] * p[0] + w1[1] * p[1] + w1[2] * p[2] + cols[_PH1])
    wave2 = np.sin(w2[0] * p[0] + w2[1] * p[1] + w2[2] * p[2] + cols[_PH2])
    # check = 1: stripes of wave 1; check = 0: checker of both waves; sharp sets contrast.
    check = cols[_CHECK]
    value = wave1 * (check + (1.0 - check) * wave2)
    mix = np.clip(0.5 + cols[_SHARP] * value, 0.0, 1.0)
    light = cols[_LIGHT]
    lambert = np.maximum(normal[0] * light[0] + normal[1] * light[1] + normal[2] * light[2], 0.0)
    shading = cols[_BASE] + cols[_SLOPE] * lambert
    a, d = cols[_COLA], cols[_COLD]
    return np.stack([(a[c] + d[c] * mix) * shading for c in range(3)])


def _edges(surface: np.ndarray, depth: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Occlusion and crease edges ``(B, H, W)`` as uint8 0/1.

    For every pair of 4-neighbours on different surfaces, or on one surface with normals
    more than 35 degrees apart, the nearer pixel of the pair is an edge (sky has infinite
    depth and zero normals, so sky pixels are never edges).
    """
    size, res = surface.shape[:2]
    n = normal.reshape(3, size, res, res)
    edges = np.zeros(surface.shape, dtype=bool)
    for axis in (1, 2):
        first = [slice(None)] * 3
        second = [slice(None)] * 3
        first[axis], second[axis] = slice(0, res - 1), slice(1, res)
        a, b = tuple(first), tuple(second)
        na, nb = n[(slice(None), *a)], n[(slice(None), *b)]
        cos = na[0] * nb[0] + na[1] * nb[1] + na[2] * nb[2]
        edge = (surface[a] != surface[b]) | (cos < _CREASE_COS)
        edge &= np.isfinite(np.minimum(depth[a], depth[b]))
        a_nearer = depth[a] <= depth[b]
        edges[a] |= edge & a_nearer
        edges[b] |= edge & ~a_nearer
    return edges.view(np.uint8)


def _keypoint_heatmap(scenes: _Scenes, depth: np.ndarray) -> np.ndarray:
    """Gaussian blobs (peak 1) at the visible keypoints, ``(B, H, W)`` in ``[0, 1]``.

    A keypoint is visible when it projects into the image and no surface at its pixel is
    nearer than its own depth minus a tolerance (5 cm + 3 %). ``depth`` is inf for sky.
    """
    size, res = depth.shape[:2]
    focal = _focal(res)
    points = scenes.keypoints
    z = points[..., 2]
    in_front = scenes.keypoint_valid & (z > 1e-3)
    z_safe = np.where(in_front, z, 1.0)
    col = np.floor(points[..., 0] / z_safe * focal + res / 2)
    row = np.floor(points[..., 1] / z_safe * focal + res / 2)
    inside = in_front & (col >= 0) & (col < res) & (row >= 0) & (row < res)
    b, k = np.nonzero(inside)
    r, c = row[b, k].astype(np.intp), col[b, k].astype(np.intp)
    visible = depth[b, r, c] >= z[b, k] - (0.05 + 0.03 * z[b, k])
    delta = np.zeros((size, res, res), dtype=np.float32)
    delta[b[visible], r[visible], c[visible]] = 1.0
    return np.minimum(_gaussian_blur(delta, max(0.75, res / 64.0)), 1.0)


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter of ``(B, H, W)`` with peak weight 1 and zero padding, as two matrix
    products with the (symmetric) Gaussian matrices of the rows and of the columns."""
    rows, cols = image.shape[1:]
    return _gaussian_matrix(rows, sigma) @ image @ _gaussian_matrix(cols, sigma)


@functools.lru_cache(maxsize=8)
def _gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    weights = np.exp(-(offsets**2) / (2 * sigma * sigma))
    weights[np.abs(offsets) > math.ceil(3 * sigma)] = 0.0
    return weights.astype(np.float32)
