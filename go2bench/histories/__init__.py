"""The on-disk format of learning histories (Vintix layout), shared by collection and training."""
