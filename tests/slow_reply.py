"""A fake-backend script (`--set model.script=tests.slow_reply:reply`): the echo answer, slowly, so a test can
interrupt a run while it generates."""

from __future__ import annotations

import os
import time

from harness.core.backends.fake import echo_reply


def reply(request, sample_index: int) -> str:
    time.sleep(float(os.environ.get("SPAR_SLOW_REPLY_S", "0.3")))
    return echo_reply(request, sample_index)
