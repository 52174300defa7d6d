"""Classifier-free guidance for the two mediffuse models (plain tensor arithmetic).

InstructPix2Pix (Brooks et al., CVPR 2023, Eq. 3) guides with two scales, one for the
image condition c_I and one for the text instruction c_T::

    e~(z_t, c_I, c_T) = e(z_t, 0, 0)
                        + s_I * (e(z_t, c_I, 0)   - e(z_t, 0, 0))
                        + s_T * (e(z_t, c_I, c_T) - e(z_t, c_I, 0))

(0 = the null condition: a zero image latent, the empty prompt). s_I = s_T = 1 gives the
fully conditioned prediction e(z_t, c_I, c_T).

The ControlNet (Zhang et al., ICCV 2023) uses ordinary classifier-free guidance (Ho &
Salimans 2022) with the control image in both branches::

    e~ = e(z_t, c_neg) + w * (e(z_t, c) - e(z_t, c_neg))

where c_neg is the negative prompt (empty by default).
"""

from __future__ import annotations


def ip2p_guidance(e_uncond, e_image, e_full, s_image: float, s_text: float):
    """Eq. 3 of Brooks et al. 2023 (see the module docstring); any array type."""
    return e_uncond + s_image * (e_image - e_uncond) + s_text * (e_full - e_image)


def cfg_guidance(e_negative, e_cond, scale: float):
    """Classifier-free guidance ``e_neg + w (e_cond - e_neg)`` (Ho & Salimans 2022)."""
    return e_negative + scale * (e_cond - e_negative)


def ip2p_dropout_masks(u, p: float):
    """(drop_text, drop_image) boolean masks from uniform draws ``u`` (Brooks et al. 2023,
    Sec. 3.2.1): 5% of examples lose the text only, 5% both, 5% the image only (p = 0.05):
    text is dropped for u < 2p, the image for p <= u < 3p."""
    return u < 2 * p, (u >= p) & (u < 3 * p)
