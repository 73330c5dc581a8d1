"""The policy π_θ: the shipped tiny models (or any Hugging Face causal LM), their log-probs, the sampler.

- :mod:`~rlcourse.model.loading`: ``load_policy`` / ``load_tokenizer``, the tokenizers, parameter counts.
- :mod:`~rlcourse.model.policy`: token log-probs, entropy, ``generate`` and the ``Generation`` it returns.
- :mod:`~rlcourse.model.sampling`: the seeded sampler with its KV cache.
- :mod:`~rlcourse.model.pretraining`: the recipes that reproduce the shipped weights.
- :mod:`~rlcourse.model.math_eval`: a policy's pass@k on the arithmetic world.
- :mod:`~rlcourse.model.runtime`: seeds, threads, quiet libraries, devices.

Uses :mod:`rlcourse.world`; never the layers above it.
"""
