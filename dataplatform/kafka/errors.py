"""The one error the embedded broker raises, in a module of its own.

The node, the cluster, the JVM launcher and the provider all raise it and the CLI turns
it into a message and a non-zero exit; keeping it apart lets each of them import it
without importing the others.
"""


class BrokerError(RuntimeError):
    """The embedded broker could not be started, reached or stopped."""
