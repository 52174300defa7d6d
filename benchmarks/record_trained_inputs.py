"""Rewrite the training record (``data["inputs"]``, the input guard's reference) of a
checkpoint trained by `medxlate train`, from its dataset, with the source contrast named.

`train` records the inputs it trained on, but it names the MR contrast only when the run set
``source`` (e.g. ``--set source=t1``); a run that did not records ``"contrasts": []`` and the
guard then cannot say that a T2w input is not what the model saw. This script rebuilds the
record exactly as `train` does (medxlate.ood.from_dataset.dataset_record, on the checkpoint's
own config) with the contrast given, and writes it without touching a tensor byte.

    python benchmarks/record_trained_inputs.py --weights runs/x/model.safetensors \
        --data datasets/x --contrast t1

Prints the record's key figures as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="the dataset it was trained on")
    ap.add_argument("--contrast", default=None,
                    help="the source contrast tag (t1, t2, ...); default: the config's")
    args = ap.parse_args()

    from medxlate.ood.from_dataset import dataset_record
    from medxlate.ood.record import set_data_inputs
    from medxlate.preprocess.dataset import Dataset
    from medxlate.weights.format import read_meta
    from medxlate.weights.verify import file_tensor_digest

    meta = read_meta(args.weights)
    cfg = dict(meta.config)
    if args.contrast:
        cfg["source"] = args.contrast
    before = file_tensor_digest(args.weights)
    record = dataset_record(Dataset(args.data), cfg)
    set_data_inputs(args.weights, record)
    assert file_tensor_digest(args.weights) == before, "tensors changed"
    print(json.dumps({"weights": str(args.weights), "model": meta.model,
                      "contrasts": record["contrasts"], "subjects": record["subjects"],
                      "source": record["source"]}))


if __name__ == "__main__":
    main()
