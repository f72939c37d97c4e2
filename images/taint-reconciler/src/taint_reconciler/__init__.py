"""Keep the GPU taint on every node of an ml-platform GPU pool."""

__version__ = "0.1.0"
