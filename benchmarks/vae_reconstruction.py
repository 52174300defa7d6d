"""VAE reconstruction error on a dataset's validation slices: CT MAE in HU and MR MAE in
normalised units inside the body mask, on up to 16 evenly spread 128x128 slices.

Run: ``python benchmarks/vae_reconstruction.py DATASET MODEL.safetensors`` (a vae run or a dit/med-dit checkpoint); prints one JSON
object.
"""
import json
import sys

import torch

from medxlate.models.vae.autoencoder import LatentVAE
from medxlate.models.vae.load import load_medxlate_vae
from medxlate.preprocess.dataset import load_dataset
from medxlate.train.data import SliceData, collate
from medxlate.train.validate import ct_to_hu, pick_centres


def main() -> None:
    ds = load_dataset(sys.argv[1])
    arch, state = load_medxlate_vae(sys.argv[2])      # a vae run, or a dit/med-dit file
    vae = LatentVAE(arch).eval()
    vae.load_state_dict(state)
    cfg = {"context": 0, "direction": "mri2ct", "slice_size": [128, 128],
           "augment": {}, "pairing": "paired"}
    data = SliceData(ds, "val", {**cfg, "pairing": "paired"}, augment=False)
    idx = pick_centres(len(data), 16)
    b = collate([data[(i, i, 0)] for i in idx])
    with torch.no_grad():
        rec = {k: vae.decode(vae.encode(b[k])) for k in ("mr", "ct")}
    mask = b["mask"] > 0.5
    norm = ds.info["normalisation"]["ct"]
    hu = (ct_to_hu(rec["ct"], norm) - ct_to_hu(b["ct"], norm))[mask].abs().mean()
    mr = (rec["mr"].clamp(-1, 1) - b["mr"])[mask].abs().mean()
    print(json.dumps({"val_slices": len(idx), "ct_mae_hu_in_body": round(float(hu), 1),
                      "mr_mae_norm_in_body": round(float(mr), 4),
                      "scaling_factor": round(float(vae.scaling_factor), 4)}))


if __name__ == "__main__":
    main()
