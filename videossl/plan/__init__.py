"""``videossl plan RECIPE``: check and price a recipe before it runs (``command.py``)."""
