"""Reliability tooling: a generator of broken media files (``corpus``), a fuzz runner that feeds them through
every decoder backend and a training-data loader (``fuzz``), and a memory soak of random clip reads (``soak``).

    python -m videossl.reliability.fuzz --count 1000 --out /tmp/fuzz
    python -m videossl.reliability.soak --reads 20000
"""
