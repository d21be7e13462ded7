"""Training: the one loop, resumable checkpoints, the samples it reads, and the stage trainer that
runs any stage of the study in this process or under ``accelerate launch``."""
