"""rlcourse: reinforcement learning for language models, as a runnable offline course.

    >>> import rlcourse
    >>> generator = rlcourse.setup(seed=0)          # threads, quiet libraries, seeds
    >>> model, tokenizer = rlcourse.load_policy()   # the shipped tiny model, no download
"""

__version__ = "0.1.0"

from rlcourse.claims import expect  # noqa: E402
from rlcourse.models import load_policy, load_tokenizer  # noqa: E402
from rlcourse.utils import set_seed, setup  # noqa: E402

__all__ = ["expect", "load_policy", "load_tokenizer", "set_seed", "setup", "__version__"]
