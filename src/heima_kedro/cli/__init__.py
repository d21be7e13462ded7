"""Ways to drive the project from outside ``kedro run``: the demo on one image, the sweep over
thinking settings, and a scratch copy of the project that benchmarks and tests run in."""
