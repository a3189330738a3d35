"""The Python examples of docs/extending.md run as written, one namespace per page."""

import re
from pathlib import Path

import pytest

import attacks
from decentral import aggregators

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("page", ["extending.md"])
def test_the_python_examples_of_a_page_run(page):
    blocks = _python_blocks(DOCS / page)
    assert blocks, f"{page} has no python example"
    # the examples register names: the registries are put back as they were
    before_rules, before_attacks = dict(aggregators.AGGREGATORS), dict(attacks.ATTACKS)
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, f"docs/{page}", "exec"), namespace)
        assert "shrunk_median" in aggregators.AGGREGATORS and "push_away" in attacks.ATTACKS
    finally:
        aggregators.AGGREGATORS.clear()
        aggregators.AGGREGATORS.update(before_rules)
        attacks.ATTACKS.clear()
        attacks.ATTACKS.update(before_attacks)
