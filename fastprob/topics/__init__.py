"""The DAPPER dynamic author-persona topic model, held-out evaluation and reports."""
from .dapper import DAPPER
from .evaluate import document_completion, split_halves

__all__ = ["DAPPER", "document_completion", "split_halves"]
