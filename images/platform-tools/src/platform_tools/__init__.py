"""Bootstrap steps and checks of the ml-platform chart (its hook and helm test pods)."""

__version__ = "0.1.0"
