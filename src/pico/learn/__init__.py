"""Stage 7 (Section 3.4): the dense network, MoCo-v2 augmentations, pixel-contrastive pretraining."""
