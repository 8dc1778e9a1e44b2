"""The LightningModule: the training logic around the networks in ``models``."""
