"""Interactive explorers for the notebooks (ipywidgets).

:class:`SamplingExplorer` shows what temperature and top-k do to a policy: sliders for both,
the next-token distribution π(· | prompt) after the transformation, and a few sampled
responses. Everything is recomputed on each change from a fixed seed, so the same slider
positions always show the same samples.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import torch

from rlcourse.model import policy
from rlcourse.world import grammar


def next_token_distribution(model, tokenizer, prompt: str, temperature: float, top_k: int) -> torch.Tensor:
    """π_T,k(· | prompt): softmax(logits / T) restricted to the k most likely tokens, ``(V,)``.

    ``temperature=0`` puts all mass on the most likely token; ``top_k=0`` keeps all tokens.
    """
    enc = tokenizer([prompt], return_tensors="pt")
    with torch.no_grad():
        logits = policy.model_logits(model, enc["input_ids"], enc["attention_mask"])[0, -1]  # (V,)
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(), logits.numel()).float()
    logits = logits / temperature
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.softmax(logits, dim=-1)


class SamplingExplorer:
    """Temperature and top-k sliders over a policy: next-token bars and sampled responses.

    Example (in a notebook):
        >>> SamplingExplorer(model, tokenizer)  # doctest: +SKIP
    """

    def __init__(self, model, tokenizer, prompts=None, num_samples: int = 4, max_new_tokens: int = 24,
                 num_bars: int = 10, seed: int = 0):
        self.model, self.tokenizer = model, tokenizer
        self.prompts = list(prompts or grammar.REVIEW_PROMPTS[:8])
        self.num_samples, self.max_new_tokens, self.num_bars, self.seed = num_samples, max_new_tokens, num_bars, seed
        self.prompt = widgets.Dropdown(options=self.prompts, value=self.prompts[0], description="prompt")
        self.temperature = widgets.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.1, description="temperature",
                                               continuous_update=False)
        self.top_k = widgets.IntSlider(value=0, min=0, max=50, step=1, description="top-k (0 = off)",
                                       continuous_update=False, style={"description_width": "initial"})
        self.bars = widgets.HTML()
        self.samples = widgets.HTML()
        for control in (self.prompt, self.temperature, self.top_k):
            control.observe(lambda _change: self.update(), names="value")
        self._widget = widgets.VBox([self.prompt, self.temperature, self.top_k, self.bars, self.samples])
        self.update()

    def update(self) -> None:
        """Recompute the distribution and the samples for the current slider values."""
        T, k, prompt = float(self.temperature.value), int(self.top_k.value), self.prompt.value
        probs = next_token_distribution(self.model, self.tokenizer, prompt, T, k)  # (V,)
        self.bars.value = self._bars_html(probs)
        gen = policy.generate(self.model, self.tokenizer, [prompt] * self.num_samples, self.max_new_tokens,
                              temperature=T, top_k=k, generator=torch.Generator().manual_seed(self.seed))
        items = "".join(f"<li><i>{html.escape(prompt)}</i> {html.escape(t)}</li>" for t in gen.texts)
        self.samples.value = f"<b>{self.num_samples} samples</b> (seed {self.seed})<ol class='samples'>{items}</ol>"

    def _bars_html(self, probs: torch.Tensor) -> str:
        top = probs.topk(self.num_bars)
        rows = []
        for p, i in zip(top.values.tolist(), top.indices.tolist()):
            token = html.escape(self.tokenizer.convert_ids_to_tokens(i))
            rows.append(
                f"<tr><td style='text-align:right;padding-right:6px'>{token}</td>"
                f"<td><div style='background:#4c72b0;height:12px;width:{300 * p:.0f}px'></div></td>"
                f"<td style='padding-left:6px'>{p:.3f}</td></tr>"
            )
        entropy = max(0.0, float(-(probs[probs > 0] * probs[probs > 0].log()).sum()))  # no "-0.00" for a one-hot π
        return (f"<b>π(next token | prompt)</b> — entropy {entropy:.2f} nats, "
                f"{int((probs > 0).sum())} tokens possible<table>{''.join(rows)}</table>")

    def widget(self) -> widgets.VBox:
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = self._widget._repr_mimebundle_(**kwargs) or {}
        return {**bundle, "text/plain": repr(self)}

    def __repr__(self) -> str:
        return (f"SamplingExplorer(prompt={self.prompt.value!r}, temperature={self.temperature.value}, "
                f"top_k={self.top_k.value}, samples={self.num_samples})")
