"""Where a benchmark's table goes: the terminal and a results file."""

import os


def publish(text, path):
    """Print ``text`` and write it to ``path`` (its directory made)."""
    print(text)
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        f.write(text + '\n')
