"""Shard writing and memory-mapped reading."""

import json

import numpy as np
import pytest

from medxlate.errors import InputError
from medxlate.preprocess.dataset import FORMAT, load_dataset, read_shard, write_shard


def test_shard_round_trip_memmap(tmp_path):
    rng = np.random.default_rng(1)
    ct = rng.uniform(-1, 1, (4, 8, 8)).astype(np.float32)
    tensors = {"ct": ct, "mask": ct > 0, "keep": np.array([0, 1, 1, 0]),
               "index": np.arange(4)}
    path = tmp_path / "shards" / "a.safetensors"
    write_shard(path, tensors, {"offset": [3, -2], "subject": "a"})
    arrays, meta = read_shard(path)
    assert isinstance(arrays["ct"], np.memmap)
    assert arrays["ct"].dtype == np.float16 and arrays["mask"].dtype == np.uint8
    assert arrays["index"].dtype == np.int32
    np.testing.assert_array_equal(arrays["ct"], ct.astype(np.float16))
    np.testing.assert_array_equal(arrays["keep"], [0, 1, 1, 0])
    assert meta == {"offset": [3, -2], "subject": "a"}
    from safetensors.numpy import load_file  # the reference reader agrees
    np.testing.assert_array_equal(load_file(str(path))["ct"], arrays["ct"])


def test_load_dataset(tmp_path):
    info = {"format": FORMAT, "normalisation": {}, "subjects": [
        {"id": "a", "split": "train"}, {"id": "b", "split": "val"}]}
    (tmp_path / "dataset.json").write_text(json.dumps(info))
    write_shard(tmp_path / "shards" / "b.safetensors", {"mr": np.ones((2, 3, 3))}, {})
    ds = load_dataset(tmp_path)
    assert [s["id"] for s in ds.subjects("val")] == ["b"]
    assert len(ds.subjects()) == 2
    assert ds.shard("b")["mr"].shape == (2, 3, 3)
    with pytest.raises(InputError, match="no subject"):
        ds.shard("zz")
    with pytest.raises(InputError, match="not a medxlate dataset"):
        load_dataset(tmp_path / "nothing")
