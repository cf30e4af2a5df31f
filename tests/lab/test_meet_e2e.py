"""End to end (TOM-MEET-01): a third-party STUN server edited into config.js by hand on
meet1 flips tomwerk_meet_third_party_endpoints, MeetThirdPartyEndpoint reaches the
receiver on monitor1, and restoring the file brings the metric back to 0."""

from __future__ import annotations

import pytest

from tests.lab.conftest import has_alert, lab_host, wait_for, watch_metric

CONFIG_JS = "/etc/jitsi/meet/meet1.lab.tomwerk.test-config.js"
OURS = "{ urls: 'stun:meet1.lab.tomwerk.test:3478' }"
THIRD_PARTY = "{ urls: 'stun:meet-jit-si-turnrelay.jitsi.net:443' }"


@pytest.mark.tom("TOM-MEET-01")
def test_third_party_stun_in_config_js_is_alerted():
    meet1 = lab_host("meet1")
    monitor = lab_host("monitor1")
    series = 'tomwerk_meet_third_party_endpoints{instance="meet1",config="config_js"}'
    value, start = watch_metric(monitor, series, "0", "config.js must name no third party before the test")
    original = meet1.file(CONFIG_JS).sha256sum
    meet1.check_output(f"cp -p {CONFIG_JS} /root/config.js.e2e")
    meet1.check_output(f'sed -i "s|{OURS}|{OURS}, {THIRD_PARTY}|" {CONFIG_JS}')
    try:
        assert meet1.file(CONFIG_JS).sha256sum != original
        _, flipped_after = wait_for("the metric to flip", lambda: value() == "1", timeout=90)
        _, fired_after = wait_for(
            "MeetThirdPartyEndpoint to reach the receiver",
            lambda: has_alert(monitor, start, "firing", "MeetThirdPartyEndpoint", instance="meet1", config="config_js"),
            timeout=180,
        )
    finally:
        meet1.check_output(f"mv /root/config.js.e2e {CONFIG_JS}")
    assert meet1.file(CONFIG_JS).sha256sum == original
    wait_for("the metric to recover", lambda: value() == "0", timeout=90)
    print(f"metric flipped after {flipped_after:.0f}s, alert delivered after {fired_after:.0f}s")
