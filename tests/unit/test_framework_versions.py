"""The framework patches hold only for the versions they were verified against.

A faust-streaming, mode-streaming or aiokafka release can change the private code a patch
replaces, and the processor's crash safety with it, without any test of ours failing at
once. So the installed versions must be exactly the verified ones; this test says which
patches to verify again (their own tests, then the crash test) before the version moves.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest

from dataplatform.stream_processors.engine.faust_patches import VERIFIED_WITH


@pytest.mark.parametrize("distribution", sorted(VERIFIED_WITH))
def test_the_installed_framework_is_the_version_the_patches_were_verified_against(distribution):
    verified, patches = VERIFIED_WITH[distribution]
    installed = version(distribution)
    assert installed == verified, (
        f"{distribution} {installed} is installed, but the processor's patches were verified against "
        f"{verified}. Verify again stream_processors/engine/faust_patches/{{{', '.join(patches)}}}.py (their unit "
        f"tests and tests/integration/test_processor_crashes.py), then update VERIFIED_WITH and the cap "
        f"in pyproject.toml")
