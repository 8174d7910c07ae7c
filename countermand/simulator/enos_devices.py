"""V2.4 Search Device (``POST /connect-service/v2.4/devices?action=search&orgId=O``).

The devices of the simulator are the EnOS devices its command store knows (each with its asset
id and its product key and device key), in the order they were first stored; the gateway check
(``enos_gateway``) and ``orgId`` come first, as for the commands. The body is a JSON object with
two optional keys (any other key is refused, 1004): ``expression`` and ``pagination``
``{"pageNo": 1.., "pageSize": 1..1000}`` (no other key), by default page 1 of 10. Expression
grammar (tokens, quoting, positions and ``and`` as in ``enos_search``; case-sensitive)::

    expression := condition ( "and" condition )*
    condition  := ( "productKey" | "deviceKey" | "assetId" ) "=" 'text'
                | ( "productKey" | "deviceKey" | "assetId" ) "in" "(" 'text' ( "," 'text' )* ")"
                | "status" "=" 'status'     one of inactive, online, offline, disable, mirror

The status values are the vendor's list. Refused with 1004 naming the problem and its
position: ``or``, other operators (``status in (...)``, ``!=``, ``like``), other status values,
and other fields. The vendor's page lists more fields (``deviceName``, ``modelId``,
``deviceAttributes.*``...); the simulator takes only the four Countermand needs, so that a
client that starts using another one fails here first. The answer is
``{"code": 0, "msg": "OK", "submsg": null, "requestId", "data": [device...],
"pagination": {"pageNo", "pageSize", "totalSize"}}``, each device
``{"orgId", "assetId", "productKey", "deviceKey", "deviceName": {"defaultValue": deviceKey,
"i18nValue": {"en_US": deviceKey}}, "status": "online"}``. Where the vendor's page is silent or
richer, the simulator decides: only those fields, the device key as the name, every device
online (the simulator has no connection state), ``msg`` "OK" as in the vendor's samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from countermand.simulator.enos_gateway import gateway_error, page
from countermand.simulator.enos_search import Parser, SearchError, parse_body, refuse
from countermand.simulator.faults import Reply
from countermand.simulator.state import CommandStore

DEFAULT_PAGE_SIZE = 10
STATUS = "online"  # of every device the simulator knows
STATUSES = ("inactive", "online", "offline", "disable", "mirror")
KEYS = ("productKey", "deviceKey", "assetId")


class Device(NamedTuple):
    org: str
    asset_id: str
    product_key: str
    device_key: str

    def field(self, name: str) -> str:
        values = {"productKey": self.product_key, "deviceKey": self.device_key,
                  "assetId": self.asset_id, "status": STATUS}  # fmt: skip
        return values[name]


@dataclass(frozen=True, slots=True)
class DeviceCondition:
    field: str  # productKey, deviceKey, assetId, status
    values: tuple[str, ...]  # one for =, one or more for in

    def matches(self, device: Device) -> bool:
        return device.field(self.field) in self.values


class _DeviceParser(Parser[DeviceCondition]):
    def condition(self) -> DeviceCondition:
        token = self.next()
        if token.kind != "word":
            raise self.fail("a field (productKey, deviceKey, assetId, status)", token)
        if token.text == "status":
            self.operator("status", "=")
            at = self.peek().pos
            value = self.string("status")
            if value not in STATUSES:
                raise refuse(f"status {value!r} is not one of {', '.join(STATUSES)}", at)
            return DeviceCondition("status", (value,))
        if token.text not in KEYS:
            fields = "productKey, deviceKey, assetId and status"
            raise refuse(f"field {token.text!r} is not searchable ({fields} only)", token.pos)
        if self.operator(token.text, "=", "in") == "=":
            return DeviceCondition(token.text, (self.string(token.text),))
        return DeviceCondition(token.text, self.string_list(token.text))

    def string_list(self, field: str) -> tuple[str, ...]:
        if not (token := self.next()).is_("("):
            raise self.fail(f"'(' after {field} in", token)
        values = [self.string(field)]
        while (token := self.next()).is_(","):
            values.append(self.string(field))
        if not token.is_(")"):
            raise self.fail("',' or ')'", token)
        return tuple(values)


def parse_conditions(text: str) -> tuple[DeviceCondition, ...]:
    """The conditions of ``text`` (none when blank), or SearchError."""
    return () if not text.strip() else _DeviceParser(text).expression()


def devices(store: CommandStore, org: str) -> list[Device]:
    """The org's devices in the order they were first stored."""
    index = store.enos_devices
    found = []
    for name, keys in index.items():  # ("asset", org, asset id) -> ("keys", org, pk, dk)
        if name[0] == "asset" and name[1] == org:
            found.append(Device(org, name[2], keys[2], keys[3]))
    return found


def device_data(device: Device) -> dict[str, object]:
    name = {"defaultValue": device.device_key, "i18nValue": {"en_US": device.device_key}}
    return {
        "orgId": device.org,
        "assetId": device.asset_id,
        "productKey": device.product_key,
        "deviceKey": device.device_key,
        "deviceName": name,
        "status": STATUS,
    }


def search_devices(store: CommandStore, org: str, body: str) -> Reply:
    """The answer to a device search of ``org`` with this body text."""
    try:
        expression, page_no, page_size = parse_body(body, DEFAULT_PAGE_SIZE)
        conditions = parse_conditions(expression)
    except SearchError as exc:
        return gateway_error(1004, f"Invalid parameter: {exc}")
    found = [d for d in devices(store, org) if all(c.matches(d) for c in conditions)]
    return page(found, page_no, page_size, device_data, msg="OK")
