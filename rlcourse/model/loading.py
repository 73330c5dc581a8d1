"""The course's tiny pretrained policy, and the loader that also takes any Hugging Face model.

The tiny model is a real ``transformers`` Llama (rotary positions, attention and MLP
biases switched on, so θ really is "every weight and bias") with a word-level tokenizer over
the grammar of :mod:`rlcourse.world.grammar`. Its weights ship in ``rlcourse/assets/tiny-gpt/`` in
Hugging Face format, so the same ``from_pretrained`` call loads it, ``gpt2`` or a SmolLM.

Why Llama and not GPT-2: GPT-2 adds *absolute* position embeddings, so in a left-padded
batch every token sits at a shifted position unless ``position_ids`` are passed, and
recomputed log-probs silently differ from those seen while sampling. Rotary embeddings only
see *relative* positions, so left padding changes nothing.

A second shipped model, ``assets/tiny-math/`` (:func:`load_math_policy`), has the same
architecture over the arithmetic vocabulary of :mod:`rlcourse.world.arith`, for verifiable rewards.
Both are reproduced by :mod:`rlcourse.model.pretraining`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
)

from rlcourse.model.runtime import quiet_loading
from rlcourse.utils import check
from rlcourse.world import arith, grammar

DEFAULT_MODEL_PATH = Path(__file__).parent.parent / "assets" / "tiny-gpt"
SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>"}


class ModelUnavailableError(OSError):
    """A model name could not be resolved to weights on this machine."""


# ----------------------------------------------------------------------------- tokenizer


def build_tokenizer(words: list[str] | None = None) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over ``words`` (default ``grammar.vocabulary()``): one token per word.

    Ids 0-3 are ``<pad> <bos> <eos> <unk>``; ``<bos>`` is prepended to every encoded text
    (the state always starts from it). Padding is on the left, so that in a batch every
    prompt ends where generation starts. The math model passes ``arith.vocabulary()``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    specials = list(SPECIAL_TOKENS.values())
    words = grammar.vocabulary() if words is None else list(words)
    check(len(set(words)) == len(words) and not set(words) & set(specials),
          "words must be distinct and must not repeat the special tokens <pad> <bos> <eos> <unk>.")
    vocab = {tok: i for i, tok in enumerate(specials + words)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, padding_side="left", **SPECIAL_TOKENS)
    tokenizer.model_max_length = 256
    return tokenizer


# ----------------------------------------------------------------------------- model


def build_config(vocab_size: int, tokenizer: PreTrainedTokenizerFast | None = None) -> LlamaConfig:
    """The tiny model's architecture: 2 Llama blocks, width 128, 4 heads, biases on (~0.6M θ)."""
    tokenizer = tokenizer or build_tokenizer()
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=128,  # d_model
        intermediate_size=512,  # MLP width (4 × d_model)
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        head_dim=32,
        max_position_embeddings=256,  # longest story + prompt, with room to spare
        attention_bias=True,  # q/k/v/o projections get biases ...
        mlp_bias=True,  # ... and so do the MLP projections: θ = weights and biases
        tie_word_embeddings=True,  # the output layer reuses the embedding matrix
        rms_norm_eps=1e-5,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def generation_config(tokenizer, max_new_tokens: int = 40) -> GenerationConfig:
    """Plain ancestral sampling: temperature 1, no top-k, no top-p (the policy as it is)."""
    return GenerationConfig(
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


# ----------------------------------------------------------------------------- loading


def load_tokenizer(name_or_path: str | Path | None = None):
    """Load a tokenizer with ``AutoTokenizer``; make sure it pads on the left and has a pad token."""
    source = str(name_or_path or DEFAULT_MODEL_PATH)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as err:
        raise _unavailable(source) from err
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:  # e.g. gpt2 ships without one
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_policy(name_or_path: str | Path | None = None, device: str | torch.device = "cpu", dtype=None):
    """Load a causal LM and its tokenizer: the shipped tiny model by default, or any HF name/path.

    Args:
        name_or_path: ``None`` for the course's tiny model (no download), a local folder in
            Hugging Face format, or a Hub name such as ``"gpt2"`` or
            ``"HuggingFaceTB/SmolLM2-135M"`` (needs the internet once, then the cache).
        device: where to put the model.
        dtype: e.g. ``torch.bfloat16`` for a larger model; ``None`` keeps the saved dtype.

    Returns:
        ``(model, tokenizer)``: the model in eval mode, the tokenizer padding on the left.

    Example:
        >>> model, tokenizer = load_policy()
        >>> model.config.model_type
        'llama'
    """
    source = str(name_or_path or DEFAULT_MODEL_PATH)
    tokenizer = load_tokenizer(source)
    try:
        with quiet_loading(source):
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except OSError as err:
        raise _unavailable(source) from err
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer


def _unavailable(source: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"Model '{source}' is unavailable: it is not a local folder and could not be fetched from "
        "the Hugging Face Hub (offline, or the name is wrong, or it is not in the cache); "
        "the default tiny model, load_policy(), needs no download."
    )


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """θ counted by kind: ``{"weights": ..., "biases": ..., "total": ...}`` (trainable only).

    Norm scales (``*.weight`` of RMSNorm) count as weights; tied embeddings count once.
    """
    counts = {"weights": 0, "biases": 0}
    for name, param in model.named_parameters():
        if param.requires_grad:
            counts["biases" if name.endswith("bias") else "weights"] += param.numel()
    counts["total"] = counts["weights"] + counts["biases"]
    return counts


# Which part of the network a module belongs to, tested on each component of a parameter's path
# (not on substrings of the whole name: "post_attention_layernorm" is a norm, not attention).
# Norms first, as a norm can sit inside a block named after attention.
_PARTS = (
    ("norm", lambda c: "norm" in c or c.startswith("ln_")),  # Llama *_layernorm / norm, GPT-2 ln_1, ln_2, ln_f
    ("embedding", lambda c: c.startswith("embed") or c in ("wte", "wpe", "lm_head")),
    ("attention", lambda c: c in ("self_attn", "attn", "attention")),
    ("mlp", lambda c: c in ("mlp", "feed_forward")),
)


def parameter_kind(name: str) -> tuple[str, str]:
    """Which part of the network a named parameter belongs to, and whether it is a weight or a bias.

    The part is read from the module path (``model.layers.0.self_attn.q_proj`` → attention), one
    component at a time; the last component (``weight``/``bias``) gives the kind.

    Example:
        >>> parameter_kind("model.layers.0.self_attn.q_proj.bias")
        ('attention', 'bias')
        >>> parameter_kind("model.layers.0.post_attention_layernorm.weight")
        ('norm', 'weight')
    """
    *modules, last = name.split(".")
    kind = "bias" if last == "bias" else "weight"
    for part, belongs in _PARTS:
        if any(belongs(component) for component in modules):
            return part, kind
    return "other", kind


def parameter_table(model: torch.nn.Module) -> dict[tuple[str, str], int]:
    """θ counted by (part, kind), e.g. ``{("attention", "weight"): 131072, ...}``."""
    table: dict[tuple[str, str], int] = {}
    for name, param in model.named_parameters():
        key = parameter_kind(name)
        table[key] = table.get(key, 0) + param.numel()
    return table


# ----------------------------------------------------------------------------- the math model (verifiable rewards)

MATH_MODEL_PATH = Path(__file__).parent.parent / "assets" / "tiny-math"


def build_math_tokenizer() -> PreTrainedTokenizerFast:
    """The math model's word-level tokenizer: ``<pad> <bos> <eos> <unk>`` (ids 0-3), then ``arith.vocabulary()``."""
    return build_tokenizer(arith.vocabulary())


def load_math_policy(device: str | torch.device = "cpu"):
    """The shipped tiny-math model and its tokenizer (``load_policy(MATH_MODEL_PATH)``).

    Example:
        >>> model, tokenizer = load_math_policy()
        >>> tokenizer.decode(tokenizer("4 + 3 - 2 =")["input_ids"], skip_special_tokens=True)
        '4 + 3 - 2 ='
    """
    return load_policy(MATH_MODEL_PATH, device=device)
