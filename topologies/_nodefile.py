"""Node attributes from a CSV file (the ``nodes=`` of :func:`~topologies.from_edgelist`).

The file has a header row naming its columns: ``node`` (integer ids 0..n-1, each at most
once) and any of ``community`` (an integer, what the ``community`` data partition reads)
and ``byzantine`` (0/1 or true/false, what the placement strategy ``marked`` reads).
Nodes not listed get no attribute. Every error names the file and the line.
"""

import csv
from pathlib import Path

#: The columns a node file may have (``node`` is required).
NODE_COLUMNS = ("node", "community", "byzantine")

_TRUE = ("1", "true")
_FALSE = ("0", "false")


def read_node_file(path, n: int) -> dict[str, dict[int, int | bool]]:
    """Read a node file into ``{column: {node: value}}`` for its attribute columns.

    Args:
      path: the CSV file.
      n: the graph's number of nodes (ids must be < n).

    Returns:
      One dict per attribute column in the header (``community`` values int,
      ``byzantine`` values bool), each mapping the listed nodes to their value.

    Raises:
      ValueError: no header, no ``node`` column, an unknown or repeated column, a row with
        another number of fields, a non-integer id, an id >= n, a repeated id, or a bad
        community or byzantine value; each names the file and line.

    Example:
      >>> read_node_file("nodes.csv", 4)  # doctest: +SKIP
      {'community': {0: 0, 1: 0, 2: 1, 3: 1}}
    """
    path = Path(path)
    with path.open(newline="") as handle:
        rows = [(number, row) for number, row in _numbered(csv.reader(handle)) if any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{path}: empty node file. Its first line is a header, e.g. 'node,community'.")
    header_line, header = rows[0]
    columns = _columns(path, header_line, header)
    attributes = [column for column in columns if column != "node"]
    values: dict[str, dict[int, int | bool]] = {column: {} for column in attributes}
    first_line: dict[int, int] = {}
    for number, row in rows[1:]:
        if len(row) != len(columns):
            raise ValueError(
                f"{path}:{number}: {len(row)} fields, but the header (line {header_line}) names "
                f"{len(columns)} ({', '.join(columns)}). Give every row one value per column."
            )
        cells = dict(zip(columns, (cell.strip() for cell in row)))
        node = _node(path, number, cells["node"], n)
        if node in first_line:
            raise ValueError(
                f"{path}:{number}: node {node} is listed again (first on line {first_line[node]}). List each node once."
            )
        first_line[node] = number
        for column in attributes:
            values[column][node] = _PARSERS[column](path, number, node, cells[column])
    return values


def _numbered(reader):
    """(line number, row) for each row of a csv reader (the row's first line)."""
    number = 1
    for row in reader:
        yield number, row
        number = reader.line_num + 1


def _columns(path: Path, number: int, header: list[str]) -> list[str]:
    """The header's column names in file order; raise for a missing, unknown or repeated one."""
    names = [cell.strip() for cell in header]
    valid = ", ".join(NODE_COLUMNS)
    for name in names:
        if name not in NODE_COLUMNS:
            raise ValueError(
                f"{path}:{number}: unknown column {name!r} in the header. Valid columns: {valid} "
                "(the first line must be the header, e.g. 'node,community')."
            )
        if names.count(name) > 1:
            raise ValueError(f"{path}:{number}: column {name!r} appears twice in the header. Keep one.")
    if "node" not in names:
        raise ValueError(
            f"{path}:{number}: the header has no 'node' column (got {', '.join(names)}). "
            "The first line names the columns, e.g. 'node,community'."
        )
    return names


def _node(path: Path, number: int, cell: str, n: int) -> int:
    if not cell.isdigit():
        raise ValueError(f"{path}:{number}: node id {cell!r} is not a non-negative integer. Fix the line.")
    node = int(cell)
    if node >= n:
        raise ValueError(
            f"{path}:{number}: node {node} is outside the graph, whose nodes are 0..{n - 1}. "
            "Delete the line, or pass n to cover it."
        )
    return node


def _community(path: Path, number: int, node: int, cell: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise ValueError(
            f"{path}:{number}: community {cell!r} of node {node} is not an integer. Fix the line."
        ) from None


def _byzantine(path: Path, number: int, node: int, cell: str) -> bool:
    word = cell.lower()
    if word not in _TRUE + _FALSE:
        raise ValueError(
            f"{path}:{number}: byzantine {cell!r} of node {node} is not 0/1 or true/false. Fix the line."
        )
    return word in _TRUE


_PARSERS = {"community": _community, "byzantine": _byzantine}
