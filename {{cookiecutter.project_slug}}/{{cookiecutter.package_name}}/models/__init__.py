"""Plain PyTorch networks: no Lightning in here, so they can be reused and exported anywhere."""
