"""How portalctl prints: exactly one JSON document with --json, readable lines otherwise
(a `Table` as aligned columns)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Table:
    """What a listing command answers: `rows` under `columns` (key, heading) for people;
    `data` (the service's answer, unchanged) with --json."""

    columns: tuple[tuple[str, str], ...]
    rows: list[dict[str, str]]
    data: Any


def emit(obj: Any, as_json: bool, title: str | None = None) -> None:
    if isinstance(obj, Table):
        if not as_json:
            _table(obj)
            return
        obj = obj.data
    if as_json:
        json.dump(obj, sys.stdout, ensure_ascii=False, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return
    if title:
        print(title)
    _human(obj, indent=0)


def _table(table: Table) -> None:
    if not table.rows:
        print("(none)")
        return
    widths = {
        key: max(len(heading), *(len(str(row.get(key, ""))) for row in table.rows))
        for key, heading in table.columns
    }
    lines = [[heading for _, heading in table.columns]]
    lines += [[str(row.get(key, "")) for key, _ in table.columns] for row in table.rows]
    keys = [key for key, _ in table.columns]
    for cells in lines:
        padded = (cell.ljust(widths[key]) for cell, key in zip(cells, keys, strict=True))
        print("  ".join(padded).rstrip())


def _human(obj: Any, indent: int) -> None:
    pad = "  " * indent
    if isinstance(obj, list):
        if not obj:
            print(f"{pad}(none)")
        for item in obj:
            if isinstance(item, dict | list):
                _human(item, indent)
                print()
            else:
                print(f"{pad}- {item}")
        return
    if isinstance(obj, dict):
        width = max((len(str(key)) for key in obj), default=0)
        for key, value in obj.items():
            if isinstance(value, dict | list) and value:
                print(f"{pad}{key}:")
                _human(value, indent + 1)
            else:
                print(f"{pad}{str(key).ljust(width)}  {'' if value is None else value}")
        return
    print(f"{pad}{obj}")
