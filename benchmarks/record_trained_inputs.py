"""Rewrite the training record (``data["inputs"]``, the input guard's reference) of a
checkpoint trained by `medxlate train`, from its dataset, with the source contrast named.

`train` records the inputs it trained on, but it names the MR contrast only when the run set
``source`` (e.g. ``--set source=t1``); a run that did not records ``"contrasts": []`` and the
guard then cannot say that a T2w input is not what the model saw. This script rebuilds the
record exactly as `train` does (medxlate.ood.from_dataset.dataset_record, on the checkpoint's
own config) with the contrast given, and writes it without touching a tensor byte.

    python benchmarks/record_trained_inputs.py --weights runs/x/model.safetensors \
        --data datasets/x --contrast t1 [--after PHASE1.safetensors --after PHASE2.safetensors]

``--after`` (in training order) also records the checkpoints this one was fine-tuned from
(``init_weights``) and the total budget, as `train` records them since it does
(medxlate.train.lineage), for weights trained before it did.

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
    ap.add_argument("--after", type=Path, action="append", default=[],
                    help="a checkpoint this one was fine-tuned from (repeat, oldest first)")
    ap.add_argument("--contrast", default=None,
                    help="the source contrast tag (t1, t2, ...); default: the config's")
    args = ap.parse_args()

    from medxlate.ood.from_dataset import dataset_record
    from medxlate.ood.record import set_data_inputs, update_metadata_json
    from medxlate.train.lineage import lineage_of, totals
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
    if args.after:
        lineage = []
        for phase in args.after:       # each phase's own lineage is the phases before it
            own = lineage_of(phase)[-1]
            lineage.append(own)
        extra = meta.extra or {}
        update_metadata_json(args.weights, "extra", lambda old: {
            **old, "lineage": lineage,
            **totals(lineage, int(extra.get("steps") or 0), float(extra.get("seconds") or 0))})
    assert file_tensor_digest(args.weights) == before, "tensors changed"
    print(json.dumps({"weights": str(args.weights), "model": meta.model,
                      "contrasts": record["contrasts"], "subjects": record["subjects"],
                      "source": record["source"],
                      "total_steps": read_meta(args.weights).extra.get("total_steps")}))


if __name__ == "__main__":
    main()
