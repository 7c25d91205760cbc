"""The vPool's control API token: one secret in a file, readable by root only."""


class TokenError(Exception):
    """The token file is missing, unreadable or empty."""


def read_token(path):
    try:
        with open(path) as f:
            token = f.read().strip()
    except OSError as exc:
        raise TokenError('cannot read the token file %s: %s' % (path, exc.strerror)) from None
    if not token:
        raise TokenError('the token file %s is empty' % path)
    return token
