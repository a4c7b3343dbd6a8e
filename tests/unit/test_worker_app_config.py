"""The Faust app's Kafka settings that delivery depends on, as ``build_app`` makes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.runtime import build_app
from veille.settings import Settings


@pytest.mark.parametrize("role", ["validate", "detect"])
def test_a_lost_produce_response_fails_within_the_configured_timeout(
    role: str, tmp_path: Path
) -> None:
    settings = Settings(
        worker_role=role, kafka_produce_timeout_s=7.5, worker_data_dir=str(tmp_path)
    )
    app = build_app(settings)
    assert app.conf.producer_request_timeout == 7.5  # not Faust's 1,200 s
    assert app.conf.producer_acks == -1


def test_the_stream_buffer_bound_reaches_the_faust_app(tmp_path: Path) -> None:
    settings = Settings(
        worker_role="detect", worker_stream_buffer_max=512, worker_data_dir=str(tmp_path)
    )
    app = build_app(settings)
    assert app.conf.stream_buffer_maxsize == 512  # not Faust's 4,096
