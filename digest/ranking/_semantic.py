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

import contextlib
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
# The weights are trained so their first dimensions carry most of the meaning (wordllama ships truncations of
# 64 to 1024); DIMS of the 256 are used: 128 scored as well as 256 under leave-one-profile-out (64 did not)
# at half the memory and time.
DIMS = 128
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_MIN_SENTENCE = 20
_BATCH = 512
_WORDS_KEPT = 100_000
_QUERIES = 128


class Embedder:
    """Token vectors and their tokenizer: texts → unit vectors (zeros for a text without tokens).

    The tokenizer splits on spaces before anything else (its normaliser turns each space into the word-start
    mark), so a text's tokens are its space-separated words' tokens: each distinct word is tokenised once
    and remembered (a pool repeats its words), its token vectors summed once, and a text's mean is the sum
    of its words' sums over their token count, pooled with numpy in batches.
    """

    def __init__(self, vectors: np.ndarray, tokenizer: Any) -> None:
        centred = np.array(vectors, dtype=np.float32, order="C")  # one copy; centred in place
        centred -= centred.mean(axis=0)
        self.vectors = centred
        self.tokenizer = tokenizer
        self.dim = int(self.vectors.shape[1])
        self._word_ids: dict[str, tuple[int, ...]] = {}
        self._buffer = np.empty((0, self.dim), dtype=np.float32)  # reused: fresh pages cost more than the copy

    def _ids(self, words: list[str]) -> None:
        """Tokenise the words not seen yet (the memory is dropped when it grows past `_WORDS_KEPT`)."""
        new = list(dict.fromkeys(w for w in words if w not in self._word_ids))
        if not new:
            return
        if len(self._word_ids) + len(new) > _WORDS_KEPT:
            self._word_ids.clear()
        limit = len(self.vectors) - 1
        for word, enc in zip(new, self.tokenizer.encode_batch(new, add_special_tokens=False), strict=True):
            self._word_ids[word] = tuple(min(max(i, 0), limit) for i in enc.ids)

    def forget(self) -> None:
        """Drop the remembered words and the gather buffer (after a pool's sentences: queries are few)."""
        self._word_ids = {}
        self._buffer = np.empty((0, self.dim), dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        split = [t.split() for t in texts]
        index: dict[str, int] = {}
        flat = [index.setdefault(w, len(index)) for words in split for w in words]
        if not flat:
            return out
        words = list(index)
        self._ids(words)
        # each distinct word's summed token vectors and token count, then each text's sum of its words'
        tokens = [self._word_ids[w] for w in words]
        token_counts = np.array([len(t) for t in tokens], dtype=np.int64)
        word_sums = np.zeros((len(words), self.dim), dtype=np.float32)
        some = np.flatnonzero(token_counts)
        if len(some):
            word_sums[some] = np.add.reduceat(
                self.vectors[np.fromiter((i for t in tokens for i in t), dtype=np.int64)],
                (np.cumsum(token_counts) - token_counts)[some],
                axis=0,
            )
        lengths = np.array([len(w) for w in split], dtype=np.int64)
        ends = np.cumsum(lengths)
        for start in range(0, len(texts), _BATCH):
            rows = np.arange(start, min(start + _BATCH, len(texts)))
            rows = rows[lengths[rows] > 0]
            if not len(rows):
                continue
            lo, hi = int(ends[rows[0]] - lengths[rows[0]]), int(ends[rows[-1]])
            ids = np.array(flat[lo:hi], dtype=np.int64)
            if len(self._buffer) < len(ids):
                self._buffer = np.empty((len(ids), self.dim), dtype=np.float32)
            gathered = np.take(word_sums, ids, axis=0, out=self._buffer[: len(ids)])
            bounds = ends[rows] - lengths[rows] - lo
            counts = np.add.reduceat(token_counts[ids], bounds)
            out[rows] = np.add.reduceat(gathered, bounds, axis=0) / np.maximum(counts, 1)[:, None]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.where(norms > 0, norms, 1.0), dtype=np.float32)


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's controller of the loaded BLAS, or None (it comes with the extra)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """Our matrix products on one BLAS thread: they are small, digest runs its own worker processes, and
    OpenBLAS's idle threads spin (on two shared cores they doubled the CPU time of ranking)."""
    controller = _blas_controller()
    return controller.limit(limits=1, user_api="blas") if controller is not None else contextlib.nullcontext()


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
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # digest parallelises with processes, not threads
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    vectors = load_file(str(root / WEIGHTS))["embedding.weight"][:, :DIMS]
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
        embedder.forget()

    def best(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Per paper: the best cosine of `text` to its title or a sentence, and whether the title was best."""
        return self.best_many([text])[0]

    def best_many(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """`best` for many texts at once: one matrix product per batch of texts instead of one pass over every
        sentence per text (the pass reads every sentence vector, so batching saves most of the time)."""
        out: list[tuple[np.ndarray, np.ndarray]] = []
        if not len(self.starts):
            return [(np.zeros(0), np.zeros(0, dtype=bool)) for _ in texts]
        for start in range(0, len(texts), _QUERIES):
            queries = self.embedder.embed(texts[start : start + _QUERIES])
            with one_blas_thread():
                cosines = self.vectors @ queries.T
            best = np.maximum.reduceat(cosines, self.starts, axis=0)
            titles = cosines[self.starts] >= best
            out.extend((best[:, j].astype(np.float64), titles[:, j]) for j in range(len(queries)))
        return out
