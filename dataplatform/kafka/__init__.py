"""A real Apache Kafka broker for machines without Docker or a cluster.

``jars`` resolves Kafka's own jars from Maven Central; ``server_properties`` says what a
node is and how it is configured (listeners, SASL, TLS from ``tls``, ACLs); ``jvm``
formats KRaft storage and launches ``kafka.Kafka`` (``process`` has the port, pid and
signal helpers it needs); ``node`` is one node's life (start, wait until ready, stop) and
``cluster`` three of them; ``provider`` picks between an existing cluster, Testcontainers
and the embedded broker, and ``connection`` checks that the chosen one can be reached.
"""

from dataplatform.kafka.cluster import EmbeddedKafkaCluster
from dataplatform.kafka.errors import BrokerError
from dataplatform.kafka.node import EmbeddedKafka
from dataplatform.kafka.server_properties import BrokerSecurity

__all__ = ["BrokerError", "BrokerSecurity", "EmbeddedKafka", "EmbeddedKafkaCluster"]
