"""What the tests find in a storage folder."""


def stored_files(root):
    """Every file under ``root``, as paths relative to it."""
    if not root.exists():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
