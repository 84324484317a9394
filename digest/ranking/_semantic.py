"""The optional semantic signal: how close a keyword is in meaning to a paper's best-matching sentence.

Static word embeddings from `wordllama` (the `digest[semantic]` extra: MIT, the 256-d `l2_supercat` weights and
their tokenizer ship inside the wheel). They are read from the installed package's own files and nothing is
ever downloaded; without the extra, `load_embedder()` is None and ranking stays purely lexical.

A text's vector is the mean of its tokens' vectors, each centred on the vocabulary's mean vector (so the
direction every token shares, which makes any two texts look alike, drops out), scaled to unit length. A
paper's similarity to a keyword is the best cosine over its title and each abstract sentence: one sentence on
the topic counts, a long abstract does not dilute it. It depends on the paper alone (no pool statistics), so an
index of today's pool and one of the whole window agree.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

WEIGHTS = Path("weights") / "l2_supercat_256.safetensors"
TOKENIZER = Path("tokenizers") / "l2_supercat_tokenizer_config.json"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_MIN_SENTENCE = 20
_BATCH = 256


class Embedder:
    """Token vectors and their tokenizer: texts → unit vectors (zeros for a text without tokens)."""

    def __init__(self, vectors: np.ndarray, tokenizer: Any) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        self.vectors = np.ascontiguousarray(vectors - vectors.mean(axis=0))
        self.tokenizer = tokenizer
        self.dim = int(self.vectors.shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        limit = len(self.vectors) - 1
        for start in range(0, len(texts), _BATCH):
            encoded = self.tokenizer.encode_batch(list(texts[start : start + _BATCH]), add_special_tokens=False)
            for row, enc in enumerate(encoded, start=start):
                ids = np.clip(np.asarray(enc.ids, dtype=np.int64), 0, limit)
                if len(ids):
                    out[row] = self.vectors[ids].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def package_dir() -> Path | None:
    """Where the installed `wordllama` package lives (found without importing it), or None."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def load_embedder() -> Embedder | None:
    """The wheel's own weights and tokenizer, loaded once per process; None without the `semantic` extra.

    Read straight from the package's files with `safetensors` and `tokenizers` (its dependencies): importing
    `wordllama` itself would configure the root logger, and its loader looks for the tokenizer in the wrong
    folder and would try to download it.
    """
    root = package_dir()
    if root is None or not (root / WEIGHTS).exists() or not (root / TOKENIZER).exists():
        return None
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # planner workers fork; stay single-threaded
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    vectors = load_file(str(root / WEIGHTS))["embedding.weight"]
    tokenizer = Tokenizer.from_file(str(root / TOKENIZER))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return Embedder(vectors, tokenizer)


def sentences(title: str, abstract: str) -> list[str]:
    """A paper's title, then its abstract's sentences (fragments under 20 characters dropped)."""
    rest = [s for s in _SENTENCE_END.split(abstract.strip()) if len(s) >= _MIN_SENTENCE] if abstract else []
    return [title.strip() or " ", *rest]


class SentenceIndex:
    """Every sentence of a list of papers embedded once; a text's best cosine per paper, and where it was."""

    def __init__(self, embedder: Embedder, papers: Sequence[tuple[str, str]]) -> None:
        self.embedder = embedder
        texts: list[str] = []
        starts: list[int] = []
        for title, abstract in papers:
            starts.append(len(texts))
            texts.extend(sentences(title, abstract))
        self.starts = np.array(starts, dtype=np.int64)
        self.vectors = embedder.embed(texts) if texts else np.zeros((0, embedder.dim), dtype=np.float32)

    def best(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Per paper: the best cosine of `text` to its title or a sentence, and whether the title was best."""
        if not len(self.starts):
            return np.zeros(0), np.zeros(0, dtype=bool)
        query = self.embedder.embed([text])[0]
        cosines = self.vectors @ query
        best = np.maximum.reduceat(cosines, self.starts)
        return best.astype(np.float64), cosines[self.starts] >= best
