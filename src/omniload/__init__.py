"""omniload: copy data from a source URI to a destination URI, incrementally."""

__version__ = "0.1.0"
