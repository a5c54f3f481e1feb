"""Console blocks of the docs, as the tests run them: each ``$`` line a command, the
lines after it its expected output, ``...`` matching anything within a line."""

import re


def console_commands(text):
    """``[(command, [expected output lines])]`` of a console block's text."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip():
            assert steps, f"output before any command in {text!r}"
            steps[-1][1].append(line)
    return steps


def output_matches(expected_lines, output):
    """Each expected line appears, in order, as a line of ``output`` (``...``: anything)."""
    lines = output.splitlines()
    position = 0
    for expected in expected_lines:
        pattern = re.compile(".*".join(re.escape(part) for part in expected.split("...")) + r"\Z")
        while position < len(lines) and not pattern.match(lines[position].rstrip()):
            position += 1
        if position == len(lines):
            return False
        position += 1
    return True
