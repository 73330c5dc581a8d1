"""The RL algorithms: masked statistics, advantages, losses, the training loop, DPO and best-of-N,
what-changed analysis, and the bridge to TRL's trainers.

- :mod:`~rlcourse.rl.masked`: masked means and variances, input checks (the lowest module here).
- :mod:`~rlcourse.rl.advantages`: returns, GAE, whitening, group (GRPO) and leave-one-out (RLOO).
- :mod:`~rlcourse.rl.losses`: REINFORCE, PPO clip, value, KL estimators, DPO, loss aggregation.
- :mod:`~rlcourse.rl.loops`: sample → score → advantages → update, one table of algorithms.
- :mod:`~rlcourse.rl.dpo`, :mod:`~rlcourse.rl.analysis`, :mod:`~rlcourse.rl.trl_bridge`.

Uses :mod:`rlcourse.reward`, :mod:`rlcourse.model` and :mod:`rlcourse.world`; never the layers above.
"""
