"""The models of the study and what is done with them one call at a time: tiny models built from
config, tokenizers, LoRA configs and trained adapters, chat-formatted samples and batches,
generation with captured states, and the hidden-state hand-off to the decoders."""
