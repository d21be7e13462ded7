"""Tiny models, tokenizer, batching, training loop and generation for the Heima study."""
