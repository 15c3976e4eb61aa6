"""The processor's deployment: its topics created and its group's offsets seeded
(:mod:`.topic_layout`), one worker process (:mod:`.worker`), N of them started and
supervised (:mod:`.pool`), and the watchdog that restarts a group that stopped committing
(:mod:`.progress`).

It starts the engine (:func:`dataplatform.stream_processors.engine.app.run`) without
touching Faust itself; :mod:`.pool` does not even import the engine, so the CLI and ``run``
load it cheaply.
"""
