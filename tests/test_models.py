"""The shipped tiny model: format, size, quality, loading, and that pretrain() reproduces it."""

import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from rlcourse import data, models, policy


def test_asset_is_hugging_face_format_and_small():
    names = {p.name for p in models.DEFAULT_MODEL_PATH.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "README.md"} <= names
    size = sum(p.stat().st_size for p in models.DEFAULT_MODEL_PATH.iterdir())
    assert size < 10 * 2**20, f"asset is {size / 2**20:.1f} MB; keep it under 10 MB"


def test_default_policy_is_a_biased_llama_of_the_right_size(tiny):
    model, tokenizer = tiny
    assert model.config.model_type == "llama"
    assert model.config.attention_bias and model.config.mlp_bias
    counts = models.count_parameters(model)
    assert 0.5e6 <= counts["total"] <= 3e6
    assert counts["biases"] > 0 and counts["weights"] + counts["biases"] == counts["total"]
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert tokenizer.padding_side == "left"
    assert len({tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id}) == 3
    assert len(tokenizer) == model.config.vocab_size == len(data.vocabulary()) + 4


def test_tokenizer_round_trips_every_word():
    tokenizer = models.load_tokenizer()
    text = " ".join(data.vocabulary())
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and tokenizer.unk_token_id not in ids
    assert len(ids) == len(data.vocabulary()) + 1  # one token per word, plus <bos>
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_model_card_states_corpus_size_steps_loss_and_command():
    card = (models.DEFAULT_MODEL_PATH / "README.md").read_text()
    stats = json.loads((models.DEFAULT_MODEL_PATH / "training_stats.json").read_text())
    for needle in ["Corpus", f"{stats['parameters']['total']:,}", f"{stats['num_steps']} steps",
                   f"{stats['val_loss']:.4f}", "rlcourse pretrain"]:
        assert needle in card


def test_loads_with_plain_from_pretrained(tiny):
    model, tokenizer = tiny
    plain = AutoModelForCausalLM.from_pretrained(models.DEFAULT_MODEL_PATH)
    ids = tokenizer(["the movie was"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(plain(**ids).logits, model(**ids).logits)


def test_sampled_reviews_are_grammatical(tiny):
    """At temperature 1, at least 90% of 200 sampled reviews are grammatical."""
    model, tokenizer = tiny
    prompts = data.review_prompts(200, seed=0)
    gen = policy.generate(model, tokenizer, prompts, max_new_tokens=48, generator=torch.Generator().manual_seed(0))
    ok = [data.is_grammatical(t) for t in gen.full_texts()]
    rate = sum(ok) / len(ok)
    assert rate >= 0.90, f"only {rate:.0%} grammatical; e.g. {[t for t, g in zip(gen.full_texts(), ok) if not g][:3]}"
    assert len(set(gen.texts)) > 150, "the policy should keep real uncertainty, not repeat itself"


def test_any_local_hugging_face_model_goes_through_the_same_loader(tmp_path):
    """A GPT-2 architecture (pad == eos, absolute positions) loads and samples like the tiny model."""
    tokenizer = models.load_tokenizer()
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, tok = models.load_policy(tmp_path)
    assert model.config.model_type == "gpt2"
    gen = policy.generate(model, tok, ["the movie was", "this film"], max_new_tokens=5)
    assert gen.response_ids.shape[0] == 2


def test_unavailable_model_offline_says_so_in_one_sentence():
    code = (
        "from rlcourse.models import load_policy, ModelUnavailableError\n"
        "try:\n    load_policy('no-such-org/no-such-model')\n"
        "except ModelUnavailableError as e:\n    print(e)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    message = out.stdout.strip()
    assert "no-such-org/no-such-model" in message and "unavailable" in message
    assert "needs no download" in message and message.count(". ") == 0


@pytest.mark.slow
def test_pretrain_reproduces_the_shipped_model(tmp_path):
    shipped = json.loads((models.DEFAULT_MODEL_PATH / "training_stats.json").read_text())
    result = models.pretrain(out_dir=tmp_path, num_steps=shipped["num_steps"], seed=shipped["seed"], lr=shipped["lr"],
                             story_fraction=shipped["story_fraction"], batch_size=shipped["batch_size"], progress=False)
    assert abs(result["val_loss"] - shipped["val_loss"]) <= 0.05 * shipped["val_loss"]
    reloaded, _ = models.load_policy(tmp_path)
    assert models.count_parameters(reloaded) == shipped["parameters"]
