"""Errors a user can cause. The CLI prints their message on one line and exits with code 2."""


class UserError(Exception):
    """A mistake in the user's input (config, path, data): the message says which and what is wrong."""
