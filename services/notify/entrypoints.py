"""A timer whose interval comes from the configuration when the container starts.

nameko's `@timer(interval=...)` is fixed when the class is defined, before `nameko run
--config` or a test has set anything; this one reads its setting in `setup()`.
"""

from __future__ import annotations

from nameko.timer import Timer

from common import settings


class ConfiguredTimer(Timer):
    """`@configured_timer("NOTIFY_POLL_SECONDS", default=1.0)`: fires at start, then every N s."""

    def __init__(self, setting: str, default: float, **kwargs) -> None:
        self.setting = setting
        self.default = default
        # eager: work that piled up while the service was down starts at once
        super().__init__(interval=default, eager=True, **kwargs)

    def setup(self) -> None:
        self.interval = settings.get_float(self.setting, self.default)
        super().setup()


configured_timer = ConfiguredTimer.decorator
