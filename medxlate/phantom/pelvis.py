"""Analytic pelvis: body outline with subcutaneous fat and muscle wall, visceral fat, psoas
and obturator muscles, pelvic bones (ilium, acetabulum, ischium, pubic rami, sacrum,
coccyx, L5) and femora (cortex + marrow), bladder, prostate or uterus, rectum and bowel
loops with gas.

Template frame: RAS mm with the origin midway between the femoral head centres.
"""

from __future__ import annotations

import itertools

import numpy as np

from medxlate.phantom.canvas import Canvas
from medxlate.phantom.fields import WaveField
from medxlate.phantom.shapes import (
    box_capsule,
    box_ellipsoid,
    capsule,
    ellipsoid,
    occupancy,
    rotation,
    smooth_union,
    sphere,
    superellipse_column,
)
from medxlate.phantom.tissues import label_of

AIR, SKIN, FAT, MUSCLE = (label_of(n) for n in ("air", "skin", "fat", "muscle"))
CORTICAL, CANCELLOUS = label_of("cortical_bone"), label_of("cancellous_bone")
URINE, PROSTATE, UTERUS, BOWEL = (label_of(n) for n in ("urine", "prostate", "uterus",
                                                       "bowel_content"))

FOV_CENTER = (0.0, -5.0, 15.0)
FOV_MM = (400.0, 300.0, 220.0)


def sample_pelvis(rng: np.random.Generator) -> dict:
    """Per-subject anatomical parameters (JSON-serialisable)."""
    u = rng.uniform
    female = bool(rng.random() < 0.5)
    loops = []
    for _ in range(int(rng.integers(2, 6))):
        a = [u(-45, 45), u(-10, 40), u(55, 110)]
        d = rng.normal(size=3)
        d = d / np.linalg.norm(d) * u(25, 50)
        loops.append({"a": a, "b": [a[i] + d[i] for i in range(3)], "radius": u(9, 15),
                      "gas": u(0.3, 0.8)})
    return {
        "sex": "female" if female else "male",
        "torso_axes": [u(150, 185) + (10 if female else 0), u(100, 125)],
        "body_power": u(2.2, 2.8), "fascia": u(0.8, 1.6), "skin": u(2.5, 3.5), "fat": u(8, 35), "muscle": u(8, 16),
        "hip_half_width": u(82, 92) + (5 if female else 0), "femoral_head_radius": u(21, 26),
        "cortex": u(1.5, 2.5), "bladder_fill": u(0.8, 1.3), "bladder_wall": u(2.5, 4.5),
        "prostate_scale": u(0.85, 1.4), "uterus_scale": u(0.85, 1.2),
        "rectum_radius": u(11, 18),
        "rectal_gas": [[float(u(0, 1)), float(u(0.35, 0.8))] for _ in range(int(rng.integers(1, 4)))],
        "bowel_loops": loops, "texture_seed": int(rng.integers(2**31)),
    }


def paint_pelvis(canvas: Canvas, p: dict) -> None:
    """Paint one pelvis (parameters from :func:`sample_pelvis`) onto ``canvas``."""
    a, b = p["torso_axes"]
    full = canvas.block((-2 * a, -2 * b, -500.0), (2 * a, 2 * b, 400.0))
    if full is None:
        return
    x, y, z = canvas.coords(full)
    h = p["hip_half_width"]

    # Body outline: torso column (widest at the trochanters) cut below the perineum,
    # blended with the thighs and buttocks.
    zz = np.clip((z + 30) / 140, -1, 1)
    width = np.float32(a) * (1 - np.float32(0.10) * zz * zz)
    sd = np.maximum(superellipse_column(x, y, z, (0, -5), (width, np.float32(b)),
                                        p["body_power"]), -(z + 85))
    del zz, width
    for s in (1, -1):
        ends = ((s * (h + 4), 5, -50), (s * (h + 9), 15, -450))
        canvas.union_into(sd, full, box_capsule(*ends, 0.47 * a),
                          lambda *q, e=ends: capsule(*q, *e, 0.47 * a), 40.0)
        c, axes = (s * 55, -60, -45), (70, 0.5 * b, 60)
        canvas.union_into(sd, full, box_ellipsoid(c, axes),
                          lambda *q, c=c, axes=axes: ellipsoid(*q, c, axes), 30.0)
    fat_field = WaveField.random(np.random.default_rng(p["texture_seed"]), 8, (80, 200), 0.3)
    t_fat = np.float32(p["fat"]) * (1 + canvas.smooth_field(fat_field)[full])
    canvas.paint(SKIN, _occ(canvas, sd), full)
    sd += np.float32(p["skin"])
    canvas.paint(FAT, _occ(canvas, sd), full)
    sd += t_fat
    del t_fat
    canvas.paint(MUSCLE, _occ(canvas, sd), full)
    # Fascial fat planes between the muscles: the zero set of a smooth random field, with
    # |f| / |grad f| as the distance to it (both smooth, so evaluated on a coarse grid).
    planes = WaveField.random(np.random.default_rng(p["texture_seed"] + 1), 10, (70, 140), 1.0)
    f = canvas.smooth_field(planes)[full]
    grad = canvas.smooth_field(lambda *q: planes.value_and_grad_norm(*q)[1])[full]
    canvas.paint(FAT, np.minimum(_occ(canvas, np.abs(f) / (grad + np.float32(1e-4))
                                      - np.float32(p["fascia"])), _occ(canvas, sd + 2)), full)
    del f, grad
    sd += np.float32(p["muscle"])
    # Visceral fat fills the pelvic cavity inside the muscle wall.
    cavity = ((0, 10, 45), (0.58 * a, 0.62 * b, 105))
    canvas.paint_local(FAT, full, box_ellipsoid(*cavity), lambda *q: ellipsoid(*q, *cavity),
                       clamp=_full_occ(canvas, full, sd))
    del sd
    for s in (1, -1):
        psoas = ((s * 52, 8, 60), (20, 20, 75), rotation(ry_deg=s * 12))
        canvas.paint_local(MUSCLE, full, box_ellipsoid(*psoas[:2]),
                           lambda *q, m=psoas: ellipsoid(*q, *m))
        obturator = ((s * (h - 28), 0, -20), (9, 28, 28))
        canvas.paint_local(MUSCLE, full, box_ellipsoid(*obturator),
                           lambda *q, m=obturator: ellipsoid(*q, *m))
    _paint_organs(canvas, p, full)
    _paint_bones(canvas, p, full)


def _occ(canvas, sd):
    return occupancy(sd, canvas.edge)


def _full_occ(canvas, within, sd) -> np.ndarray:
    """Occupancy of ``sd`` (given over block ``within``) as a whole-grid array (0 outside)."""
    out = np.zeros(canvas.shape, np.float32)
    out[within] = _occ(canvas, sd)
    return out


def _paint_gut(canvas, within, path, radius, bubbles) -> None:
    """A gut segment along ``path``: muscular wall, faecal content and gas risen anteriorly."""
    lo = np.min(path, axis=0) - radius
    hi = np.max(path, axis=0) + radius
    sl = canvas.sub_block(lo - 2, hi + 2, within)
    if sl is None:
        return
    x, y, z = canvas.coords(sl)
    sd = capsule(x, y, z, path[0], path[1], radius)
    for p0, p1 in itertools.pairwise(path[1:]):
        sd = np.minimum(sd, capsule(x, y, z, p0, p1, radius))
    canvas.paint(MUSCLE, _occ(canvas, sd), sl)
    lumen = sd + np.float32(2.5)
    canvas.paint(BOWEL, _occ(canvas, lumen), sl)
    for center, r in bubbles:
        canvas.paint(AIR, _occ(canvas, np.maximum(sphere(x, y, z, center, r), lumen)), sl)


def _paint_organs(canvas, p, full) -> None:
    """Bowel loops, uterus or prostate, bladder, rectum (later ones push earlier ones aside)."""
    for loop in p["bowel_loops"]:
        mid = np.add(loop["a"], loop["b"]) / 2 + [0, 0.5 * loop["radius"], 0]
        _paint_gut(canvas, full, [loop["a"], loop["b"]], loop["radius"],
                   [(mid, loop["gas"] * loop["radius"])])
    fill = p["bladder_fill"]
    if p["sex"] == "female":
        s = p["uterus_scale"]
        body = ((0, 8, 38), (26 * s, 18 * s, 38 * s), rotation(rx_deg=-55))
        cervix = ((0, -8, 10), (0, 12, -38), 12 * s)
        box = (np.minimum(box_ellipsoid(*body[:2])[0], box_capsule(*cervix)[0]),
               np.maximum(box_ellipsoid(*body[:2])[1], box_capsule(*cervix)[1]))
        canvas.paint_local(UTERUS, full, box, lambda *q: smooth_union(
            ellipsoid(*q, *body), capsule(*q, *cervix), 8.0))
        base = -38.0
    else:
        s = p["prostate_scale"]
        gland = ((0, 25, -48), (21 * s, 15 * s, 17 * s))
        canvas.paint_local(PROSTATE, full, box_ellipsoid(*gland),
                           lambda *q: ellipsoid(*q, *gland))
        base = -48.0 + 15 * s
    axes = (38 * fill, 30 * fill, 30 * fill)
    bladder = ((0, 35, base + axes[2] - 2), axes)
    canvas.paint_local(MUSCLE, full, box_ellipsoid(*bladder), lambda *q: ellipsoid(*q, *bladder))
    wall = np.float32(p["bladder_wall"])
    canvas.paint_local(URINE, full, box_ellipsoid(*bladder),
                       lambda *q: ellipsoid(*q, *bladder) + wall)
    r = p["rectum_radius"]
    path = np.array([(0, -18, -62), (0, -30, -25), (0, -46, 10), (4, -48, 45), (18, -40, 72)],
                    float)
    gas = []
    for t, size in p["rectal_gas"]:
        pos = t * (len(path) - 1)
        i = min(int(pos), len(path) - 2)
        gas.append((path[i] + (pos - i) * (path[i + 1] - path[i]) + [0, 0.5 * r, 0], size * r))
    _paint_gut(canvas, full, path, r, gas)
    canal = ((0, -18, -62), (0, -24, -100), 8.0)
    canvas.paint_local(MUSCLE, full, box_capsule(*canal), lambda *q: capsule(*q, *canal))


def _paint_bones(canvas, p, full) -> None:
    """Pelvic girdle (one smooth union, hollowed at the hip sockets), then the femora."""
    h, rf = p["hip_half_width"], p["femoral_head_radius"]
    girdle = canvas.sub_block((-h - 40, -130, -90), (h + 40, 90, 190), full)
    if girdle is None:
        return
    sd = np.full(tuple(s.stop - s.start for s in girdle), 1e4, np.float32)
    ellipsoids = [((0, -78, 52), (46, 16, 56), rotation(rx_deg=-20))]
    capsules = [((0, -95, -2), (0, -82, -28), 6.0), ((0, -52, 112), (0, -48, 160), 22.0)]
    for s in (1, -1):
        ellipsoids += [((s * (h - 5), -25, 62), (8, 58, 52),
                        rotation(ry_deg=s * 20, rz_deg=-s * 40)),
                       ((s * (h - 8), 0, 2), (22, 30, 32), None)]
        capsules += [((s * (h - 10), -12, -8), (s * (h - 30), -22, -62), 11.0),
                     ((s * (h - 16), 14, 2), (s * 10, 52, -28), 9.0),
                     ((s * 10, 48, -40), (s * (h - 35), -8, -62), 8.0)]
    for e in ellipsoids:
        canvas.union_into(sd, girdle, box_ellipsoid(*e[:2]), lambda *q, e=e: ellipsoid(*q, *e),
                          6.0)
    for c in capsules:
        canvas.union_into(sd, girdle, box_capsule(*c), lambda *q, c=c: capsule(*q, *c), 6.0)
    x, y, z = canvas.coords(girdle)
    for s in (1, -1):  # hip sockets
        sd = np.maximum(sd, -sphere(x, y, z, (s * h, 2, 0), rf + 2.5))
    sd = np.maximum(sd, -np.maximum(np.abs(x) - 2.0, sphere(x, y, z, (0, 50, -34), 18.0)))
    canvas.paint(CORTICAL, _occ(canvas, sd), girdle)
    canvas.paint(CANCELLOUS, _occ(canvas, sd + np.float32(p["cortex"])), girdle)
    del sd, x, y, z
    for s in (1, -1):
        femur = canvas.sub_block((s * h - 40, -50, -460), (s * h + 60, 50, 40), full)
        if femur is None:
            continue
        x, y, z = canvas.coords(femur)
        sd = smooth_union(sphere(x, y, z, (s * h, 2, 0), rf),
                          capsule(x, y, z, (s * h, 2, 0), (s * (h + 30), -2, -32), 0.58 * rf),
                          8.0)
        sd = smooth_union(sd, ellipsoid(x, y, z, (s * (h + 34), -8, -30), (17, 20, 24)), 8.0)
        sd = smooth_union(sd, capsule(x, y, z, (s * (h + 30), 0, -40), (s * (h + 22), 8, -450),
                                      14.0), 10.0)
        canvas.paint(CORTICAL, _occ(canvas, sd), femur)
        cortex = p["cortex"] + 3.0 * np.clip((-z - 40) / 60, 0, 1)
        canvas.paint(CANCELLOUS, _occ(canvas, sd + cortex), femur)
