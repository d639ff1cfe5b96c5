from datetime import datetime
from typing import Any

class Writer:
    def __init__(
        self, program: tuple[Any, ...], unwritable: type[Exception], uuid_type: type, epoch: datetime
    ) -> None: ...
    def __call__(self, value: Any, out: bytearray) -> None: ...
