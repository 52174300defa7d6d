"""`medxlate weights import --from syndiff` and `medxlate weights verify` through the CLI."""

import json

import torch
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.models.syndiff.family import generator_config
from medxlate.weights import load_checkpoint, write_manifest_entry
from tests.models.test_syndiff_convert import reference_state_dict

runner = CliRunner()


def _demo_reference(gen_seed=0):
    from medxlate.models.registry import get_spec

    cfg = generator_config(get_spec("syndiff").config("demo"))
    ref = reference_state_dict(cfg.nf, cfg.ch_mult, cfg.num_res_blocks, cfg.attn_resolutions,
                               cfg.image_size, nz=cfg.nz, zdim=cfg.z_emb_dim, n_mlp=cfg.n_mlp,
                               gen=torch.Generator().manual_seed(gen_seed))
    return cfg, ref


def test_import_syndiff_checkpoint_round_trip(tmp_path):
    cfg, ref = _demo_reference()
    pth = tmp_path / "gen_diffusive_1_100.pth"
    torch.save({f"module.{k}": v for k, v in ref.items()}, pth)
    out = tmp_path / "model.safetensors"
    res = runner.invoke(app, ["weights", "import", str(pth), "--from", "syndiff", "--out",
                              str(out), "--config", "demo", "--direction", "ct2mri", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["network"] == "G_ct2mr" and summary["tensors"] == len(ref)
    tensors, meta = load_checkpoint(out)
    assert meta.model == "syndiff" and meta.config["direction"] == "ct2mri"
    assert meta.config["pairing"] == "paired" and meta.normalisation["ct"]["low"] == -1024.0
    assert torch.equal(tensors["G_ct2mr.stem.weight"], ref["all_modules.2.weight"])
    # The imported model is built by the family and reproduces the source values exactly.
    from medxlate.models.registry import get_spec

    family = get_spec("syndiff").load_entry()
    nets = family.build(meta.config)
    g = nets["G_ct2mr"]
    g.load_state_dict({k.split(".", 1)[1]: v for k, v in tensors.items()}, strict=True)
    params = dict(g.named_parameters())
    assert torch.equal(params["mid.attn.proj.weight"],
                       ref[_mid_attn_key(cfg)].t())
    assert torch.equal(params["latent_mlp.net.0.weight"], ref["z_transform.1.weight"])
    # Refuses to overwrite (exit 4) unless asked.
    res = runner.invoke(app, ["weights", "import", str(pth), "--from", "syndiff", "--out",
                              str(out), "--config", "demo"])
    assert res.exit_code == 4
    res = runner.invoke(app, ["weights", "import", str(pth), "--from", "syndiff", "--out",
                              str(out), "--config", "demo", "--overwrite",
                              "--ct-window", "-1000", "2000"])
    assert res.exit_code == 0, res.output
    assert load_checkpoint(out)[1].normalisation["ct"]["high"] == 2000.0


def _mid_attn_key(cfg):
    from medxlate.models.nets.ncsnpp import layout

    index = [name for name, _, _ in layout(cfg)].index("mid.attn")
    return f"all_modules.{index}.NIN_3.W"


def test_import_errors_have_exit_codes_and_write_nothing(tmp_path):
    _, ref = _demo_reference()
    out = tmp_path / "model.safetensors"
    pth = tmp_path / "g.pth"
    torch.save(ref, pth)
    # Paper config expects other shapes/keys -> WeightsError (5), no output left behind.
    res = runner.invoke(app, ["weights", "import", str(pth), "--from", "syndiff", "--out",
                              str(out), "--config", "paper"])
    assert res.exit_code == 5 and "missing" in res.output
    assert not out.exists() and list(tmp_path.iterdir()) == [pth]
    res = runner.invoke(app, ["weights", "import", str(pth), "--from", "nowhere", "--out",
                              str(out)])
    assert res.exit_code == 2
    res = runner.invoke(app, ["weights", "import", str(tmp_path / "none.pth"), "--from",
                              "syndiff", "--out", str(out)])
    assert res.exit_code == 3
    # Not a PyTorch file at all, and a pickle holding an arbitrary object: refused (5).
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    res = runner.invoke(app, ["weights", "import", str(bad), "--from", "syndiff", "--out",
                              str(out), "--config", "demo"])
    assert res.exit_code == 5 and not out.exists()
    torch.save({"net": Opaque()}, bad)
    res = runner.invoke(app, ["weights", "import", str(bad), "--from", "syndiff", "--out",
                              str(out), "--config", "demo"])
    assert res.exit_code == 5 and "weights-only" in res.output and not out.exists()


class Opaque:
    """A class weights-only unpickling must refuse to construct."""


def test_verify_manifest(tmp_path):
    _, ref = _demo_reference()
    pth = tmp_path / "g.pth"
    torch.save(ref, pth)
    folder = tmp_path / "weights"
    folder.mkdir()
    out = folder / "syndiff-x.safetensors"
    assert runner.invoke(app, ["weights", "import", str(pth), "--from", "syndiff", "--out",
                               str(out), "--config", "demo"]).exit_code == 0
    write_manifest_entry(out, "syndiff", "demo")
    res = runner.invoke(app, ["weights", "verify", str(folder), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == [{"file": out.name, "model": "syndiff", "status": "ok"}]
    data = bytearray(out.read_bytes())
    data[-1] ^= 0xFF
    out.write_bytes(bytes(data))
    res = runner.invoke(app, ["weights", "verify", str(folder)])
    assert res.exit_code == 5 and "sha256 mismatch" in res.output


def test_imported_weights_synthesize_a_nifti_on_its_own_grid(tmp_path):
    import nibabel as nib
    import numpy as np

    _, ref = _demo_reference(gen_seed=3)
    pth = tmp_path / "gen_diffusive_1_10.pth"
    torch.save({f"module.{k}": v for k, v in ref.items()}, pth)
    model = tmp_path / "syndiff.safetensors"
    res = runner.invoke(app, ["weights", "import", str(pth), "--from", "syndiff", "--out",
                              str(model), "--config", "demo", "--spacing", "2", "2", "2"])
    assert res.exit_code == 0, res.output
    assert load_checkpoint(model)[1].data["spacing_mm"] == [2.0, 2.0, 2.0]
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :36]
    body = ((yy - 20) / 16.0) ** 2 + ((xx - 18) / 14.0) ** 2 < 1
    mr = np.where(body, 300 + 50 * rng.random((40, 36)), 0)[:, :, None].repeat(3, axis=2)
    affine = np.array([[-1.5, 0, 0, 30], [0, 1.5, 0, -20], [0, 0, 3.0, 5], [0, 0, 0, 1]])
    src = tmp_path / "mr.nii.gz"
    nib.save(nib.Nifti1Image(mr.astype(np.float32), affine), src)
    out = tmp_path / "sct.nii.gz"
    res = runner.invoke(app, ["synthesize", "--model", "syndiff", "--weights", str(model),
                              "--in", str(src), "--out", str(out), "--seed", "1", "-q"])
    assert res.exit_code == 0, res.output
    img = nib.load(out)
    assert img.shape == (40, 36, 3)
    assert np.allclose(img.affine, affine, atol=1e-4)
    hu = img.get_fdata()
    assert hu.min() >= -1024.5 and hu.max() <= 3000.5     # inside the CT window
    assert np.all(hu[:3, :3] == -1024) and np.all(hu[-3:, -3:] == -1024)   # air: masked
    assert (hu[body] != -1024).mean() > 0.5                # the model filled the body
