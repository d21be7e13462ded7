"""Evaluation: answering the test pairs, what an answer is worth (conclusion, format, token
counts), text similarity of reconstructions, and the figures."""
