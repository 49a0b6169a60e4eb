"""GatewaySettings refuses what the gateway could not start with: one line at load, never a traceback later."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tickcast.gateway.settings import GatewaySettings


@pytest.mark.parametrize("slice_us", [1, 50, 99])
def test_a_time_slice_under_the_kernels_floor_is_a_bad_setting(slice_us: int) -> None:
    # README and the field's description: 100-100,000 us, or 0 for the kernel's own. A value in between used to
    # pass here and then stop `tickcast gateway` with request_slice's ValueError traceback, after the broker wait.
    with pytest.raises(ValidationError, match="gateway_sched_slice_us"):
        GatewaySettings(gateway_sched_slice_us=slice_us)


@pytest.mark.parametrize("slice_us", [0, 100, 300, 100_000])
def test_no_slice_and_every_slice_the_kernel_takes_are_accepted(slice_us: int) -> None:
    assert GatewaySettings(gateway_sched_slice_us=slice_us).gateway_sched_slice_us == slice_us
