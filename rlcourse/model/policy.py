"""The language model as a policy π_θ(a | s): log-probs, entropy, sampling.

State s_t = prompt + the response so far; action a_t = the next token; a trajectory is the
whole response. Everything RL needs from the model is here:

- ``token_logprobs``: log π_θ(a_t | s_t) for given tokens, from logits;
- ``sequence_logprob``: log π_θ(response | prompt) = Σ_t log π_θ(a_t | s_t);
- ``entropy``: how uncertain the policy is at each step;
- ``generate``: sample responses (KV cache, seeded by an explicit ``torch.Generator``;
  the decoding loop lives in :mod:`rlcourse.model.sampling`).

Glossary: B sequences, P prompt tokens (left-padded), T response tokens (right-padded), V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rlcourse.model import sampling
from rlcourse.utils import check as _check


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log π(a_t | s_t): the log-softmax of the logits, read at the chosen tokens.

    Args:
        logits: ``(B, T, V)`` float, the model's scores *before* token t is seen.
        labels: ``(B, T)`` integer token ids a_t.

    Returns:
        ``(B, T)`` log-probabilities (≤ 0).

    Example:
        >>> logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25]]]))
        >>> token_logprobs(logits, torch.tensor([[1]])).exp()
        tensor([[0.2500]])
    """
    _check_labels(logits, labels)
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    return logp.gather(-1, labels.long().unsqueeze(-1)).squeeze(-1)  # (B, T)


def _check_labels(logits: torch.Tensor, labels: torch.Tensor) -> None:
    _check(logits.dim() == 3, f"logits must have shape (B, T, V), got {tuple(logits.shape)}.")
    _check(logits.is_floating_point(), f"logits must be a float tensor, got {logits.dtype}.")
    _check(
        labels.shape == logits.shape[:2],
        f"labels must have shape (B, T) = {tuple(logits.shape[:2])} to match the logits, got {tuple(labels.shape)}.",
    )
    _check(not labels.is_floating_point(), f"labels must be integer token ids, got {labels.dtype}: use .long().")
    V = logits.shape[-1]
    outside = labels[(labels < 0) | (labels >= V)]
    _check(outside.numel() == 0, f"labels hold token id {int(outside[0]) if outside.numel() else 0}, outside the "
           f"vocabulary of the logits (ids 0 to {V - 1}): use the tokenizer that belongs to this model.")


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(π(· | s_t)) = −Σ_a π(a|s_t) log π(a|s_t) per position: ``(B, T, V) -> (B, T)``."""
    _check(logits.dim() == 3, f"logits must have shape (B, T, V), got {tuple(logits.shape)}.")
    return _entropy(F.log_softmax(logits.float(), dim=-1))  # (B, T)


def _entropy(logp: torch.Tensor) -> torch.Tensor:
    return -(logp.exp() * logp).sum(-1)  # (B, T) from log π (B, T, V)


def token_logprobs_and_entropy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`token_logprobs` and :func:`token_entropy` from one log-softmax: ``(B, T)`` each.

    The same numbers as the two calls (the same log-softmax, computed once); the entropy is a
    statistic to watch and carries no gradient.
    """
    _check_labels(logits, labels)
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    with torch.no_grad():
        entropies = _entropy(logp.detach())  # (B, T)
    return logp.gather(-1, labels.long().unsqueeze(-1)).squeeze(-1), entropies  # (B, T) each


def entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the policy over the positions where ``mask`` is 1.

    Args:
        logits: ``(B, T, V)``; mask: ``(B, T)``, 1 on response tokens.

    Returns:
        a scalar: Σ H_t m_t / Σ m_t. Uniform over V tokens gives log V.
    """
    _check(mask.shape == logits.shape[:2], f"mask must have shape {tuple(logits.shape[:2])}, got {tuple(mask.shape)}.")
    mask = mask.float()
    return (token_entropy(logits) * mask).sum() / mask.sum().clamp(min=1.0)


def model_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """One forward pass: ``(B, L)`` ids and mask -> ``(B, L, V)`` logits (float32)."""
    _check(input_ids.dim() == 2, f"input_ids must have shape (B, L), got {tuple(input_ids.shape)}.")
    _check(
        attention_mask.shape == input_ids.shape,
        f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(attention_mask.shape)}.",
    )
    return forward(model, input_ids, attention_mask).logits.float()


def forward(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs):
    """The model's forward on left-padded rows, with ``position_ids`` that skip the padding.

    Rotary (Llama-style) models do not need them; absolute position embeddings (GPT-2) do,
    or every left-padded row is scored at shifted positions. ``kwargs`` go to the model.
    """
    return model(input_ids=input_ids, attention_mask=attention_mask, position_ids=sampling.positions(attention_mask),
                 use_cache=False, **kwargs)


def sequence_logprob(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor
) -> torch.Tensor:
    """log π_θ(response | prompt) = Σ_t m_t log π_θ(x_t | x_<t), summed over response tokens only.

    Args:
        input_ids: ``(B, L)`` prompt and response ids, as one sequence.
        attention_mask: ``(B, L)`` 1 on real tokens, 0 on padding.
        response_mask: ``(B, L)`` 1 on the response tokens whose log-probs are summed.

    Returns:
        ``(B,)`` sequence log-probabilities (differentiable with respect to θ).
    """
    _check(
        response_mask.shape == input_ids.shape,
        f"response_mask must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(response_mask.shape)}.",
    )
    logits = model_logits(model, input_ids, attention_mask)  # (B, L, V)
    logprobs = token_logprobs(logits[:, :-1], input_ids[:, 1:])  # (B, L-1): token t+1 given x_≤t
    return (logprobs * response_mask[:, 1:].to(logprobs.dtype)).sum(-1)  # (B,)


def response_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_length: int) -> torch.Tensor:
    """Logits that score the last ``response_length`` tokens: ``(B, P+T) -> (B, T, V)``."""
    logits = model_logits(model, input_ids, attention_mask)  # (B, P+T, V)
    return logits[:, -response_length - 1 : -1]  # (B, T, V): the logits at t-1 predict token t


def response_mask_from_ids(response_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """1 on every response token up to and including the first EOS, 0 after it.

    Never mask by ``!= pad``: a young model can sample the pad token mid-response, and when
    pad == eos (gpt2) the EOS itself would be lost.

    Example:
        >>> response_mask_from_ids(torch.tensor([[5, 2, 7, 2], [5, 6, 7, 8]]), eos_token_id=2)
        tensor([[1, 1, 0, 0],
                [1, 1, 1, 1]])
    """
    is_eos = (response_ids == eos_token_id).long()  # (B, T)
    eos_before = torch.cumsum(is_eos, dim=1) - is_eos  # (B, T): EOS strictly before t
    return (eos_before == 0).long()  # (B, T)


@dataclass
class Generation:
    """A batch of sampled responses.

    Attributes:
        prompt_ids: ``(B, P)`` left-padded prompts.
        prompt_mask: ``(B, P)`` 1 on prompt tokens, 0 on padding.
        response_ids: ``(B, T)`` sampled tokens; after the first EOS they are padding.
        response_mask: ``(B, T)`` 1 up to and including the first EOS.
        logprobs: ``(B, T)`` log π_θ(a_t|s_t) under the *untempered* policy, from the sampling pass.
        prompts: the prompt strings; texts: the decoded responses (without EOS).
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    response_ids: torch.Tensor
    response_mask: torch.Tensor
    logprobs: torch.Tensor
    prompts: list[str]
    texts: list[str]
    eos_token_id: int

    @property
    def input_ids(self) -> torch.Tensor:
        """``(B, P+T)`` prompt then response, ready for a forward pass."""
        return torch.cat([self.prompt_ids, self.response_ids], dim=1)

    @property
    def attention_mask(self) -> torch.Tensor:
        """``(B, P+T)`` 1 on prompt and response tokens (through the first EOS)."""
        return torch.cat([self.prompt_mask, self.response_mask], dim=1)

    @property
    def finished(self) -> torch.Tensor:
        """``(B,)`` True where the response ended with EOS (False: cut at max_new_tokens)."""
        return ((self.response_ids == self.eos_token_id) & self.response_mask.bool()).any(1)

    def full_texts(self) -> list[str]:
        """Prompt and response joined: what a reward function reads."""
        return [f"{p} {r}".strip() for p, r in zip(self.prompts, self.texts)]


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    top_k: int = 0,
    generator: torch.Generator | None = None,
    fast: bool = True,
) -> Generation:
    """Sample one response per prompt (KV cache; :mod:`rlcourse.model.sampling`'s decoding loop).

    Sampling draws from softmax(logits / temperature), restricted to the ``top_k`` most
    likely tokens when ``top_k > 0`` (``top_k=0``: no filter); ``temperature=0`` is greedy.
    The same ``generator`` state gives the same samples: its next draw seeds the generator
    the loop samples from, so torch's global RNG is never touched. The shipped Llama-style
    models run a decoder written for small models (``fast=False``: the model's own forward
    with its KV cache, the path every other Hugging Face causal LM takes).

    Args:
        prompts: B strings (repeat a prompt G times for a group).
        max_new_tokens: T, the most response tokens (fewer when every response ended sooner).

    Returns:
        a :class:`Generation` (response mask ending at the first EOS, never at ``!= pad``).
    """
    _check(
        isinstance(prompts, (list, tuple)) and len(prompts) > 0 and all(isinstance(p, str) for p in prompts),
        f"prompts must be a non-empty list of strings, got {type(prompts).__name__}: wrap a single prompt as [prompt].",
    )
    _check(temperature >= 0, f"temperature must be ≥ 0 (0 means greedy), got {temperature}.")
    _check(top_k >= 0, f"top_k must be ≥ 0 (0 means no top-k filter), got {top_k}.")
    _check(isinstance(max_new_tokens, int) and max_new_tokens >= 1,
           f"max_new_tokens must be an int ≥ 1, got {max_new_tokens!r}.")
    device = next(model.parameters()).device
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True).to(device)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    draws = torch.Generator(device=device).manual_seed(seed)
    response_ids, logprobs = sampling.sample(
        model, enc["input_ids"], enc["attention_mask"], max_new_tokens, temperature, top_k, draws,
        tokenizer.eos_token_id, tokenizer.pad_token_id, fast=fast)  # (B, T) each
    response_mask = response_mask_from_ids(response_ids, tokenizer.eos_token_id)  # (B, T)
    response_ids = response_ids.masked_fill(response_mask == 0, tokenizer.pad_token_id)
    logprobs = logprobs * response_mask  # (B, T)
    texts = decode_responses(tokenizer, response_ids, response_mask)
    return Generation(enc["input_ids"], enc["attention_mask"], response_ids, response_mask, logprobs, list(prompts), texts,
                      tokenizer.eos_token_id)


def decode_responses(tokenizer, response_ids: torch.Tensor, response_mask: torch.Tensor) -> list[str]:
    """Response tokens before the first EOS, decoded to text (special tokens dropped)."""
    texts = []
    for ids, m in zip(response_ids.tolist(), response_mask.tolist()):
        kept = [i for i, keep in zip(ids, m) if keep and i != tokenizer.eos_token_id]
        texts.append(tokenizer.decode(kept, skip_special_tokens=True).strip())
    return texts


def encode_prompt_responses(tokenizer, prompts: list[str], responses: list[str], ended: list[bool] | None = None,
                            max_length: int | None = None) -> dict[str, torch.Tensor]:
    """Left-padded ``<bos> prompt response <eos>`` ids, with a mask on the response tokens (EOS included).

    The scoring layout of a sampled response, for texts someone else wrote (DPO's pairs, SFT's
    demonstrations). A response with ``ended[i] = False`` (cut off at the length budget) gets no
    EOS: learning from it must not teach the policy to stop mid-sentence.

    Args:
        prompts, responses: B strings each; a response without its prompt.
        ended: B flags (default: every response ended).
        max_length: the model's context (``config.max_position_embeddings``); a longer row is an error.

    Returns:
        ``{"input_ids", "attention_mask", "response_mask"}``, each ``(B, L)``.

    Example:
        >>> from rlcourse.model.loading import load_tokenizer
        >>> enc = encode_prompt_responses(load_tokenizer(), ["the film was"], ["good ."])
        >>> enc["response_mask"].tolist()  # <bos> the film was | good . <eos>
        [[0, 0, 0, 0, 1, 1, 1]]
    """
    _check(len(prompts) == len(responses) > 0, f"prompts and responses must pair up and not be empty, got "
                                                f"{len(prompts)} prompts and {len(responses)} responses.")
    ended = [True] * len(prompts) if ended is None else list(ended)
    rows, masks = [], []
    for i, (prompt, response, end) in enumerate(zip(prompts, responses, ended)):
        prompt_ids = tokenizer(prompt).input_ids  # <bos> + prompt
        response_ids = tokenizer(response, add_special_tokens=False).input_ids + ([tokenizer.eos_token_id] if end else [])
        _check(max_length is None or len(prompt_ids) + len(response_ids) <= max_length,
               f"row {i} is {len(prompt_ids) + len(response_ids)} tokens, longer than the model's context of {max_length}; "
               "shorten that prompt or response, or drop it.")
        rows.append(prompt_ids + response_ids)
        masks.append([0] * len(prompt_ids) + [1] * len(response_ids))
    L = max(len(r) for r in rows)
    pad = lambda xs, value: [value] * (L - len(xs)) + xs  # noqa: E731  left padding
    return {"input_ids": torch.tensor([pad(r, tokenizer.pad_token_id) for r in rows]),  # (B, L)
            "attention_mask": torch.tensor([pad([1] * len(r), 0) for r in rows]),  # (B, L)
            "response_mask": torch.tensor([pad(m, 0) for m in masks])}  # (B, L)
