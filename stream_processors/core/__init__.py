"""The processor's core: a derivation spec compiled (:mod:`.compiled`), stage 1's step for one
entity (:mod:`.entity_step`), stage 2's step for one group (:mod:`.group_step`, on
:mod:`.group_state` stored as :mod:`.group_table` lays it out), the rules (:mod:`.rules`,
judged by :mod:`.evaluation`) and the clock (:mod:`.clock`).

Plain Python: it imports no Faust, mode, aiokafka, confluent_kafka or asyncio, and nothing of
the engine or the deployment (tests/unit/test_floors.py). Its steps are pure functions of
the state and the messages they are given, which is what makes a redone step send the same
events; another engine would run these same steps.
"""
