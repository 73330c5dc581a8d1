"""Learned rewards: the reward model trained on simulated preferences (Bradley–Terry), and the learned
verifiers of the arithmetic world (outcome and process reward models).

- :mod:`~rlcourse.reward.reward_model`: annotators, preference data, the reward model r_φ.
- :mod:`~rlcourse.reward.verifiers`: step labels on tokens, the ORM and the PRM, best-of-N.

Uses :mod:`rlcourse.model` and :mod:`rlcourse.world`; never the layers above it.
"""
