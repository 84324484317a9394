"""A small built-in table of machine-learning synonyms and acronyms, applied to keywords at query time.

`SYNONYM_GROUPS` are equivalent spellings (any one finds the others). `NARROWER` maps a broad term to
well-known specific instances it should also find (one way only: "mamba" does not find every SSM paper).

The table holds general knowledge of the field only: abbreviations, spelling variants and well-known instances
that are true whoever writes the keyword, never entries grown from evaluation profiles. An abbreviation with
two common meanings in the field stays out (SSL: self-supervised and semi-supervised learning).
`benchmarks/RANKING.md` measures the table on and off.
Entries are compared after normalisation, so "LLMs", "large-language models" and "llm" are one key.
"""

from __future__ import annotations

from functools import lru_cache

from digest.ranking._text import tokens

SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("large language model", "llm"),
    ("multimodal large language model", "mllm", "multimodal llm"),
    ("vision language model", "vlm"),
    ("vision language action model", "vla"),
    ("language model", "lm"),
    ("state space model", "ssm", "state space sequence model"),
    ("mixture of experts", "moe"),
    ("reinforcement learning", "rl"),
    ("reinforcement learning from human feedback", "rlhf"),
    ("direct preference optimization", "dpo"),
    ("retrieval augmented generation", "rag"),
    ("graph neural network", "gnn"),
    ("convolutional neural network", "cnn", "convnet"),
    ("recurrent neural network", "rnn"),
    ("long short term memory", "lstm"),
    ("generative adversarial network", "gan"),
    ("variational autoencoder", "vae"),
    ("vision transformer", "vit"),
    ("neural radiance field", "nerf"),
    ("3d gaussian splatting", "3dgs", "gaussian splatting"),
    ("kv cache", "key value cache"),
    ("differential privacy", "differentially private"),
    ("federated learning", "federated training"),
    ("markov decision process", "mdp"),
    ("partially observable markov decision process", "pomdp"),
    ("chain of thought", "cot"),
    ("in context learning", "icl"),
    ("low rank adaptation", "lora"),
    ("parameter efficient fine tuning", "peft"),
    ("supervised fine tuning", "sft"),
    ("natural language processing", "nlp"),
    ("automatic speech recognition", "asr", "speech recognition"),
    ("text to speech", "tts", "speech synthesis"),
    ("optical character recognition", "ocr"),
    ("named entity recognition", "ner"),
    ("knowledge distillation", "model distillation"),
    ("neural architecture search", "nas"),
    ("stochastic gradient descent", "sgd"),
    ("physics informed neural network", "pinn"),
    ("neural ordinary differential equation", "neural ode"),
    ("speculative decoding", "speculative sampling"),
    ("diffusion model", "denoising diffusion", "score based generative model", "ddpm"),
    ("time series", "timeseries"),
    ("anomaly detection", "outlier detection"),
    ("contrastive learning", "contrastive representation learning"),
    ("graph convolutional network", "gcn"),
    ("multi layer perceptron", "mlp"),
)

NARROWER: dict[str, tuple[str, ...]] = {
    "state space model": ("s4", "s5", "mamba", "hippo"),
    "linear attention": ("linear transformer",),
    "diffusion model": ("latent diffusion",),
    "graph neural network": ("message passing neural network", "graph transformer"),
    "reinforcement learning": ("policy gradient", "q learning", "actor critic"),
}


@lru_cache(maxsize=4096)
def _key(phrase: str) -> tuple[str, ...]:
    return tuple(tokens(phrase))


@lru_cache(maxsize=1)
def _groups_by_key() -> dict[tuple[str, ...], list[tuple[str, ...]]]:
    index: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for group in SYNONYM_GROUPS:
        for entry in group:
            index.setdefault(_key(entry), []).append(group)
    return index


@lru_cache(maxsize=1)
def _narrower_by_key() -> dict[tuple[str, ...], tuple[str, ...]]:
    return {_key(broad): narrow for broad, narrow in NARROWER.items()}


@lru_cache(maxsize=65536)
def synonyms_for(label: str) -> tuple[str, ...]:
    """Other spellings of a keyword from the built-in table (same meaning), in table order."""
    key = _key(label)
    out: list[str] = []
    for group in _groups_by_key().get(key, ()):
        out.extend(g for g in group if _key(g) != key and g not in out)
    return tuple(out)


@lru_cache(maxsize=65536)
def narrower_for(label: str) -> tuple[str, ...]:
    """Specific instances a broad keyword (or any of its synonyms) should also find."""
    table = _narrower_by_key()
    keys = [_key(label), *(_key(s) for s in synonyms_for(label))]
    return tuple(dict.fromkeys(n for k in keys for n in table.get(k, ())))
