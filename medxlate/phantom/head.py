"""Analytic head: scalp, skull (two cortical tables and diploe), CSF, folded cortex, white
matter, ventricles, deep grey nuclei, eyes, sinuses and nasal cavity, face and neck.

Template frame: RAS mm with the origin at the centre of the cerebrum. Every size and
position below is multiplied by per-subject factors drawn in :func:`sample_head`; the
subject's smooth deformation and global scale are applied by the :class:`Canvas`.
"""

from __future__ import annotations

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
    tapered_capsule,
)
from medxlate.phantom.tissues import label_of

AIR, SKIN, FAT, MUSCLE = (label_of(n) for n in ("air", "skin", "fat", "muscle"))
CORTICAL, CANCELLOUS, CSF = (label_of(n) for n in ("cortical_bone", "cancellous_bone", "csf"))
GM, WM, DEEP, EYE = (label_of(n) for n in ("grey_matter", "white_matter", "deep_grey",
                                            "vitreous"))

# Centre of the MR field of view in the template, and its default extent (mm).
FOV_CENTER = (0.0, 8.0, -12.0)
FOV_MM = (192.0, 228.0, 176.0)


def sample_head(rng: np.random.Generator) -> dict:
    """Per-subject anatomical parameters (JSON-serialisable)."""
    u = rng.uniform
    return {
        "cerebrum_axes": [66 * u(0.95, 1.05), 82 * u(0.95, 1.05), 58 * u(0.95, 1.05)],
        "csf_gap": u(1.5, 3.5),
        "skull_outer": u(1.6, 2.4), "diploe": u(2.5, 4.5), "skull_inner": u(1.5, 2.1),
        "skin": u(3.0, 4.5), "scalp_fat": u(2.0, 4.5), "galea": u(1.0, 2.0),
        "cortex_thickness": u(2.4, 3.0), "sulcal_depth": u(10.0, 16.0),
        "sulcal_halfwidth": u(0.5, 1.1), "ventricle_scale": u(0.75, 1.5),
        "eye_radius": u(11.0, 12.5), "eye_offset": [u(-2, 2), u(-2, 2), u(-2, 2)],
        "sinus_scale": u(0.8, 1.2), "nose_length": u(16, 24), "neck_radius": u(48, 60),
        "face_axes": [58 * u(0.93, 1.07), 58 * u(0.93, 1.07), 45 * u(0.93, 1.07)],
        "temporalis": u(4.0, 9.0), "jaw": [u(40, 46), u(-4, 4)],
        "gyri_seed": int(rng.integers(2**31)), "texture_seed": int(rng.integers(2**31)),
    }


def _occ(canvas: Canvas, sd):
    return occupancy(sd, canvas.edge)


def paint_head(canvas: Canvas, p: dict) -> None:
    """Paint one head (parameters from :func:`sample_head`) onto ``canvas``."""
    ax = p["cerebrum_axes"]
    full = canvas.block((-100.0, -125.0, -300.0), (100.0, 125.0, 125.0))
    if full is None:
        return
    x, y, z = canvas.coords(full)
    local = canvas.local_sd

    # Intracranial space: cerebrum, cerebellum and brainstem/cord, with the CSF gap around.
    sd_ic = ellipsoid(x, y, z, (0, 0, 0), ax)
    canvas.union_into(sd_ic, full, ((-48, -82, -72), (48, -26, -24)),
                      lambda *q: ellipsoid(*q, (0, -54, -48), (48, 28, 24)), 12.0)
    sd_stem = local(full, (-30, -55, -300), (30, 5, -5), lambda *q: smooth_union(
        capsule(*q, (0, -16, -20), (0, -28, -72), 12.0),
        capsule(*q, (0, -28, -72), (0, -36, -300), 6.5), 6.0))
    canvas.union_into(sd_ic, full, ((-14, -44, -300), (14, -4, -8)),
                      lambda *q: smooth_union(capsule(*q, (0, -16, -20), (0, -28, -72), 12.0),
                                              capsule(*q, (0, -28, -72), (0, -36, -300), 6.5),
                                              6.0), 8.0)
    sd_ic -= np.float32(p["csf_gap"])

    t_in, t_out = p["skull_inner"], p["skull_outer"]
    rng = np.random.default_rng(p["texture_seed"])
    skull_var = WaveField.random(rng, 8, (60, 140), 0.8)
    t_dip_local = p["diploe"] + canvas.smooth_field(skull_var)[full]
    t_skull = t_in + t_dip_local + t_out
    # Temporalis muscles thicken the soft tissue over each temple.
    temporalis = p["temporalis"]
    bulge = canvas.smooth_field(lambda qx, qy, qz: np.float32(temporalis) * np.exp(
        -((qy - 5) / 32) ** 2 - ((qz + 5) / 26) ** 2) * np.clip((np.abs(qx) - 35) / 20, 0, 1))
    t_scalp = p["skin"] + p["scalp_fat"] + p["galea"] + bulge[full]
    del bulge

    # Body: cranium, face, nose, chin and neck blended together.
    fa = p["face_axes"]
    sd_body = sd_ic - t_skull - t_scalp
    canvas.union_into(sd_body, full, box_ellipsoid((0, 36, -62), fa),
                      lambda *q: ellipsoid(*q, (0, 36, -62), fa), 20.0)
    nose_tip = (0, 96 + p["nose_length"] * 0.45, -74)
    canvas.union_into(sd_body, full, box_capsule((0, 88, -44), nose_tip, 11.0),
                      lambda *q: tapered_capsule(*q, (0, 88, -44), nose_tip, 5.0, 11.0), 6.0)
    canvas.union_into(sd_body, full, box_ellipsoid((0, 50, -104), (42, 38, 24)),
                      lambda *q: ellipsoid(*q, (0, 50, -104), (42, 38, 24)), 15.0)
    r_neck = p["neck_radius"]
    canvas.union_into(sd_body, full, box_capsule((0, -8, -92), (0, -8, -300), r_neck),
                      lambda *q: capsule(*q, (0, -8, -92), (0, -8, -300), r_neck), 25.0)
    canvas.paint(SKIN, _occ(canvas, sd_body), full)
    canvas.paint(FAT, _occ(canvas, sd_body + np.float32(p["skin"])), full)
    canvas.paint(MUSCLE, _occ(canvas, sd_body + np.float32(p["skin"] + p["scalp_fat"])), full)
    del sd_body

    # Mandible: rami and body as one bony arch (cortex + marrow).
    jaw = p["jaw"]
    arch = [((s * jaw[0], -2, -80), (s * jaw[0], 2, -112), 6.0) for s in (1, -1)]
    arch += [((s * jaw[0], 2, -112), (0, 62 + jaw[1], -114), 7.0) for s in (1, -1)]
    box = (np.min([np.minimum(a, b) - r for a, b, r in arch], axis=0),
           np.max([np.maximum(a, b) + r for a, b, r in arch], axis=0))
    mandible = canvas.sub_block(*box, full)
    if mandible is not None:
        q = canvas.coords(mandible)
        sd_jaw = np.minimum.reduce([capsule(*q, *seg) for seg in arch])
        canvas.paint(CORTICAL, _occ(canvas, sd_jaw), mandible)
        canvas.paint(CANCELLOUS, _occ(canvas, sd_jaw + 2.0), mandible)
        del sd_jaw, q

    # Cervical vertebral bodies (bone in the neck, in front of the canal).
    vert = canvas.sub_block((-12, -26, -300), (12, 0, -83), full)
    if vert is not None:
        sd_vert = capsule(*canvas.coords(vert), (0, -12, -95), (0, -14, -300), 9.0)
        canvas.paint(CORTICAL, _occ(canvas, sd_vert), vert)
        canvas.paint(CANCELLOUS, _occ(canvas, sd_vert + 1.5), vert)

    # Skull: outer table, diploe, inner table, then the intracranial CSF.
    canvas.paint(CORTICAL, _occ(canvas, sd_ic - t_skull), full)
    canvas.paint(CANCELLOUS, _occ(canvas, sd_ic - np.float32(t_in) - t_dip_local), full)
    canvas.paint(CORTICAL, _occ(canvas, sd_ic - np.float32(t_in)), full)
    del t_skull, t_dip_local
    outside_ic = np.ones(canvas.shape, np.float32)
    outside_ic[full] -= _occ(canvas, sd_ic)
    _paint_face(canvas, p, full, outside_ic)
    del outside_ic
    canvas.paint(CSF, _occ(canvas, sd_ic), full)
    canvas.paint(WM, _occ(canvas, sd_stem), full)  # brainstem and spinal cord
    del sd_ic, sd_stem

    _paint_brain(canvas, p, ax)


def _paint_face(canvas, p, full, outside_ic) -> None:
    """Facial bones, sinuses, nasal cavity and orbits (kept outside the cranial cavity)."""
    s = p["sinus_scale"]

    def paint(label, center, axes, shape=ellipsoid, extra=None):
        reach = max(axes) if np.ndim(axes) else axes
        sl = canvas.sub_block(np.subtract(center, reach + 3), np.add(center, reach + 3), full)
        if sl is None:
            return
        q = canvas.coords(sl)
        sd = shape(*q, center, axes)
        if extra is not None:
            sd = np.maximum(sd, extra(*q))
        canvas.paint(label, np.minimum(_occ(canvas, sd), outside_ic[sl]), sl)

    # Maxilla and skull base: bone blocks with a cortical shell, hollowed by the sinuses.
    for center, axes in (((0, 60, -84), (40, 30, 22)), ((0, 22, -74), (36, 30, 12))):
        paint(CORTICAL, center, axes)
        paint(CANCELLOUS, center, [a - 2 for a in axes])
    sinuses = [((27, 60, -80), (14 * s, 16 * s, 15 * s)), ((-27, 60, -80), (14 * s, 16 * s, 15 * s)),
               ((0, 24, -75), (12 * s, 10 * s, 8 * s)), ((0, 80, -30), (11 * s, 3.5, 8 * s))]
    for center, axes in sinuses:
        paint(CORTICAL, center, [a + 1.5 for a in axes])
        paint(AIR, center, axes)
    nasal = ((0, 72, -70), (11 * s, 26, 18))
    paint(AIR, *nasal)
    paint(CORTICAL, nasal[0], [a - 2 for a in nasal[1]],
          extra=lambda x, y, z: np.abs(x) - np.float32(1.0))  # septum

    # Orbits: fat cone around each eye, then the globe.
    e = p["eye_offset"]
    for side in (1, -1):
        c = (side * 32 + e[0] * side, 72 + e[1], -52 + e[2])
        paint(FAT, (c[0], c[1] - 8, c[2]), (17, 22, 16))
        paint(EYE, c, p["eye_radius"], shape=sphere)


def _paint_brain(canvas: Canvas, p: dict, ax) -> None:
    """Cerebrum (folded cortex), cerebellum, brainstem, deep nuclei and ventricles."""
    sl = canvas.block((-ax[0] - 2, -ax[1] - 2, -80.0), (ax[0] + 2, ax[1] + 2, ax[2] + 2))
    if sl is None:
        return
    x, y, z = canvas.coords(sl)
    edge = canvas.edge
    sd_cb = ellipsoid(x, y, z, (0, 0, 0), ax)
    canvas.paint(WM, _occ(canvas, sd_cb), sl)

    # Gyri: sulci follow the zero set of a band-limited random field f; the distance to a
    # sulcus's midline is approximated by |f| / |grad f|. Cortex = a ribbon of thickness T
    # under the surface and along both banks of every sulcus down to the sulcal depth D.
    t_gm, depth, half = p["cortex_thickness"], p["sulcal_depth"], p["sulcal_halfwidth"]
    shell = (sd_cb < edge) & (sd_cb > -(depth + t_gm + 2 * edge))
    xs, ys, zs = x[shell], y[shell], z[shell]
    gyri = WaveField.random(np.random.default_rng(p["gyri_seed"]), 24, (16.0, 28.0), 1.0)
    f, grad = gyri.value_and_grad_norm(xs, ys, zs)
    h = np.abs(f) / (grad + np.float32(1e-3))
    # The interhemispheric fissure: a midline sulcus above the corpus callosum.
    fissure = (zs > 22) | (np.abs(ys) > 38)
    h_mid = np.where(fissure, np.abs(xs), np.float32(1e3))
    deep = -sd_cb[shell]
    sd_gm = np.minimum(np.minimum(deep - t_gm, np.maximum(h - half - t_gm, deep - depth - t_gm)),
                       h_mid - 1.0 - t_gm)
    sd_sulcus = np.minimum(np.maximum(h - half, deep - depth), h_mid - 1.0)
    canvas.paint(GM, occupancy(np.maximum(sd_gm, -deep), edge), sl, where=shell)
    canvas.paint(CSF, occupancy(np.maximum(sd_sulcus, -deep), edge), sl, where=shell)
    del xs, ys, zs, f, grad, h, h_mid, deep, sd_gm, sd_sulcus, shell

    # Cerebellum: cortex with fine folia around a white-matter core; brainstem.
    cb = canvas.sub_block((-52, -86, -76), (52, -22, -20), sl)
    if cb is not None:
        cx, cy, cz = canvas.coords(cb)
        sd_cbl = ellipsoid(cx, cy, cz, (0, -54, -48), (48, 28, 24))
        above = ellipsoid(cx, cy, cz, (0, 0, 0), ax)
        canvas.paint(GM, _occ(canvas, np.maximum(sd_cbl, -above - 1.0)), cb)
        folia = WaveField.random(np.random.default_rng(p["gyri_seed"] + 1), 12, (7.0, 10.0), 1.0)
        inside = sd_cbl < edge
        fv, fg = folia.value_and_grad_norm(cx[inside], cy[inside], cz[inside])
        sd_fol = np.maximum(np.abs(fv) / (fg + np.float32(1e-3)) - 0.4, -sd_cbl[inside] - 7.0)
        canvas.paint(CSF, occupancy(np.maximum(sd_fol, sd_cbl[inside]), edge), cb, where=inside)
        del fv, fg, sd_fol, inside, above
        canvas.paint(WM, _occ(canvas, ellipsoid(cx, cy, cz, (0, -48, -46), (24, 12, 10))), cb)
        canvas.paint(WM, _occ(canvas, capsule(cx, cy, cz, (0, -16, -20), (0, -28, -72), 12.0)),
                     cb)

    # Deep grey nuclei (thalamus, caudate head, lentiform nucleus) and ventricles: each in
    # its own small block.
    def paint(label, center, axes, rot=None, bend=0.0):
        r = max(axes) + 3
        b = canvas.sub_block(np.subtract(center, np.add(r, (0, 0, 10.0 * (bend > 0)))),
                             np.add(center, r), sl)
        if b is None:
            return
        bx, by, bz = canvas.coords(b)
        if bend:  # lateral ventricles curve down at both ends
            bz = bz + np.float32(bend) * (by - np.float32(center[1])) ** 2
        canvas.paint(label, _occ(canvas, ellipsoid(bx, by, bz, center, axes, rot)), b)

    for side in (1, -1):
        paint(DEEP, (side * 10, -12, -2), (9, 15, 9))
        paint(DEEP, (side * 14, 14, 10), (6, 11, 8))
        paint(DEEP, (side * 23, 4, 0), (5, 16, 11), rotation(rz_deg=side * 10))
    v = p["ventricle_scale"]
    for side in (1, -1):
        paint(CSF, (side * 11, -2, 12), (5.5 * v, 30, 6.5 * v), bend=0.007)
        paint(CSF, (side * 28, -8, -18), (2.5 * v, 14, 3.5 * v))
    paint(CSF, (0, -4, -4), (1.5 * v, 11, 8))
    paint(CSF, (0, -38, -42), (6, 4, 5))
