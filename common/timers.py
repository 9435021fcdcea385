"""A timer whose interval comes from the configuration when the container starts.

nameko's `@timer(interval=...)` is fixed when the class is defined, before `nameko run
--config` or a test has set anything; this one reads its setting in `setup()`.
"""

from __future__ import annotations

from typing import Any

from nameko.timer import Timer

from common import settings


class ConfiguredTimer(Timer):
    """`@configured_timer("BILLING_RENEWAL_SCAN_SECONDS", default=300)`.

    Without `eager=True` the first run comes one interval after start-up, so several
    instances starting together do not all run at once.
    """

    def __init__(self, setting: str, default: float, **kwargs: Any) -> None:
        self.setting = setting
        self.default = default
        super().__init__(interval=default, **kwargs)

    def setup(self) -> None:
        self.interval = settings.get_float(self.setting, self.default)
        super().setup()


configured_timer = ConfiguredTimer.decorator
