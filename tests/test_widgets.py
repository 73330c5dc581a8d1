"""The sampling explorer with real ipywidgets: moving a slider changes what the student sees."""

import math

import torch

from rlcourse.classroom import widgets
from rlcourse.model import policy


def test_distribution_matches_temperature_and_top_k_by_hand(tiny):
    model, tokenizer = tiny
    prompt = "the movie was"
    enc = tokenizer([prompt], return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits[0, -1].float()
    # temperature 1, no top-k: plain softmax
    torch.testing.assert_close(widgets.next_token_distribution(model, tokenizer, prompt, 1.0, 0), torch.softmax(logits, -1))
    # top-3 at temperature 0.5: renormalised exp(2 * logit) over the three best tokens, by a loop
    probs = widgets.next_token_distribution(model, tokenizer, prompt, 0.5, 3)
    best = sorted(range(len(logits)), key=lambda i: -float(logits[i]))[:3]
    z = sum(math.exp(2 * float(logits[i])) for i in best)
    for i in range(len(logits)):
        expected = math.exp(2 * float(logits[i])) / z if i in best else 0.0
        assert abs(float(probs[i]) - expected) < 1e-5
    # temperature 0: all mass on the argmax
    greedy = widgets.next_token_distribution(model, tokenizer, prompt, 0.0, 0)
    assert float(greedy[logits.argmax()]) == 1.0 and float(greedy.sum()) == 1.0


def test_moving_sliders_changes_samples_and_bars(tiny):
    model, tokenizer = tiny
    explorer = widgets.SamplingExplorer(model, tokenizer, num_samples=4, max_new_tokens=12)
    first_samples, first_bars = explorer.samples.value, explorer.bars.value
    explorer.temperature.value = 1.8
    assert explorer.samples.value != first_samples and explorer.bars.value != first_bars
    explorer.top_k.value = 1
    assert "1 tokens possible" in explorer.bars.value
    explorer.temperature.value = 1.0
    explorer.top_k.value = 0
    assert explorer.samples.value == first_samples, "same sliders and seed must show the same samples"


def test_top_1_samples_are_the_greedy_response(tiny):
    model, tokenizer = tiny
    explorer = widgets.SamplingExplorer(model, tokenizer, num_samples=3, max_new_tokens=10)
    explorer.top_k.value = 1
    greedy = policy.generate(model, tokenizer, [explorer.prompt.value], max_new_tokens=10, temperature=0).texts[0]
    assert explorer.samples.value.count(greedy) == 3


def test_text_repr_is_stable(tiny):
    model, tokenizer = tiny
    a = widgets.SamplingExplorer(model, tokenizer, num_samples=2, max_new_tokens=4)
    b = widgets.SamplingExplorer(model, tokenizer, num_samples=2, max_new_tokens=4)
    assert repr(a) == repr(b) and "0x" not in repr(a)
    assert a._repr_mimebundle_()["text/plain"] == repr(a)
