"""facerec: self-hosted face recognition for batches of photos."""

__version__ = "0.1.0"
