"""Sparse 3-D scenes generated on the spot (no downloads): surfaces sampled, then voxelised.

Three kinds, each a function ``points(seed) -> (N, 3) float64`` in metres:

- ``"room"``: an indoor room (floor, four walls, tables, boxes, a ball, pillars) sampled
  uniformly by area from analytic surfaces, like a ScanNet/S3DIS room scan.
- ``"lidar"``: a street (ground, building facades, cars, poles, trees) seen by a simulated
  64-beam spinning LiDAR: rays cast from the sensor, first hits kept, range noise added, so the
  density falls with distance as in SemanticKITTI scans.
- ``"mesh"``: triangle meshes (a heightfield terrain and a torus) sampled by area with
  barycentric coordinates.

``scene(kind, voxel_size, seed)`` voxelises: ``floor(p / voxel_size)``, duplicates merged,
voxels in the order their first point was sampled (a scan order, not sorted). ``density``
reports the occupied fraction of the bounding box.
"""

import numpy as np

# ---------------------------------------------------------------- surface sampling


def _rect(origin, u, v):
    """Parallelogram ``origin + a u + b v``, ``a, b`` in [0, 1]."""
    origin, u, v = (np.asarray(x, dtype=np.float64) for x in (origin, u, v))
    return ("rect", (origin, u, v), float(np.linalg.norm(np.cross(u, v))))


def _box(lo, hi, *, bottom=True):
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    dx, dy, dz = np.diag(hi - lo)
    faces = [_rect(lo, dx, dy)] if bottom else []
    faces += [_rect(lo + dz, dx, dy), _rect(lo, dx, dz), _rect(lo + dy, dx, dz),
              _rect(lo, dy, dz), _rect(lo + dx, dy, dz)]
    return faces


def _sphere(center, r):
    return ("sphere", (np.asarray(center, dtype=np.float64), float(r)), 4 * np.pi * r * r)


def _cylinder(center, r, h):
    """Lateral surface of a vertical cylinder standing on ``center``."""
    return ("cylinder", (np.asarray(center, dtype=np.float64), float(r), float(h)), 2 * np.pi * r * h)


def _sample(prim, n, rng):
    kind, p, _ = prim
    if kind == "rect":
        o, u, v = p
        a, b = rng.random((2, n, 1))
        return o + a * u + b * v
    if kind == "sphere":
        c, r = p
        d = rng.normal(size=(n, 3))
        return c + r * d / np.linalg.norm(d, axis=1, keepdims=True)
    c, r, h = p
    t = rng.random(n) * 2 * np.pi
    return c + np.stack([r * np.cos(t), r * np.sin(t), rng.random(n) * h], axis=1)


def sample_surfaces(prims, n, rng) -> np.ndarray:
    """``n`` points spread over ``prims`` in proportion to their areas."""
    areas = np.array([a for *_, a in prims])
    counts = rng.multinomial(n, areas / areas.sum())
    pts = [_sample(p, int(c), rng) for p, c in zip(prims, counts, strict=True) if c]
    return rng.permutation(np.concatenate(pts))


def sample_mesh(vertices, faces, n, rng) -> np.ndarray:
    """``n`` points uniform by area on the triangle mesh ``(vertices (V, 3), faces (F, 3))``."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    f = rng.choice(len(tri), size=n, p=area / area.sum())
    a, b = rng.random((2, n))
    flip = a + b > 1
    a[flip], b[flip] = 1 - a[flip], 1 - b[flip]
    t = tri[f]
    return t[:, 0] + a[:, None] * (t[:, 1] - t[:, 0]) + b[:, None] * (t[:, 2] - t[:, 0])


def grid_mesh(xyz) -> tuple:
    """Vertices and triangles of a ``(U, V, 3)`` grid of points (two triangles per cell)."""
    U, V = xyz.shape[:2]
    idx = np.arange(U * V).reshape(U, V)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return xyz.reshape(-1, 3), faces


# ---------------------------------------------------------------- the scenes


def room_points(seed=0, n_points=300_000) -> np.ndarray:
    """An 8 m x 6 m x 3 m room with furniture, sampled from analytic surfaces."""
    rng = np.random.default_rng(seed)
    W, D, H = 8.0, 6.0, 3.0
    prims = [_rect((0, 0, 0), (W, 0, 0), (0, D, 0)),
             _rect((0, 0, 0), (W, 0, 0), (0, 0, H)), _rect((0, D, 0), (W, 0, 0), (0, 0, H)),
             _rect((0, 0, 0), (0, D, 0), (0, 0, H)), _rect((W, 0, 0), (0, D, 0), (0, 0, H))]
    for _ in range(3):                                       # tables: a top and four legs
        x, y = rng.uniform(1, W - 2), rng.uniform(1, D - 2)
        prims += _box((x, y, 0.72), (x + 1.2, y + 0.8, 0.76))
        prims += [_cylinder((x + dx, y + dy, 0), 0.03, 0.72) for dx in (0.05, 1.15) for dy in (0.05, 0.75)]
    for _ in range(5):                                       # boxes and cabinets on the floor
        x, y = rng.uniform(0.2, W - 1), rng.uniform(0.2, D - 1)
        s = rng.uniform(0.3, 0.9, 3)
        prims += _box((x, y, 0), (x + s[0], y + s[1], s[2]), bottom=False)
    prims.append(_sphere((rng.uniform(1, W - 1), rng.uniform(1, D - 1), 0.3), 0.3))
    prims += [_cylinder((x, y, 0), 0.15, H) for x, y in ((2.5, 2.0), (5.5, 4.0))]
    return sample_surfaces(prims, n_points, rng)


def _street(rng):
    """Primitives of a street scene for ray casting: ('box'|'sphere'|'cylinder', params)."""
    boxes, spheres, cyls = [], [], []
    for side in (-1, 1):                                     # building facades along the street
        x = -60.0
        while x < 60:
            w = rng.uniform(8, 20)
            y0 = side * rng.uniform(9, 12)
            y1 = y0 + side * 10
            boxes.append(((x, min(y0, y1), 0), (x + w, max(y0, y1), rng.uniform(6, 20))))
            x += w + rng.uniform(0, 4)
    for _ in range(12):                                      # parked and driving cars
        x, y = rng.uniform(-45, 45), rng.choice([-6.5, -2.0, 2.0, 6.5]) + rng.normal(0, 0.3)
        if abs(x) < 4 and abs(y) < 3:
            continue
        boxes.append(((x, y - 0.9, 0.3), (x + 4.3, y + 0.9, 1.5)))
    for x in np.arange(-50, 50, 12.5):                       # poles and trees on the sidewalks
        for y in (-8.0, 8.0):
            cyls.append(((x, y, 0.0), 0.12, 7.0))
            cyls.append(((x + 6, y, 0.0), 0.25, 3.0))
            spheres.append(((x + 6, y, 4.2), rng.uniform(1.5, 2.2)))
    return boxes, spheres, cyls


def lidar_points(seed=0, n_beams=64, n_azimuth=2048, max_range=60.0, sensor_height=1.8,
                 noise=0.02) -> np.ndarray:
    """First returns of a spinning LiDAR (elevations -25 deg .. +3 deg) in a street scene."""
    rng = np.random.default_rng(seed)
    boxes, spheres, cyls = _street(rng)
    el = np.deg2rad(np.linspace(-25, 3, n_beams))
    az = np.linspace(0, 2 * np.pi, n_azimuth, endpoint=False) + rng.uniform(0, 2 * np.pi / n_azimuth)
    el, az = np.meshgrid(el, az, indexing="ij")
    d = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1).reshape(-1, 3)
    o = np.array([0.0, 0.0, sensor_height])
    t = np.full(len(d), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        tg = -o[2] / d[:, 2]                                 # ground plane z = 0
        t = np.where((d[:, 2] < 0) & (tg > 0), np.minimum(t, tg), t)
        for lo, hi in boxes:                                 # slab test
            t1, t2 = (np.asarray(lo) - o) / d, (np.asarray(hi) - o) / d
            tn, tf = np.minimum(t1, t2).max(axis=1), np.maximum(t1, t2).min(axis=1)
            t = np.where((tn <= tf) & (tn > 0), np.minimum(t, tn), t)
        for c, r in spheres:
            oc = o - np.asarray(c)
            b = d @ oc
            disc = b * b - (oc @ oc - r * r)
            ts = -b - np.sqrt(np.maximum(disc, 0))
            t = np.where((disc >= 0) & (ts > 0), np.minimum(t, ts), t)
        for c, r, h in cyls:
            oc = o[:2] - np.asarray(c[:2])
            a = (d[:, :2] ** 2).sum(1)
            b = d[:, :2] @ oc
            disc = b * b - a * (oc @ oc - r * r)
            tc = (-b - np.sqrt(np.maximum(disc, 0))) / a
            z = o[2] + tc * d[:, 2]
            t = np.where((disc >= 0) & (tc > 0) & (z >= c[2]) & (z <= c[2] + h), np.minimum(t, tc), t)
    hit = t < max_range
    t = t[hit] + rng.normal(0, noise, hit.sum())
    return o + t[:, None] * d[hit]


def mesh_points(seed=0, n_points=300_000) -> np.ndarray:
    """A rolling heightfield terrain (40 m x 40 m) and a torus, both as triangle meshes."""
    rng = np.random.default_rng(seed)
    g = np.linspace(-20, 20, 81)
    X, Y = np.meshgrid(g, g, indexing="ij")
    k = rng.uniform(0.1, 0.4, (4, 2))
    ph = rng.uniform(0, 2 * np.pi, 4)
    Z = sum(0.8 * np.sin(k[i, 0] * X + k[i, 1] * Y + ph[i]) for i in range(4))
    tv, tf = grid_mesh(np.stack([X, Y, Z], -1))
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 65), np.linspace(0, 2 * np.pi, 33), indexing="ij")
    R, r = 4.0, 1.2
    ring = R + r * np.cos(v)
    torus = np.stack([ring * np.cos(u), ring * np.sin(u), r * np.sin(v) + 5], -1)
    ov, of = grid_mesh(torus)
    verts = np.concatenate([tv, ov])
    faces = np.concatenate([tf, of + len(tv)])
    return sample_mesh(verts, faces, n_points, rng)


SCENES = {"room": room_points, "lidar": lidar_points, "mesh": mesh_points}


def voxelize(points, voxel_size: float) -> np.ndarray:
    """Unique ``floor(points / voxel_size)`` int64 voxels, in the order of their first point."""
    if not voxel_size > 0:
        raise ValueError(f"voxel_size must be positive, got {voxel_size!r}")
    with np.errstate(over="ignore"):
        f = np.floor(np.asarray(points, dtype=np.float64) / voxel_size)
    if f.size and not np.abs(f).max() < 2.0 ** 62:
        raise ValueError(f"voxel_size {voxel_size!r} is too small: voxel coordinates overflow int64")
    v = f.astype(np.int64)
    _, first = np.unique(v, axis=0, return_index=True)
    return v[np.sort(first)]


def scene(kind: str = "room", voxel_size: float = 0.05, seed: int = 0, **kw) -> np.ndarray:
    """Voxel coordinates ``(P, 3)`` of a generated scene (see the module docstring)."""
    if kind not in SCENES:
        raise ValueError(f"scene kind must be one of {sorted(SCENES)}, got {kind!r}")
    return voxelize(SCENES[kind](seed=seed, **kw), voxel_size)


def batch(*clouds) -> np.ndarray:
    """Stack ``(P_i, 3)`` clouds into one ``(sum P_i, 4)`` array with batch index ``i`` first."""
    parts = [np.concatenate([np.full((len(c), 1), i, dtype=np.int64), np.asarray(c, dtype=np.int64)], 1)
             for i, c in enumerate(clouds)]
    return np.concatenate(parts) if parts else np.zeros((0, 4), dtype=np.int64)


def density(coords) -> float:
    """Occupied voxels / voxels of the bounding box (per batch element, summed)."""
    c = np.asarray(coords, dtype=np.int64)
    if c.shape[1] == 3:
        c = batch(c)
    total = 0
    for b in np.unique(c[:, 0]):
        s = c[c[:, 0] == b, 1:]
        total += int(np.prod(s.max(0) - s.min(0) + 1))
    return len(c) / total if total else 0.0
