"""Independent Spark work run side by side: on few cores a small job or a Delta commit would
leave them idle."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def together(*tasks: Callable[[], T]) -> list[T]:
    """Run independent Spark work from several threads (Spark schedules their jobs side by
    side); their results, or the first failure raised."""
    if not tasks:
        return []
    with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="stage") as pool:
        return [future.result() for future in [pool.submit(task) for task in tasks]]
