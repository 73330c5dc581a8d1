"""The decoding loop behind :func:`rlcourse.model.policy.generate`: sampling made for small models.

A rollout samples T tokens one at a time. For a model as small as the course's (≈ 0.6M
parameters) the arithmetic of one decoding step is about a millisecond, while a step of
``model.generate`` spends several more in per-call machinery (masks and cache objects
rebuilt, output dataclasses, stopping criteria, logits processors). This module keeps the
per-token cost close to the arithmetic:

- ``_LlamaDecoder`` runs the Llama-style architecture of the shipped models by calling its own
  weights directly: key/value tensors preallocated for the whole rollout, the rotary tables
  computed once, q/k/v and gate/up projections fused into one matrix product each, attention as
  three small products per layer. Its logits equal the Hugging Face forward's (tested to
  1e-5 at every step).
- ``_CachedDecoder`` is the general path for any other Hugging Face causal LM (GPT-2 too):
  the model's own forward with its KV cache and explicit ``position_ids`` (absolute position
  embeddings must skip the left padding).

Both feed the same :func:`choose_tokens`, so sampling is one definition: softmax(logits / τ),
restricted to the top-k scores when ``top_k > 0``, drawn (Gumbel-max) from an explicit ``torch.Generator``;
τ = 0 is greedy. A rollout stops once every sequence has ended with EOS, and the fast path
drops ended rows from the batch whenever half of those still running have ended.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F


def choose_tokens(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator | None) -> torch.Tensor:
    """The next token of each row: ``(B, V)`` logits -> ``(B,)`` ids.

    τ = 0: the argmax. Otherwise a draw from softmax(logits / τ), over only the ``top_k``
    highest scores when ``top_k > 0`` (ties with the k-th score are kept, as in ``transformers``),
    by the Gumbel-max trick: argmax_a (logits_a / τ + g_a) with g_a = −log(−log u_a), u_a uniform,
    is distributed exactly as that softmax. Like ``torch.multinomial``'s race of exponentials, it
    flips a token only when two scores are within rounding of each other, so another CPU's last
    bits (``make test-portable``) rarely change a sample. Inverse-CDF sampling (one uniform number per
    row) moves every boundary of the cumulative sum instead: with the logits perturbed by a relative
    1e-6, it changed 10 of 37,120 draws of the tiny model, Gumbel-max none.
    """
    if temperature == 0:
        return logits.argmax(-1)  # (B,)
    scores = logits / temperature if temperature != 1 else logits  # (B, V); x / 1 is x exactly: one op fewer
    if 0 < top_k < scores.shape[-1]:
        kth = scores.topk(top_k, dim=-1).values[:, -1:]  # (B, 1) the k-th highest score
        scores = scores.masked_fill(scores < kth, float("-inf"))
    u = torch.rand(scores.shape, generator=generator, device=scores.device, dtype=scores.dtype)  # (B, V)
    return (scores - u.log_().neg_().log_()).argmax(-1)  # (B,) g = −log(−log u) in place; −∞ scores never win


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding: ``cumsum(mask) − 1`` (0 on the padding), ``(B, L)``."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class _CachedDecoder:
    """Any Hugging Face causal LM: its forward, its KV cache, explicit position ids."""

    select = None  # the cache object of an arbitrary model is not cut down to the live rows

    def __init__(self, model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, max_new_tokens: int):
        self.model, self.mask = model, prompt_mask.long()  # (B, P)
        self.cache, self.next_position = None, None
        # transformers ≥ 5.24 names the cache argument ``cache``; earlier 5.x ``past_key_values``.
        self.cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def prefill(self, prompt_ids: torch.Tensor) -> torch.Tensor:
        pos = positions(self.mask)  # (B, P)
        out = self.model(input_ids=prompt_ids, attention_mask=self.mask, position_ids=pos, use_cache=True)
        self.cache, self.next_position = out[self.cache_arg], pos[:, -1:] + 1  # (B, 1)
        return out.logits[:, -1].float()  # (B, V)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)  # (B, L+1)
        out = self.model(input_ids=tokens[:, None], attention_mask=self.mask, position_ids=self.next_position,
                         use_cache=True, **{self.cache_arg: self.cache})
        self.cache, self.next_position = out[self.cache_arg], self.next_position + 1
        return out.logits[:, -1].float()  # (B, V)


def _is_plain_llama(model) -> bool:
    """True for the Llama architecture this module runs by hand (the shipped models' family)."""
    config = getattr(model, "config", None)
    if type(model).__name__ != "LlamaForCausalLM" or config is None:
        return False
    rope = getattr(config, "rope_parameters", None) or {}
    return (config.hidden_act == "silu" and getattr(config, "pretraining_tp", 1) == 1
            and rope.get("rope_type", "default") == "default"
            and config.num_key_value_heads == config.num_attention_heads
            and getattr(config, "_attn_implementation", "sdpa") in ("sdpa", "eager", None))


class _LlamaDecoder:
    """The Llama forward written out for decoding: preallocated K/V, fused projections.

    Per layer: x ← x + W_o·Attn(RoPE(W_q·n(x)), RoPE(W_k·n(x)), W_v·n(x)), then
    x ← x + W_down·(silu(W_gate·n(x)) ⊙ W_up·n(x)), with n = RMSNorm; logits = W_lm·n(x).
    """

    def __init__(self, model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, max_new_tokens: int):
        config, core = model.config, model.model
        self.heads, self.head_dim = config.num_attention_heads, config.head_dim
        self.embed = core.embed_tokens.weight
        # Each RMSNorm's weight w is folded into the matrix that reads its output: W·(w ⊙ x̂) = (W·diag w)·x̂.
        self.eps = core.norm.variance_epsilon
        self.lm_head = model.lm_head.weight * core.norm.weight  # (V, hidden)
        self.layers = []
        for layer in core.layers:
            attn, mlp = layer.self_attn, layer.mlp
            qkv, gate_up = [attn.q_proj, attn.k_proj, attn.v_proj], [mlp.gate_proj, mlp.up_proj]
            w_qkv, b_qkv = torch.cat([p.weight for p in qkv]) * layer.input_layernorm.weight, _cat_bias(qkv)
            # The attention scale 1/√d is folded into W_q and b_q (RoPE is linear, so it commutes).
            q_rows = attn.q_proj.weight.shape[0]
            w_qkv[:q_rows] *= config.head_dim ** -0.5
            if b_qkv is not None:
                b_qkv[:q_rows] *= config.head_dim ** -0.5
            self.layers.append((
                w_qkv, b_qkv, attn.o_proj.weight, attn.o_proj.bias,
                torch.cat([p.weight for p in gate_up]) * layer.post_attention_layernorm.weight, _cat_bias(gate_up),
                mlp.down_proj.weight, mlp.down_proj.bias,
            ))
        B, P = prompt_ids.shape
        L = P + max_new_tokens
        self.P, self.length = P, 0
        # Position-major, (layers, L, B, H, D), filled as tokens arrive. Only the filled positions are ever
        # read, so the buffers are left unwritten (`empty`): the memory of positions a rollout has not
        # reached yet is never touched (3,888 prompts × 93 positions would otherwise take 0.7 GB at once).
        shape = (len(self.layers), L, B, self.heads, self.head_dim)
        self.keys, self.values = self.embed.new_empty(shape), self.embed.new_empty(shape)
        # Added to the attention scores: 0 where a key may be seen, −∞ on the prompts' left padding.
        self.hide = self.embed.new_zeros(B, 1, 1, L)  # (B, 1, 1, L)
        self.hide[:, 0, 0, :P].masked_fill_(~prompt_mask.bool(), float("-inf"))
        table = torch.arange(L, device=prompt_ids.device)[None]  # (1, L): every position a rollout can reach
        cos, sin = core.rotary_emb(self.embed[:1, None], table)  # (1, L, D) each, the model's own RoPE
        # rotate_half(x)·sin = [−x₂, x₁]·[s₁, s₂] = [x₂, x₁]·[−s₁, s₂] exactly (a sign flip is exact):
        # the sign goes into the table, and one lookup per step reads both tables.
        half = self.head_dim // 2
        self.rope = torch.stack([cos[0], torch.cat([-sin[0, :, :half], sin[0, :, half:]], -1)], 1)  # (L, 2, D)
        self.pos = positions(prompt_mask)  # (B, P)

    def prefill(self, prompt_ids: torch.Tensor) -> torch.Tensor:
        P = self.P
        allowed = torch.ones(P, P, dtype=torch.bool, device=prompt_ids.device).tril()  # (P, P) causal
        # Padding keys are hidden; each position may still see itself, so a padding row stays finite.
        mask = (allowed & (self.hide[:, :, :, :P] == 0)) | torch.eye(P, dtype=torch.bool, device=prompt_ids.device)
        hide = torch.zeros(mask.shape, dtype=self.embed.dtype, device=mask.device).masked_fill_(~mask, float("-inf"))
        logits = self._forward(F.embedding(prompt_ids, self.embed), self.pos, slice(0, P), hide)  # (B, P, V)
        self.pos = self.pos[:, -1:] + 1  # (B, 1) the position of the first response token
        return logits[:, -1]  # (B, V)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        at = self.P + self.length
        logits = self._forward(F.embedding(tokens[:, None], self.embed), self.pos, slice(at, at + 1),
                               self.hide[:, :, :, : at + 1])  # (B, 1, V)
        self.pos, self.length = self.pos + 1, self.length + 1
        return logits[:, -1]  # (B, V)

    def select(self, rows: torch.Tensor) -> None:
        """Keep only these batch rows (the others have ended): later steps cost less."""
        filled = self.P + self.length  # positions written so far; the rest of the new buffers stays unwritten
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = old.new_empty(old.shape[0], old.shape[1], len(rows), *old.shape[3:])  # (layers, L, A', H, D)
            new[:, :filled] = old[:, :filled, rows]
            setattr(self, name, new)
        self.hide, self.pos = self.hide[rows], self.pos[rows]

    def _forward(self, x: torch.Tensor, pos: torch.Tensor, where: slice, hide: torch.Tensor) -> torch.Tensor:
        """Run tokens ``x`` (B, S, hidden) at positions ``pos`` (B, S) into cache slots ``where``; ``hide``
        (B, 1, S, end) is added to the attention scores (0, or −∞ for a key not to be seen)."""
        rope = self.rope[pos][:, None]  # (B, 1, S, 2, D)
        cos, sin = rope[..., 0, :], rope[..., 1, :]  # (B, 1, S, D) each, sin with rotate_half's sign
        for i, layer in enumerate(self.layers):
            # One function per block: its (B, S, ·) intermediates are freed when it returns, not kept
            # alive into the next layer (a prefill of 3,888 prompts held ~0.7 GB of them).
            x = x + self._attention(i, layer, x, cos, sin, where, hide)
            x = x + self._mlp(layer, x)
        return F.linear(_normalize(x, self.eps), self.lm_head).float()  # (B, S, V)

    def _attention(self, i: int, layer, x, cos, sin, where: slice, hide) -> torch.Tensor:
        """Layer ``i``'s attention on ``x`` (B, S, hidden), its keys and values stored in slots ``where``."""
        B, S, _ = x.shape
        w_qkv, b_qkv, w_o, b_o = layer[:4]
        qkv = F.linear(_normalize(x, self.eps), w_qkv, b_qkv)  # (B, S, 3·H·D)
        qkv = qkv.view(B, S, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, S, D)
        qk = qkv[:2] * cos + _swap_halves(qkv[:2]) * sin  # RoPE on queries and keys at once
        q, k, v = qk[0], qk[1], qkv[2]  # (B, H, S, D) each
        self.keys[i, where], self.values[i, where] = k.permute(2, 0, 1, 3), v.permute(2, 0, 1, 3)  # (S, B, H, D)
        keys, values = (c[i, : where.stop].permute(1, 2, 0, 3) for c in (self.keys, self.values))  # (B, H, end, D)
        scores = (q @ keys.transpose(-1, -2)).add_(hide)  # (B, H, S, end), q pre-scaled
        attn = scores.softmax(-1) @ values  # (B, H, S, D)
        return F.linear(attn.transpose(1, 2).reshape(B, S, -1), w_o, b_o)  # (B, S, hidden)

    def _mlp(self, layer, x: torch.Tensor) -> torch.Tensor:
        """The gated MLP on ``x`` (B, S, hidden): W_down·(silu(W_gate·n(x)) ⊙ W_up·n(x))."""
        w_gu, b_gu, w_down, b_down = layer[4:]
        gate, up = F.linear(_normalize(x, self.eps), w_gu, b_gu).chunk(2, dim=-1)  # (B, S, I) each
        hidden = F.silu(gate).mul_(up)  # (B, S, I); in place: the same products, one (B, S, I) buffer fewer
        del gate, up  # frees the (B, S, 2·I) projection before the next matrix product
        return F.linear(hidden, w_down, b_down)  # (B, S, hidden)


def _cat_bias(linears) -> torch.Tensor | None:
    biases = [p.bias for p in linears]
    return None if any(b is None for b in biases) else torch.cat(biases)


def _normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm without its weight (folded into the next matrix): x / sqrt(mean(x²) + ε), in float32."""
    h = x.float()
    return (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def _swap_halves(x: torch.Tensor) -> torch.Tensor:
    """[x₁, x₂] -> [x₂, x₁]: ``rotate_half`` without its minus sign (folded into the sin table)."""
    half = x.shape[-1] // 2
    return torch.cat((x[..., half:], x[..., :half]), dim=-1)


def decoder_for(model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, max_new_tokens: int, fast: bool = True):
    """The fast Llama decoder when the model is a plain Llama (and ``fast``), else the general one."""
    cls = _LlamaDecoder if fast and _is_plain_llama(model) else _CachedDecoder
    return cls(model, prompt_ids, prompt_mask, max_new_tokens)


@torch.no_grad()
def sample(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    top_k: int,
    generator: torch.Generator | None,
    eos_token_id: int,
    pad_token_id: int,
    fast: bool = True,
    return_logits: bool = False,
):
    """Sample up to ``max_new_tokens`` tokens after left-padded prompts.

    Returns:
        ``(response_ids (B, T), logprobs (B, T))`` with T ≤ ``max_new_tokens`` (the loop stops once
        every row has produced EOS); after a row's EOS its tokens are ``pad_token_id``;
        ``logprobs`` are log π(a_t | s_t) of the untempered policy. With ``return_logits`` also the
        ``(B, T, V)`` logits of every step (for tests).
    """
    # The loop runs in inference mode (no autograd bookkeeping on each of its ~100 operations per token);
    # its results are cloned out of it: ordinary tensors, which later code may use with autograd or in place.
    out = _sample(model, prompt_ids, prompt_mask, max_new_tokens, temperature, top_k, generator, eos_token_id,
                  pad_token_id, fast, return_logits)
    return tuple(x.clone() for x in out)


@torch.inference_mode()
def _sample(model, prompt_ids, prompt_mask, max_new_tokens, temperature, top_k, generator, eos_token_id,
            pad_token_id, fast, return_logits):
    B = prompt_ids.shape[0]
    decoder = decoder_for(model, prompt_ids, prompt_mask, max_new_tokens, fast)
    logits = decoder.prefill(prompt_ids)  # (A, V) for the A rows still running, at first all B
    rows = torch.arange(B, device=prompt_ids.device)  # (A,) which row of the batch each running row is
    done = torch.zeros(B, dtype=torch.bool, device=prompt_ids.device)  # (A,) ended with EOS
    response_ids = torch.full((B, max_new_tokens), pad_token_id, dtype=torch.long, device=prompt_ids.device)
    logprobs = torch.zeros(B, max_new_tokens, device=prompt_ids.device)  # (B, T)
    seen = torch.zeros(B, max_new_tokens, logits.shape[-1], device=prompt_ids.device) if return_logits else None
    for t in range(max_new_tokens):
        token = choose_tokens(logits, temperature, top_k, generator).masked_fill(done, pad_token_id)  # (A,)
        response_ids[rows, t] = token
        logprobs[rows, t] = torch.log_softmax(logits, dim=-1).gather(1, token[:, None]).squeeze(1)
        if return_logits:
            seen[rows, t] = logits
        done = done | (token == eos_token_id)
        ended = int(done.sum())
        if t + 1 == max_new_tokens or ended == len(done):
            break
        if decoder.select is not None and 2 * ended >= len(done):  # half have ended: drop them
            live = (~done).nonzero().squeeze(1)  # (A',)
            decoder.select(live)
            rows, token, done = rows[live], token[live], done[live]
        logits = decoder.step(token)  # (A, V)
    T = t + 1
    response_ids, logprobs = response_ids[:, :T], logprobs[:, :T]  # (B, T) each
    if return_logits:
        return response_ids, logprobs, seen[:, :T]  # (B, T, V), zeros where a row had ended
    return response_ids, logprobs
