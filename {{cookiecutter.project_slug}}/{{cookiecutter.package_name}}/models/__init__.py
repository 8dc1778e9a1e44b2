"""Plain PyTorch networks: no Lightning in here, so they can be reused and exported anywhere.

``Classifier`` is the network the LightningModule trains; point this import at your own to swap it.
"""

from .{{ "mlp" if cookiecutter.example == "digits" else "cnn" }} import Classifier

__all__ = ["Classifier"]
