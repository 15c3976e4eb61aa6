"""A real Apache Kafka broker for machines without Docker or a cluster.

``jars`` resolves Kafka's own jars from Maven Central, ``broker`` formats KRaft storage
and runs ``kafka.Kafka`` (one node or a three-node cluster), ``provider`` picks between an
existing cluster, Testcontainers and the embedded broker.
"""

from dataplatform.kafka.broker import BrokerError, EmbeddedKafka, EmbeddedKafkaCluster

__all__ = ["BrokerError", "EmbeddedKafka", "EmbeddedKafkaCluster"]
