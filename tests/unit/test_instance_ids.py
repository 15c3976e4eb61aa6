"""Static membership ids: stable across restarts, never shared by two live members."""

import socket
import subprocess
import sys

from dataplatform.instance_ids import claim_instance_id


def test_live_members_get_different_slots_and_a_released_slot_is_reused(tmp_path):
    first = claim_instance_id("sink-sql", tmp_path)
    second = claim_instance_id("sink-sql", tmp_path)
    host = socket.gethostname()
    assert (first.value, second.value) == (f"sink-sql-{host}-0", f"sink-sql-{host}-1")
    first.release()
    assert claim_instance_id("sink-sql", tmp_path).value == f"sink-sql-{host}-0"   # the restart's id


def test_a_killed_process_frees_its_slot(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from dataplatform.instance_ids import "
                               "claim_instance_id as c; i = c('g', sys.argv[1]); print(i, flush=True); sys.stdin.read()",
                               str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip().endswith("-0")
        assert claim_instance_id("g", tmp_path).value.endswith("-1")      # slot 0 is held
    finally:
        holder.kill()
        holder.wait()
    assert claim_instance_id("g", tmp_path).value.endswith("-0")          # SIGKILL released it
