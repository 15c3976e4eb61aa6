"""Topic access by data product: the ACLs a manifest implies.

- the product's ``producingService`` may write (and describe) its topic;
- each of its ``consumerGroups`` (used as the consumer's principal and group id) may read
  the topic and use its group.
``dataplatform products grant`` prints them, and with ``--apply`` creates them through
Kafka's admin API on a cluster that runs an authorizer.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, ResourcePatternType,
                                   ResourceType)

from dataplatform.products.product import DataProduct


@dataclass(frozen=True)
class Grant:
    principal: str
    operation: str
    resource_type: str
    resource: str
    product: str

    def to_binding(self) -> AclBinding:
        return AclBinding(ResourceType[self.resource_type], self.resource, ResourcePatternType.LITERAL,
                          f"User:{self.principal}", "*", AclOperation[self.operation], AclPermissionType.ALLOW)

    def describe(self) -> str:
        return f"ALLOW User:{self.principal} {self.operation} on {self.resource_type} {self.resource}  ({self.product})"


def grants_for(product: DataProduct) -> list[Grant]:
    m, topic, out = product.manifest, product.topic, []
    if m.producingService:
        out += [Grant(m.producingService, op, "TOPIC", topic, product.name) for op in ("WRITE", "DESCRIBE")]
    for group in m.consumerGroups:
        out += [Grant(group, op, "TOPIC", topic, product.name) for op in ("READ", "DESCRIBE")]
        out.append(Grant(group, "READ", "GROUP", group, product.name))
    return out


def apply_grants(admin: AdminClient, grants: list[Grant], timeout: float = 30.0) -> int:
    unique = {(g.principal, g.operation, g.resource_type, g.resource): g for g in grants}
    futures = admin.create_acls([g.to_binding() for g in unique.values()], request_timeout=timeout)
    for f in futures.values():
        f.result()
    return len(futures)
