"""The synthetic worlds the agent lives in, and what is true in them.

- :mod:`~rlcourse.world.grammar`: the review/story grammar (its tables in ``grammar.json``), prompts,
  the sampler and the checker, token sentiment.
- :mod:`~rlcourse.world.rewards`: the gold ("human") reward and its causal per-token form.
- :mod:`~rlcourse.world.arith`: arithmetic problems with checkable steps, the answer checker, pass@k.

The lowest layer: it imports nothing from the package but :mod:`rlcourse.utils`.
"""
