"""The study's models as lmms-eval models, and benchmarks run through lmms-eval: the plugin
(``models``, registered by ``registration``), the study's test pairs as a local lmms-eval task
(``test_pairs_task``), and running and checking benchmark tasks (``harness``). Needs the
``lmms`` extra and lmms-eval (README, Development); nothing else in the package imports it."""

import importlib.util

#: How to install what this package needs, for every message that says it is missing.
INSTALL = "pip install -e '.[lmms]' && pip install --no-deps lmms-eval==0.7.3"

if importlib.util.find_spec("lmms_eval") is None:
    raise ImportError(f"lmms-eval is not installed; install it with: {INSTALL}")
