"""Losses: pure functions / small modules, one family per file, distributed-aware.

Every loss takes embeddings ``(B, D)`` or ``(B, N, D)`` and gathers what it needs across processes itself,
so a method is correct on 1 process and on 64.
"""
