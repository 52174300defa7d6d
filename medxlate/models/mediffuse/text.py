"""Prompts to CLIP text-encoder states, with the tokenizer carried inside the checkpoint.

A medxlate checkpoint must rebuild the model alone, so the tokenizer's two files (the BPE
vocabulary ``vocab.json`` and ``merges.txt``) travel as uint8 buffers of a small module,
:class:`TokenizerFiles`, saved beside the networks. Trained from scratch, the tokenizer is
:func:`byte_vocab`: CLIP's byte-level alphabet (each of the 256 byte symbols, alone and
word-final) with no merges, i.e. a character-level CLIP tokenizer of 514 entries; with
``pretrained=SD_FOLDER`` it is the folder's own ``tokenizer/`` (49 408 entries for SD 1.5).
"""

from __future__ import annotations

import json

import torch
from torch import nn

START, END = "<|startoftext|>", "<|endoftext|>"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table (Radford et al. 2019):
    printable Latin-1 bytes map to themselves, the other 68 to chr(256 + n)."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
            + list(range(ord("®"), ord("ÿ") + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def byte_vocab() -> tuple[dict[str, int], list[str]]:
    """(vocab, merges) of the character-level CLIP tokenizer used without pretrained weights.

    The layout is CLIP's (symbols, then word-final symbols, then merges, then the two
    special tokens), with zero merges: ids 0-255 symbols, 256-511 ``symbol</w>``, 512
    ``<|startoftext|>``, 513 ``<|endoftext|>``.
    """
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + [START, END]
    return {t: i for i, t in enumerate(tokens)}, []


class TokenizerFiles(nn.Module):
    """The tokenizer's vocabulary and merges as uint8 buffers (UTF-8 JSON and text).

    Buffers of any length load into it (``load_state_dict`` resizes them), so the module
    built from a config accepts whichever tokenizer a checkpoint carries.
    """

    def __init__(self, vocab: dict[str, int] | None = None, merges: list[str] | None = None):
        super().__init__()
        if vocab is None:
            vocab, merges = byte_vocab()
        self.register_buffer("vocab", _encode(json.dumps(vocab, ensure_ascii=False)))
        self.register_buffer("merges", _encode("\n".join(merges or [])))
        self._cache = None

    def set_files(self, vocab: dict[str, int], merges: list[str]) -> None:
        self.vocab = _encode(json.dumps(vocab, ensure_ascii=False))
        self.merges = _encode("\n".join(merges))
        self._cache = None

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        for name in ("vocab", "merges"):
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key], dtype=torch.uint8))
        self._cache = None
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def files(self) -> tuple[dict[str, int], list[str]]:
        vocab = json.loads(_decode(self.vocab))
        text = _decode(self.merges)
        return vocab, [line for line in text.split("\n") if line]

    def tokenizer(self, max_length: int):
        """A transformers ``CLIPTokenizer`` over these files (cached)."""
        from medxlate.models.mediffuse.libs import sd

        if self._cache is None or self._cache[0] != max_length:
            vocab, merges = self.files()
            tok = sd().CLIPTokenizer(vocab=vocab, merges=merges, unk_token=END,
                                     bos_token=START, eos_token=END, pad_token=END,
                                     model_max_length=max_length)
            self._cache = (max_length, tok)
        return self._cache[1]


def _encode(text: str) -> torch.Tensor:
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8)


def _decode(buf: torch.Tensor) -> str:
    return bytes(buf.cpu().tolist()).decode("utf-8")


def token_ids(files: TokenizerFiles, prompts: list[str], max_length: int) -> torch.Tensor:
    """(B, max_length) ids, padded/truncated to ``max_length`` as Stable Diffusion does."""
    tok = files.tokenizer(max_length)
    out = tok(prompts, padding="max_length", max_length=max_length, truncation=True,
              return_tensors="pt")
    return out["input_ids"]


def encode_prompts(text_encoder: nn.Module, files: TokenizerFiles, prompts: list[str],
                   max_length: int, device) -> torch.Tensor:
    """CLIP last hidden states (B, max_length, hidden) of ``prompts`` (SD's conditioning)."""
    ids = token_ids(files, prompts, max_length).to(device)
    with torch.no_grad():
        return text_encoder(ids)[0]
