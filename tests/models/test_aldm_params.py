"""Parameter counts of the `public` config against the published ALDM code (jongdory/ALDM,
LDM/configs/latent-diffusion/brats-ldm-vq-4.yaml: openaimodel UNet, 3D, in 12, out 4,
model_channels 128, mult 1,1,2, one res block, attention at ds 2 and 4, 32 head channels,
4 classes)."""

from __future__ import annotations

from medxlate.models.aldm.nets import build_unet, count, factor, unet_inputs
from medxlate.models.registry import get_spec


def test_public_ldm_unet_has_the_published_parameter_count():
    config = get_spec("aldm").config("public")
    assert unet_inputs(config) == 12 and factor(config) == 4
    assert count(build_unet(config)) == 33_197_316


def test_paper_latent_is_48x48x36_for_its_192x192x144_input():
    config = get_spec("aldm").config("paper")
    assert [n // factor(config) for n in config["volume_size"]] == [48, 48, 36]
    assert config["embedding_dim"] == 3 and config["num_embeddings"] == 8192
