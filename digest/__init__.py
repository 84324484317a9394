"""digest: a daily email digest of trending research papers, ranked for each subscriber."""

__version__ = "0.1.0"
